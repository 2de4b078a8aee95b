"""The state registry and resolve_state, on the real COW list."""

import pytest
from foedus.features.states import resolve_state
from foedus.infra.errors import InvalidInput, StateNotFound


@pytest.mark.parametrize(
    "query, ccode",
    [
        (2, 2), ("2", 2), ("710", 710),
        ("USA", 2), ("CHN", 710), ("TAW", 713), ("ukg", 200), ("AUL", 900),
        ("United States", 2), ("United States of America", 2), ("the United States", 2),
        ("Russia", 365), ("Soviet Union", 365), ("USSR", 365),
        ("Taiwan", 713), ("South Korea", 732), ("North Korea", 731), ("UK", 200), ("Britain", 200),
        ("Germany", 255), ("Prussia", 255), ("West Germany", 260), ("East Germany", 265),
        ("Czechia", 316), ("Burma", 775), ("Cote d'Ivoire", 437), ("Ottoman Empire", 640),
        ("India", 750), ("Australia", 900), ("St. Lucia", 56),
    ],
)
def test_resolves_codes_abbreviations_and_common_names(registry, query, ccode):
    assert resolve_state(query, registry=registry).ccode == ccode


def test_state_carries_its_membership_spells(registry):
    poland = resolve_state("Poland", registry=registry)
    assert poland.abb == "POL"
    assert poland.member_years() == [(1918, 1939), (1945, 2024)]
    assert poland.is_member(1939) and not poland.is_member(1942)


def test_unknown_name_lists_the_closest_matches(registry):
    with pytest.raises(StateNotFound, match="no state matches 'Frnace'; closest matches: France \\(220\\)") as info:
        resolve_state("Frnace", registry=registry)
    assert "France (220)" in info.value.candidates


def test_unknown_code_lists_the_nearest_codes(registry):
    with pytest.raises(StateNotFound, match="no COW state has code 999; nearest codes: 990 Samoa"):
        resolve_state(999, registry=registry)


def test_ambiguous_name_is_an_error_listing_the_candidates(registry):
    with pytest.raises(StateNotFound, match="ambiguous") as info:
        resolve_state("Austria Hungary Slovakia", registry=registry)
    assert len(info.value.candidates) >= 2


def test_year_checks_membership_and_range(registry):
    assert resolve_state("Estonia", 1925, registry=registry).ccode == 366
    with pytest.raises(InvalidInput, match="Estonia .* was not a member of the state system in 1950"):
        resolve_state("Estonia", 1950, registry=registry)
    with pytest.raises(InvalidInput, match="year 2031 is outside 1816-2024"):
        resolve_state("Estonia", 2031, registry=registry)
