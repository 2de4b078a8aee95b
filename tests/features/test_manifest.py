from pathlib import Path

from foedus.features.manifest import load_manifest

ROOT = Path(__file__).resolve().parents[2]
COMMITS = {
    "peacesciencer": "fe150a2648056fbd4fbbbd833f0c9e437b2ed04b",
    "isard": "46944ad97a5532cd8e3b33129463c8435a69846a",
    "atop4": "4908275a7b23f904142856818e5e1ac46127deeb",
}
# Files later peacesciencer commits removed are pinned at the last commit that had them.
SPECIAL = {
    "peacesciencer/cow_alliance.rda": "6df46f446d8bd5a5b0185a39959ca5444f5faef0",
    "peacesciencer/cow_sdp_gdp.rda": "2bb332117051fc00cbaaadde9a7470274a419119",
}


def test_manifest_lists_every_file_of_the_shared_data_with_its_checksum(mirror):
    sums = {}
    for line in (mirror / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name.removeprefix("./")] = digest
    manifest = load_manifest(ROOT / "data/sources.toml")
    assert {s.path: s.sha256 for s in manifest.values()} == sums


def test_manifest_urls_point_at_the_pinned_commits(mirror):
    for source in load_manifest(ROOT / "data/sources.toml").values():
        commit = SPECIAL.get(source.path, COMMITS[source.bundle])
        assert source.commit == commit
        assert source.url.startswith("https://raw.githubusercontent.com/")
        assert f"/{commit}/data/{Path(source.path).name}" in source.url
