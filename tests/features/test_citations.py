"""Citations as data: every source carries its references, and foedus renders them as BibTeX and text.

The facts checked here are the published records (journal, volume, issue, pages) of the data
sets' own articles, as their authors and peacesciencer's ``ps_cite()`` give them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from foedus.features.citations import bibtex, citations_for, plain, render, short_labels, source_citations
from foedus.features.families import feature_families
from foedus.features.manifest import REFERENCE_TYPES, load_manifest, load_references
from foedus.features.table import sources_of
from foedus.infra.config import Paths
from foedus.infra.errors import ConfigError, InvalidInput

ROOT = Path(__file__).resolve().parents[2]
MANIFEST = ROOT / "data" / "sources.toml"
PATHS = Paths(root=ROOT, data=ROOT / "data", mirror=ROOT / "no-mirror")


def used_by(alliance: str) -> list[str]:
    # what a build records in its sidecar (pipelines.jobs._provenance): universe, labels, features
    return ["cow_ddy", f"{alliance}_alliance", *sources_of(feature_families(alliance))]


def keys(refs) -> set[str]:
    return {ref.key for ref in refs}


def test_every_source_cites_at_least_one_defined_reference():
    sources, references = load_manifest(MANIFEST), load_references(MANIFEST)
    assert len(sources) == 27
    for source in sources.values():
        assert source.cite, source.key
        assert all(key in references for key in source.cite), source.key


def test_every_reference_is_cited_by_some_source():
    cited = {key for source in load_manifest(MANIFEST).values() for key in source.cite}
    assert cited == set(load_references(MANIFEST))


def test_files_peacesciencer_prepared_cite_peacesciencer():
    # Miller (2022) asks users of peacesciencer's (and its companion isard's) data to cite the package
    for source in load_manifest(MANIFEST).values():
        if source.bundle in ("peacesciencer", "isard"):
            assert "miller2022peacesciencer" in source.cite, source.key
        else:
            assert "miller2022peacesciencer" not in source.cite, source.key


def test_references_match_the_published_records():
    refs = load_references(MANIFEST)
    atop = refs["leedsetal2002atop"]
    assert [atop.get(f) for f in ("journal", "year", "volume", "number", "pages")] == [
        "International Interactions", 2002, "28", "3", "237--260"]
    assert [a.split(",")[0] for a in atop.authors] == ["Leeds", "Ritter", "Mitchell", "Long"]
    gml = refs["gibleretal2016amid"]
    assert (gml.get("journal"), gml.year, gml.get("volume"), gml.get("number")) == (
        "International Studies Quarterly", 2016, "60", "4")
    ps = refs["miller2022peacesciencer"]
    assert (ps.get("journal"), ps.year, ps.get("volume"), ps.get("number")) == (
        "Conflict Management and Peace Science", 2022, "39", "6")
    bc = refs["bensonclinton2016avfma"]
    assert (bc.get("journal"), bc.year, bc.get("volume"), bc.get("number")) == (
        "Journal of Conflict Resolution", 2016, "60", "5")
    assert refs["gibler2009ima"].type == "book" and refs["gibler2009ima"].get("publisher") == "CQ Press"
    nmc = refs["singeretal1972cdu"]
    assert nmc.type == "incollection" and nmc.get("editor") == ("Russett, Bruce",) and nmc.year == 1972


def test_a_build_labelled_from_atop_cites_atop_and_gml_but_not_treaty_depth():
    cited = keys(citations_for(used_by("atop"), PATHS))
    assert {"leedsetal2002atop", "gibleretal2016amid", "miller2022peacesciencer", "singeretal1972cdu"} <= cited
    assert "bensonclinton2016avfma" not in cited  # no feature reads the Benson & Clinton scores
    assert "gibler2009ima" not in cited


def test_a_build_labelled_from_cow_cites_gibler_instead_of_atop():
    cited = keys(citations_for(used_by("cow"), PATHS))
    assert "gibler2009ima" in cited and "leedsetal2002atop" not in cited


def test_each_reference_once_in_reference_list_order_whatever_the_source_order():
    sources = used_by("atop")
    refs = citations_for(sources, PATHS)
    assert len(keys(refs)) == len(refs)
    assert refs == citations_for(list(reversed(sources)), PATHS)
    families = [ref.authors[0].split(",")[0].casefold() for ref in refs]
    assert families == sorted(families, key=lambda f: f.replace("á", "a"))


def test_unknown_source_is_named():
    with pytest.raises(ConfigError, match="source ucdp_acd is not in the manifest"):
        citations_for(["cow_ddy", "ucdp_acd"], PATHS)


def parse_bibtex(text: str) -> dict[str, tuple[str, dict[str, str]]]:
    """A small independent reader: entries @type{key, field = {value}, ...} with balanced braces."""
    entries = {}
    for chunk in (c.strip() for c in re.split(r"\n(?=@)", text.strip())):
        head = re.match(r"@(\w+)\{([^,\s]+),\n", chunk)
        assert head, chunk[:60]
        depth = 0
        for char in chunk:
            depth += {"{": 1, "}": -1}.get(char, 0)
            assert depth >= 0, chunk
        assert depth == 0 and chunk.endswith("}"), chunk
        fields = dict(re.findall(r"^  (\w+) = \{(.*)\},$", chunk, flags=re.M))
        assert head.group(2) not in entries
        entries[head.group(2)] = (head.group(1), fields)
    return entries


def test_bibtex_parses_back_with_every_required_field():
    refs = list(load_references(MANIFEST).values())
    entries = parse_bibtex(bibtex(refs))
    assert set(entries) == keys(refs)
    for kind, fields in entries.values():
        assert set(REFERENCE_TYPES[kind]) <= set(fields), (kind, fields)
    kind, atop = entries["leedsetal2002atop"]
    assert kind == "article" and atop["author"].startswith("Leeds, Brett Ashley and Ritter, Jeffrey M. and")
    # an organisation stays one name for BibTeX
    assert entries["cow2017states"][1]["author"] == "{Correlates of War Project}"


def test_plain_text_is_one_apa_like_line_per_reference():
    refs = citations_for(["atop_alliance", "cow_nmc"], PATHS)
    lines = plain(refs).splitlines()
    assert len(lines) == len(refs) == 4
    assert lines[0] == ("Leeds, B. A., Ritter, J. M., Mitchell, S. M., & Long, A. G. (2002). Alliance Treaty "
                        "Obligations and Provisions, 1815–1944. International Interactions, 28(3), 237–260. "
                        "https://doi.org/10.1080/03050620213653")
    assert "In B. Russett (Ed.), Peace, War, and Numbers (pp. 19–48). Sage." in lines[3]
    assert "{" not in plain(list(load_references(MANIFEST).values()))


def test_both_formats_stay_a_valid_bibtex_file():
    refs = citations_for(["cow_alliance"], PATHS)
    text = render(refs, "both")
    bib, comments = text.split("\n\n%", 1)
    assert parse_bibtex(bib).keys() == keys(refs)
    assert all(line.startswith("% ") for line in ("%" + comments).splitlines())
    with pytest.raises(InvalidInput, match="unknown citation format 'ris'"):
        render(refs, "ris")


def test_short_forms_are_author_year_and_unique():
    labels = short_labels(load_references(MANIFEST).values())
    assert labels["leedsetal2002atop"] == "Leeds et al. 2002"
    assert labels["bensonclinton2016avfma"] == "Benson & Clinton 2016"
    assert labels["gibler2009ima"] == "Gibler 2009"
    # two Miller 2022s: the territorial-threat article and peacesciencer, told apart as APA does
    # ordered by title, as APA does: "A Random Item Response Model ..." before "peacesciencer ..."
    assert (labels["miller2022rirm"], labels["miller2022peacesciencer"]) == ("Miller 2022a", "Miller 2022b")
    assert len(set(labels.values())) == len(labels)
    assert source_citations(PATHS)["atop_alliance"] == ["Leeds et al. 2002", labels["miller2022peacesciencer"]]


def broken_manifest(tmp_path, old: str, new: str) -> Path:
    text = MANIFEST.read_text()
    assert old in text
    target = tmp_path / "sources.toml"
    target.write_text(text.replace(old, new, 1))
    return target


def test_a_source_without_a_citation_is_named(tmp_path):
    path = broken_manifest(tmp_path, 'cite = ["gibler2009ima", "miller2022peacesciencer"]\n', "")
    with pytest.raises(ConfigError, match="source 'cow_alliance' has no citation"):
        load_manifest(path)


def test_a_source_citing_an_undefined_reference_is_named(tmp_path):
    path = broken_manifest(tmp_path, 'cite = ["gibler2009ima",', 'cite = ["gibler2008ima",')
    with pytest.raises(ConfigError, match=r"source 'cow_alliance' cites gibler2008ima, which has no \[references"):
        load_manifest(path)


@pytest.mark.parametrize("old, new, fragment", [
    ('journal = "International Interactions"\nyear = 2002', "year = 2002",
     "'leedsetal2002atop' (article) lacks journal"),
    ('type = "book"\nauthor = ["Gibler', 'type = "chapter"\nauthor = ["Gibler', "'gibler2009ima' has type 'chapter'"),
    ('pages = "237--260"', 'pagse = "237--260"', "unknown field pagse"),
    ('title = "Assessing the Variation', 'title = "{Assessing the Variation', "unbalanced braces"),
    ('author = ["Gibler, Douglas M."]', 'author = "Gibler, Douglas M."', "author must be a list of names"),
])
def test_a_malformed_reference_is_named(tmp_path, old, new, fragment):
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        load_references(broken_manifest(tmp_path, old, new))


def test_the_catalogue_names_each_features_citations():
    from foedus.features.catalogue import catalogue_frame
    from foedus.features.families import FAMILIES

    frame = catalogue_frame(FAMILIES, citations=source_citations(PATHS)).set_index("name")
    assert frame.loc["cinc_stronger", "cite"] == "Singer et al. 1972; Singer 1987; Miller 2022b"
    # a feature of several sources names each reference once
    threat = frame.loc["shared_threat", "cite"].split("; ")
    assert "Gibler et al. 2016" in threat and "Thompson & Dreyer 2011" in threat and len(threat) == len(set(threat))
    assert "cite" not in catalogue_frame(FAMILIES).columns  # callers without the manifest see the old frame
