"""The manifest of raw sources (``data/sources.toml``): path, upstream URL and SHA-256 of each."""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path

from foedus.features.errors import ConfigError

REQUIRED = ("path", "bundle", "commit", "url", "sha256", "description")


@dataclass(frozen=True)
class Source:
    """One raw file: ``key`` names it everywhere in foedus (readers, status, catalogue)."""

    key: str
    path: str  # relative to the raw folder, as in ../shared/data, e.g. "peacesciencer/cow_ddy.rda"
    bundle: str
    version: str
    commit: str
    url: str
    sha256: str
    description: str

    @property
    def pinned(self) -> str:
        """Human-readable version: the dataset version if known, and the pinned commit."""
        at = f"{self.bundle}@{self.commit[:7]}"
        return f"{self.version} ({at})" if self.version else at


def load_manifest(path: Path) -> dict[str, Source]:
    """Read the manifest; a malformed entry is a ``ConfigError`` naming the entry."""
    try:
        with Path(path).open("rb") as fh:
            doc = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"manifest {path} not found: run from the foedus project folder") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"manifest {path} is not valid TOML: {exc}") from exc
    sources: dict[str, Source] = {}
    for key, entry in doc.get("sources", {}).items():
        missing = [f for f in REQUIRED if f not in entry]
        if missing:
            raise ConfigError(f"manifest {path}: source '{key}' lacks {', '.join(missing)}")
        sources[key] = Source(key=key, version=entry.get("version", ""), **{f: entry[f] for f in REQUIRED})
    if not sources:
        raise ConfigError(f"manifest {path} lists no [sources.*] entries")
    return sources


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
