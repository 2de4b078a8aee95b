"""Where a built table came from: the code version, the sources' checksums and a build key.

An earlier build is reused only if its key matches: same label spec, years, source
checksums, columns and code (a digest of foedus's own source files).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import foedus
from foedus.features.catalogue import Family
from foedus.features.config import Paths
from foedus.features.labels import LabelSpec
from foedus.features.manifest import load_manifest
from foedus.features.table import sources_of, with_coverage


def code_version() -> dict:
    """foedus's version, a digest of the build's source files and the git commit if there is one."""
    # the build is foedus.features alone (readers, labels, families): a change there makes a new
    # build key; a change to the models or the commands does not rebuild the table
    package = Path(foedus.__file__).resolve().parent
    features = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(features.rglob("*.py")):
        digest.update(str(path.relative_to(features)).encode() + path.read_bytes())
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=package, capture_output=True, text=True,
                                timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"foedus_version": foedus.__version__, "source_digest": digest.hexdigest()[:16], "git_commit": commit}


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


def reusable(path: Path, build_key: str) -> bool:
    """Is ``path`` a finished build (table and sidecar) with this build key?"""
    sidecar = path.with_suffix(".json")
    if not (path.is_file() and sidecar.is_file()):
        return False
    try:
        return json.loads(sidecar.read_text()).get("build_key") == build_key
    except (OSError, json.JSONDecodeError):
        return False
