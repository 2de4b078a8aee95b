"""The manifest of raw sources (``data/sources.toml``): path, upstream URL and SHA-256 of each,
and the references each source asks to be cited by (``cite``, keys of its ``[references.*]``)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

from foedus.infra.errors import ConfigError

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
    cite: tuple[str, ...] = ()  # keys of [references.<key>]: what a user of this source must cite

    @property
    def pinned(self) -> str:
        """Human-readable version: the dataset version if known, and the pinned commit."""
        at = f"{self.bundle}@{self.commit[:7]}"
        return f"{self.version} ({at})" if self.version else at


def _read(path: Path) -> dict:
    try:
        with Path(path).open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"manifest {path} not found: run from the foedus project folder") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"manifest {path} is not valid TOML: {exc}") from exc


def load_manifest(path: Path) -> dict[str, Source]:
    """Read the manifest; a malformed entry, a source without a citation or one citing an undefined
    reference is a ``ConfigError`` naming the entry."""
    doc = _read(path)
    references = _references(path, doc)
    sources: dict[str, Source] = {}
    for key, entry in doc.get("sources", {}).items():
        missing = [f for f in REQUIRED if f not in entry]
        if missing:
            raise ConfigError(f"manifest {path}: source '{key}' lacks {', '.join(missing)}")
        cite = _cite_keys(path, key, entry.get("cite"), references)
        sources[key] = Source(key=key, version=entry.get("version", ""), cite=cite, **{f: entry[f] for f in REQUIRED})
    if not sources:
        raise ConfigError(f"manifest {path} lists no [sources.*] entries")
    return sources


# Citations as data: [references.<key>] tables, BibTeX's fields. Each type needs what BibTeX (and
# the plain-text form) cannot do without; an unknown field is refused, as it is most often a typo.
REFERENCE_TYPES = {
    "article": ("author", "title", "journal", "year"),
    "book": ("author", "title", "publisher", "year"),
    "incollection": ("author", "title", "booktitle", "publisher", "year"),
    "techreport": ("author", "title", "institution", "year"),
    "misc": ("author", "title", "year"),
}
REFERENCE_FIELDS = ("author", "editor", "title", "journal", "booktitle", "year", "volume", "number", "pages",
                    "publisher", "address", "institution", "note", "doi", "url")
NAME_LISTS = ("author", "editor")  # lists of "Family, Given"; a name without a comma is an organisation


@dataclass(frozen=True)
class Reference:
    """One bibliography entry: ``key`` is its BibTeX key; ``fields`` in ``REFERENCE_FIELDS`` order."""

    key: str
    type: str
    fields: tuple[tuple[str, str | int | tuple[str, ...]], ...]

    def get(self, name: str, default=None):
        return dict(self.fields).get(name, default)

    @property
    def authors(self) -> tuple[str, ...]:
        return self.get("author", ())

    @property
    def year(self) -> int:
        return self.get("year")


def load_references(path: Path) -> dict[str, Reference]:
    """The manifest's bibliography, ``[references.<key>]``, validated (see ``REFERENCE_TYPES``)."""
    return _references(path, _read(path))


def _balanced(text: str) -> bool:
    depth = 0
    for char in text:
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def _references(path: Path, doc: dict) -> dict[str, Reference]:
    references: dict[str, Reference] = {}
    for key, entry in doc.get("references", {}).items():
        where = f"manifest {path}: reference '{key}'"
        kind = entry.get("type")
        if kind not in REFERENCE_TYPES:
            raise ConfigError(f"{where} has type {kind!r}: use one of {', '.join(REFERENCE_TYPES)}")
        unknown = [f for f in entry if f != "type" and f not in REFERENCE_FIELDS]
        if unknown:
            raise ConfigError(f"{where} has unknown field {', '.join(unknown)}: use {', '.join(REFERENCE_FIELDS)}")
        missing = [f for f in REFERENCE_TYPES[kind] if not entry.get(f)]
        if missing:
            raise ConfigError(f"{where} ({kind}) lacks {', '.join(missing)}")
        fields = []
        for name in REFERENCE_FIELDS:
            if name not in entry:
                continue
            value = entry[name]
            if name in NAME_LISTS:
                if not isinstance(value, list) or not value or not all(isinstance(n, str) and n.strip() for n in value):
                    raise ConfigError(f'{where}: {name} must be a list of names, e.g. ["Leeds, Brett Ashley"]')
                value = tuple(value)
            elif name == "year":
                if isinstance(value, bool) or not isinstance(value, int):
                    raise ConfigError(f"{where}: year must be a whole number, e.g. year = 2002")
            elif not isinstance(value, str) or not value.strip():
                raise ConfigError(f"{where}: {name} must be non-empty text")
            texts = value if isinstance(value, tuple) else (value,) if isinstance(value, str) else ()
            if not all(_balanced(t) for t in texts):
                raise ConfigError(f"{where}: {name} has unbalanced braces, which would break the BibTeX")
            fields.append((name, value))
        references[key] = Reference(key=key, type=kind, fields=tuple(fields))
    return references


def _cite_keys(path: Path, source: str, cite, references: dict[str, Reference]) -> tuple[str, ...]:
    if not cite or not isinstance(cite, list) or not all(isinstance(k, str) for k in cite):
        raise ConfigError(f'manifest {path}: source \'{source}\' has no citation: add cite = ["<key>", ...] '
                          "naming its [references.<key>] entries")
    undefined = [k for k in cite if k not in references]
    if undefined:
        raise ConfigError(f"manifest {path}: source '{source}' cites {', '.join(undefined)}, which has no "
                          f"[references.{undefined[0]}] entry: add it or fix the key")
    return tuple(dict.fromkeys(cite))
