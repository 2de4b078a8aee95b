"""Citations as data: what to cite for the sources a build used, as BibTeX or plain text.

Each ``[sources.<key>]`` of ``data/sources.toml`` lists the references its users must cite
(``cite = ["leedsetal2002atop", ...]``) and ``[references.<key>]`` holds each one in BibTeX's
fields; ``foedus.features.manifest`` loads and validates both. As peacesciencer's ``ps_cite()``
does, this module turns source keys into references::

    refs = citations_for(["atop_alliance", "cow_nmc"])
    print(bibtex(refs))   # @article{leedsetal2002atop, ...} ... ready for a .bib file
    print(plain(refs))    # Leeds, B. A., Ritter, J. M., ... (2002). Alliance Treaty ... 28(3), 237–260. https://...

``citations_for`` returns each reference once, in reference-list order (first author's family
name, then year, then title), whatever the order of the sources. ``source_citations`` gives each
source's short forms ("Leeds et al. 2002"), as the feature catalogue shows them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from foedus.features.manifest import NAME_LISTS, Reference, load_manifest, load_references
from foedus.infra.config import Paths
from foedus.infra.errors import ConfigError, InvalidInput

FORMATS = ("bibtex", "text", "both")
OTHERS = "others"  # BibTeX's "and others": the list goes on (printed "et al.")


def citations_for(source_keys: Iterable[str], paths: Paths | None = None) -> list[Reference]:
    """The references the sources ``source_keys`` ask to be cited by: each once, in reference-list order.

    An unknown source key is a ``ConfigError`` naming it (a build's sidecar from an older manifest).
    """
    paths = paths or Paths.discover()
    sources = load_manifest(paths.manifest)
    references = load_references(paths.manifest)
    keys = list(dict.fromkeys(source_keys))
    unknown = [k for k in keys if k not in sources]
    if unknown:
        raise ConfigError(f"source {', '.join(unknown)} is not in the manifest {paths.manifest}: "
                          "rebuild with `foedus build --force` or fix the source key")
    cited = dict.fromkeys(ref for key in keys for ref in sources[key].cite)
    return sorted((references[ref] for ref in cited), key=_order)


def source_citations(paths: Paths | None = None) -> dict[str, list[str]]:
    """Each source's references as short forms ("Leeds et al. 2002"), in its ``cite`` order (the data
    set's own references first, then whoever prepared the file).

    Short forms are made unique over the whole bibliography ("Miller 2022a", "Miller 2022b"), so a
    label means the same reference wherever it appears.
    """
    paths = paths or Paths.discover()
    sources = load_manifest(paths.manifest)
    references = load_references(paths.manifest)
    labels = short_labels(references.values())
    return {key: [labels[ref] for ref in source.cite] for key, source in sources.items()}


def render(refs: list[Reference], fmt: str = "bibtex") -> str:
    """``bibtex``, ``text`` (one line per reference) or ``both`` (BibTeX, then the lines as BibTeX
    comments, so the whole stays a valid .bib file)."""
    if fmt not in FORMATS:
        raise InvalidInput(f"unknown citation format '{fmt}': choose one of {', '.join(FORMATS)}")
    if fmt == "bibtex":
        return bibtex(refs)
    if fmt == "text":
        return plain(refs)
    return bibtex(refs) + "\n\n" + "\n".join(f"% {line}" for line in plain(refs).splitlines())


# BibTeX ----------------------------------------------------------------------------------------


def bibtex(refs: Iterable[Reference]) -> str:
    """The references as BibTeX entries (UTF-8), separated by a blank line."""
    return "\n\n".join(_bibtex_entry(ref) for ref in refs)


def _bibtex_entry(ref: Reference) -> str:
    lines = [f"@{ref.type}{{{ref.key},"]
    for name, value in ref.fields:
        if name in NAME_LISTS:
            # braces keep an organisation one "name" (BibTeX would read "Project" as a family name)
            value = " and ".join(n if "," in n or n == OTHERS else f"{{{n}}}" for n in value)
        elif name not in ("doi", "url"):
            value = re.sub(r"(?<!\\)&", r"\\&", str(value))  # a bare & is a LaTeX error
        lines.append(f"  {name} = {{{value}}},")
    lines.append("}")
    return "\n".join(lines)


# Plain text (APA-like) -------------------------------------------------------------------------


def plain(refs: Iterable[Reference]) -> str:
    """The references as one APA-like line each."""
    return "\n".join(_plain_entry(ref) for ref in refs)


def _plain_entry(ref: Reference) -> str:
    get = ref.get
    parts = [_sentence(_apa_names(ref.authors)), f"({ref.year}).", _sentence(get("title"))]
    if ref.type == "article":
        issue = get("volume", "") + (f"({get('number')})" if get("number") else "")
        tail = ", ".join(p for p in (_text(get("journal")), issue, _text(get("pages", ""))) if p)
        parts.append(_sentence(tail))
    elif ref.type == "incollection":
        editors = get("editor")
        role = "Eds." if editors and len(editors) > 1 else "Ed."
        by = f"{_apa_names(editors, initials_first=True)} ({role}), " if editors else ""
        pages = f" (pp. {_text(get('pages'))})" if get("pages") else ""
        parts.append(_sentence(f"In {by}{_text(get('booktitle'))}{pages}"))
    for name in ("note", "institution", "publisher"):
        if get(name):
            parts.append(_sentence(get(name)))
    if get("doi"):
        parts.append(f"https://doi.org/{get('doi')}")
    elif get("url"):
        parts.append(get("url"))
    return " ".join(parts)


def _text(value: str) -> str:
    """BibTeX markup to plain text: no case-protecting braces, en dashes, straight quotes."""
    return str(value).replace("{", "").replace("}", "").replace("--", "–").replace("`", "'").replace("\\&", "&")


def _sentence(text: str) -> str:
    text = _text(text)
    return text if text.endswith((".", "?", "!")) else f"{text}."


def _initials(given: str) -> str:
    # "Brett Ashley" -> "B. A.", "J. David" -> "J. D.", "Lars-Erik" -> "L.-E."
    words = given.replace(".", ". ").split()
    return " ".join("-".join(f"{part[0]}." for part in word.split("-") if part) for word in words)


def _apa_name(name: str, initials_first: bool = False) -> str:
    if "," not in name:
        return _text(name)  # an organisation
    family, given = (s.strip() for s in name.split(",", 1))
    return f"{_initials(given)} {family}" if initials_first else f"{family}, {_initials(given)}"


def _apa_names(names: tuple[str, ...], initials_first: bool = False) -> str:
    others = OTHERS in names
    shown = [_apa_name(n, initials_first) for n in names if n != OTHERS]
    if others:
        return ", ".join(shown) + ", et al."
    if len(shown) == 1:
        return shown[0]
    if initials_first:
        return ", ".join(shown[:-1]) + (", & " if len(shown) > 2 else " & ") + shown[-1]
    return ", ".join(shown[:-1]) + ", & " + shown[-1]


# Short forms and order -------------------------------------------------------------------------


def _family(name: str) -> str:
    return _text(name.split(",", 1)[0].strip())


def short_label(ref: Reference) -> str:
    """Author-year form: "Gibler 2009", "Benson & Clinton 2016", "Leeds et al. 2002"."""
    names = [n for n in ref.authors if n != OTHERS]
    if len(names) == 1 and OTHERS not in ref.authors:
        who = _family(names[0])
    elif len(names) == 2 and OTHERS not in ref.authors:
        who = f"{_family(names[0])} & {_family(names[1])}"
    else:
        who = f"{_family(names[0])} et al."
    return f"{who} {ref.year}"


def short_labels(refs: Iterable[Reference]) -> dict[str, str]:
    """Each reference's short form, with a, b, ... where two would read the same (APA's rule)."""
    by_label: dict[str, list[Reference]] = {}
    for ref in sorted(refs, key=_order):
        by_label.setdefault(short_label(ref), []).append(ref)
    labels = {}
    for label, group in by_label.items():
        for i, ref in enumerate(group):
            labels[ref.key] = label if len(group) == 1 else f"{label}{'abcdefghijklmnopqrstuvwxyz'[i]}"
    return labels


def _fold(text: str) -> str:
    # "Márquez" sorts with "Marquez": compare without accents or case
    return unicodedata.normalize("NFKD", _text(text)).encode("ascii", "ignore").decode().casefold()


def _order(ref: Reference) -> tuple:
    """Reference-list order: authors' family names, year, title."""
    return tuple(_fold(_family(n)) for n in ref.authors), ref.year, _fold(ref.get("title")), ref.key
