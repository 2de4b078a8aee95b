"""Where a built table came from: the code version, the sources' checksums and a build key.

An earlier build is reused only if its key matches (same label spec, years, source checksums,
columns and code, a digest of foedus's own source files) and the table's bytes match the
SHA-256 and size its sidecar records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
from pathlib import Path

from foedus.features.catalogue import Family
from foedus.features.labels import LabelSpec
from foedus.features.manifest import load_manifest
from foedus.features.table import sources_of, with_coverage
from foedus.infra.atomic import sha256_of
from foedus.infra.config import Paths
from foedus.infra.version import VERSION

log = logging.getLogger(__name__)


def source_digest(*folders: Path) -> str:
    """A digest of the Python source files under ``folders`` (their paths and bytes), in order."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(folder.rglob("*.py")):
            digest.update(str(path.relative_to(folder)).encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def code_version() -> dict:
    """foedus's version, a digest of the build's source files and the git commit if there is one."""
    # the build is foedus.features alone (readers, labels, families): a change there makes a new
    # build key; a change to the models or the commands does not rebuild the table
    features = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=features, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"foedus_version": VERSION, "source_digest": source_digest(features), "git_commit": commit}


def sources_used(spec: LabelSpec, families: list[Family]) -> list[str]:
    """Every source a build reads, in first-use order: the universe, the label source, the families'."""
    return list(dict.fromkeys(["cow_ddy", spec.alliance_source.source_key, *sources_of(families)]))


def provenance(spec: LabelSpec, first: int, last: int, families: list[Family], paths: Paths,
               for_year: int | None = None) -> dict:
    """The build key and what it is made of: label spec, years, source checksums, code version
    and, for a present-day model's table, its target year."""
    manifest = load_manifest(paths.manifest)
    sources = {key: manifest[key].sha256 for key in sources_used(spec, families)}
    version = code_version()
    key_material = {"spec": str(spec), "years": [first, last], "sources": sources,
                    "columns": [f.name for fam in with_coverage(families) for f in fam.features] if families else [],
                    "code": version["source_digest"], **({"for_year": int(for_year)} if for_year else {})}
    return {
        "build_key": hashlib.sha256(json.dumps(key_material, sort_keys=True).encode()).hexdigest()[:16],
        "label_spec": str(spec),
        "years": [first, last],
        "for_year": for_year,
        "sources": sources,
        "code": version,
    }


def table_checksum(path: Path) -> dict:
    """The SHA-256 and size of a written table, as its sidecar records them."""
    return {"sha256": sha256_of(path), "bytes": Path(path).stat().st_size}


def reusable(path: Path, build_key: str, *, quiet: bool = False, data: bytes | None = None) -> bool:
    """Is ``path`` a finished build (table and sidecar) with this build key, the table's bytes
    those its sidecar records?

    A table without its sidecar (a build killed before it), a sidecar that cannot be read or one
    whose checksum the table does not match (a damaged table, or a new table whose sidecar was
    never written) is not reusable, and is said on the ``foedus.features`` log unless ``quiet``;
    a build of other inputs or code is not reusable either, silently. ``data``: the table's
    bytes, if the caller has read them (then they, not the file, are checked).
    """
    sidecar = path.with_suffix(".json")
    if not (path.is_file() or sidecar.is_file()):
        return False
    say = (lambda *args: None) if quiet else log.warning
    if not (path.is_file() and sidecar.is_file()):
        found, missing = (path, sidecar) if path.is_file() else (sidecar, path)
        say("%s has no %s beside it (a build that did not finish, or a deleted file): rebuilding", found, missing.name)
        return False
    try:
        recorded = json.loads(sidecar.read_text())
        if recorded.get("build_key") != build_key:
            return False
        expected = recorded.get("table") or {}
        # the size first: a truncated table is told without reading it
        actual = {"bytes": path.stat().st_size if data is None else len(data)}
        if actual["bytes"] == expected.get("bytes"):
            actual["sha256"] = sha256_of(path) if data is None else hashlib.sha256(data).hexdigest()
    except (OSError, ValueError, AttributeError) as exc:
        say("build sidecar %s is unreadable (%s): rebuilding", sidecar, " ".join(str(exc).split()))
        return False
    if actual != {k: expected.get(k) for k in actual} or "sha256" not in actual:
        say("%s does not match its sidecar %s (%s): rebuilding", path, sidecar.name, _difference(expected, actual))
        return False
    return True


def _difference(expected: dict, actual: dict) -> str:
    if expected.get("bytes") != actual["bytes"]:
        recorded = expected.get("bytes")
        return f"{actual['bytes']:,} bytes, the sidecar records {'no size' if recorded is None else f'{recorded:,}'}"
    return f"SHA-256 {actual['sha256'][:12]}..., the sidecar records {str(expected.get('sha256'))[:12]}..."
