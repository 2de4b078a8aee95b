"""Fill ``data/raw/`` with verified copies of the raw sources.

Origins, in order: an explicit ``origin`` (a folder, or an http(s) URL of a mirror with the
same layout as ``../shared/data``); else the configured local mirror, where it holds the file;
else the file's upstream URL at its pinned commit. Every copy is written to a temporary file,
checked against the manifest's SHA-256 and only then renamed into place, so a failed or
corrupted transfer never leaves a file behind.
"""

from __future__ import annotations

import enum
import http.client
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from foedus.features.manifest import Source
from foedus.infra.atomic import DISK_FULL_OR_READ_ONLY, atomic_path, sha256_of
from foedus.infra.errors import DataError
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

HTTP_TIMEOUT_S = 60


class RawState(enum.Enum):
    MISSING = "missing"
    VERIFIED = "verified"
    MISMATCH = "checksum mismatch"


def raw_state(source: Source, raw_dir: Path) -> RawState:
    path = Path(raw_dir) / source.path
    if not path.is_file():
        return RawState.MISSING
    return RawState.VERIFIED if sha256_of(path) == source.sha256 else RawState.MISMATCH


@dataclass(frozen=True)
class Fetched:
    source: Source
    origin: str  # "already present", a folder or a URL


def _is_url(origin: str | Path) -> bool:
    return str(origin).startswith(("http://", "https://"))


def _download(url: str, dest: Path, label: str, progress: Progress | None) -> None:
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as resp:
            expected = resp.headers.get("Content-Length")
            expected = int(expected) if expected is not None else None
            task = progress.add_task(label, total=expected) if progress else None
            received = 0
            with dest.open("wb") as out:
                while block := resp.read(1 << 16):
                    out.write(block)
                    received += len(block)
                    if progress is not None:
                        progress.update(task, completed=received)
    except (urllib.error.URLError, http.client.HTTPException, TimeoutError, OSError) as exc:
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_OR_READ_ONLY:
            raise  # writing the copy failed, not the network: atomic_path says so
        reason = getattr(exc, "reason", exc)
        raise DataError(
            f"could not download {label} from {url} ({reason}): check the network, or fetch from a "
            "local copy with `foedus data fetch --from DIR` or FOEDUS_MIRROR"
        ) from exc
    if expected is not None and received != expected:
        raise DataError(
            f"download of {label} from {url} was truncated ({received} of {expected} bytes); "
            "nothing was kept: run `foedus data fetch` again"
        )


def _copy_verified(source: Source, origin: str, raw_dir: Path, progress: Progress | None) -> None:
    target = Path(raw_dir) / source.path
    with atomic_path(target) as tmp:
        if _is_url(origin):
            _download(origin, tmp, source.path, progress)
        else:
            shutil.copyfile(origin, tmp)
        got = sha256_of(tmp)
        if got != source.sha256:
            raise DataError(
                f"checksum mismatch for {source.path} from {origin}: expected {source.sha256[:12]}..., "
                f"got {got[:12]}...; the copy was discarded. Fetch from an unmodified copy of the data"
            )


def _origin_for(source: Source, origin: str | Path | None, mirror: Path | None) -> str:
    if origin is not None:
        if _is_url(origin):
            return str(origin).rstrip("/") + "/" + source.path
        candidate = Path(origin) / source.path
        if not candidate.is_file():
            raise DataError(f"{source.path} is not in {origin}: give a folder with the layout of ../shared/data")
        return str(candidate)
    if mirror is not None and (Path(mirror) / source.path).is_file():
        return str(Path(mirror) / source.path)
    return source.url


def fetch(
    sources: Iterable[Source],
    raw_dir: Path,
    *,
    origin: str | Path | None = None,
    mirror: Path | None = None,
    force: bool = False,
    show_progress: bool = True,
) -> list[Fetched]:
    """Make every source present and verified under ``raw_dir``; return where each came from.

    Files already present with the right checksum are kept unless ``force``. A present file
    with a wrong checksum is replaced. Raises ``DataError`` naming the first file that fails.
    """
    sources = list(sources)
    done: list[Fetched] = []
    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn())
    with Progress(*columns, transient=True, disable=not show_progress) as progress:
        for source in sources:
            if not force and raw_state(source, raw_dir) is RawState.VERIFIED:
                done.append(Fetched(source, "already present"))
                continue
            where = _origin_for(source, origin, mirror)
            _copy_verified(source, where, raw_dir, progress)
            done.append(Fetched(source, where))
    return done
