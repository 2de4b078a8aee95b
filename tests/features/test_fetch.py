"""fetch: from a folder, from the mirror, over HTTP (a local server on 127.0.0.1), and refusals."""

from __future__ import annotations

import dataclasses
import http.server
import shutil
import threading
from functools import partial
from pathlib import Path

import pytest
from foedus.features.fetch import RawState, fetch, raw_state
from foedus.features.manifest import load_manifest
from foedus.infra.errors import DataError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sources():
    return load_manifest(ROOT / "data/sources.toml")


@pytest.fixture
def small(sources):
    """Three small sources keep the copies quick."""
    return [sources[k] for k in ("cow_majors", "cw_system", "td_rivalries")]


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


class _Handler(http.server.SimpleHTTPRequestHandler):
    truncate: set[str] = set()

    def log_message(self, *args):  # keep test output clean
        pass

    def do_GET(self):
        name = self.path.lstrip("/")
        if name in self.truncate:  # claim the full length, send half, hang up
            body = (Path(self.directory) / name).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        super().do_GET()


@pytest.fixture
def served(tmp_path, mirror):
    """A copy of the mirror served on 127.0.0.1; yields (base URL, served folder, handler class)."""
    folder = tmp_path / "served"
    shutil.copytree(mirror, folder)
    handler = type("Handler", (_Handler,), {"truncate": set()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", folder, handler
    server.shutdown()
    server.server_close()


def test_fetch_from_folder_verifies_and_then_keeps_verified_copies(tmp_path, mirror, small):
    raw = tmp_path / "raw"
    first = fetch(small, raw, origin=mirror, show_progress=False)
    assert [f.origin for f in first] == [str(mirror / s.path) for s in small]
    assert all(raw_state(s, raw) is RawState.VERIFIED for s in small)
    again = fetch(small, raw, origin=mirror, show_progress=False)
    assert {f.origin for f in again} == {"already present"}


def test_fetch_uses_the_mirror_before_upstream(tmp_path, mirror, small):
    done = fetch(small, tmp_path / "raw", mirror=mirror, show_progress=False)
    assert all(f.origin.startswith(str(mirror)) for f in done)


def test_a_corrupted_local_copy_is_replaced(tmp_path, mirror, small):
    raw = tmp_path / "raw"
    fetch(small, raw, origin=mirror, show_progress=False)
    (raw / small[0].path).write_bytes(b"damaged")
    assert raw_state(small[0], raw) is RawState.MISMATCH
    fetch(small, raw, origin=mirror, show_progress=False)
    assert raw_state(small[0], raw) is RawState.VERIFIED


def test_a_corrupted_source_folder_is_refused_and_leaves_nothing(tmp_path, mirror, small):
    bad = tmp_path / "bad"
    shutil.copytree(mirror, bad)
    target = bad / small[1].path
    target.write_bytes(target.read_bytes()[:-10] + b"0123456789")
    raw = tmp_path / "raw"
    with pytest.raises(DataError, match=f"checksum mismatch for {small[1].path}"):
        fetch(small, raw, origin=bad, show_progress=False)
    assert not (raw / small[1].path).exists()
    assert not [p for p in leftovers(raw) if p.name.endswith(".part")]


def test_a_missing_file_in_the_source_folder_is_named(tmp_path, small):
    with pytest.raises(DataError, match=f"{small[0].path} is not in"):
        fetch(small, tmp_path / "raw", origin=tmp_path, show_progress=False)


@pytest.mark.network
def test_fetch_over_http_from_upstream_urls(tmp_path, served, sources):
    base, _, _ = served
    # The upstream path: each file's own URL (here rewritten to the local server).
    local = [dataclasses.replace(s, url=f"{base}/{s.path}") for s in sources.values()]
    raw = tmp_path / "raw"
    done = fetch(local, raw, show_progress=False)
    assert [f.origin for f in done] == [s.url for s in local]
    assert all(raw_state(s, raw) is RawState.VERIFIED for s in local)


@pytest.mark.network
def test_fetch_over_http_from_a_mirror_url(tmp_path, served, small):
    base, _, _ = served
    done = fetch(small, tmp_path / "raw", origin=base, show_progress=False)
    assert all(f.origin.startswith(base) for f in done)


@pytest.mark.network
def test_a_corrupted_download_is_refused_and_leaves_nothing(tmp_path, served, small):
    base, folder, _ = served
    target = folder / small[2].path
    target.write_bytes(b"X" + target.read_bytes()[1:])
    raw = tmp_path / "raw"
    with pytest.raises(DataError, match=f"checksum mismatch for {small[2].path}"):
        fetch(small, raw, origin=base, show_progress=False)
    assert not (raw / small[2].path).exists()
    assert all(raw_state(s, raw) is RawState.VERIFIED for s in small[:2])
    assert not [p for p in leftovers(raw) if p.name.endswith(".part")]


@pytest.mark.network
def test_a_truncated_download_is_refused_and_leaves_nothing(tmp_path, served, small):
    base, _, handler = served
    handler.truncate.add(small[0].path)
    raw = tmp_path / "raw"
    with pytest.raises(DataError, match=f"{small[0].path} .*truncated"):
        fetch(small, raw, origin=base, show_progress=False)
    assert leftovers(raw) == []


@pytest.mark.network
def test_an_unreachable_server_is_a_clear_error(tmp_path, small):
    dead = [dataclasses.replace(s, url="http://127.0.0.1:9/" + s.path) for s in small]
    with pytest.raises(DataError, match="could not download .* --from DIR"):
        fetch(dead, tmp_path / "raw", show_progress=False)
