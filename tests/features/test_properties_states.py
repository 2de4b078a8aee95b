"""Properties of the state resolver: whatever a user types, a state or a clear one-line error.

``resolve`` promises (features/states.py): a COW code, a COW abbreviation in any case, or a
name ignoring case, dots, runs of whitespace and a leading "the" gives that state; with a
year, the state must be a member then; anything else raises ``StateNotFound`` (or, for the
year, ``InvalidInput``) with a message that fits on one line. Never another exception, never
a wait: the text goes through regexes (country_converter's) and difflib.
"""

from __future__ import annotations

import operator
import re
import time

import pytest
from foedus.features.states import ALIASES, MAX_QUERY
from foedus.features.years import FIRST_YEAR, LAST_YEAR
from foedus.infra.errors import InvalidInput, StateNotFound
from hypothesis import example, given, note, settings
from hypothesis import strategies as st

from tests.pipelines.cli_helpers import assert_user_error, foedus

# Reproducible in CI: the same examples on every run, a failure prints its falsifying example.
FAST = settings(max_examples=200, deadline=None, derandomize=True)

# What users and attackers type: injection, format strings, regex metacharacters, markup,
# control characters, digits of other scripts, numbers that are not codes.
NASTY = [
    "", " ", "\t\n\r", "\x00", "France\x00", "Fr\nance", "Fr\r\nance", "Fr\u2028ance", "\x1b[31mFrance",
    "'; DROP TABLE states;--", '" OR 1=1 --', "$(rm -rf /)", "`reboot`", "| cat /etc/passwd", "../../etc/passwd",
    "{0}", "{}", "{query!r}", "%s", "%(name)s %n", "(", ")", "[", "\\", ".*", "^$", "(a+)+$", "(?i)france|",
    "[/bold red]", "[bold]France", "[link=http://x]y[/link]", "<script>alert(1)</script>", "\u202eecnarF",
    "٢", "２", "²", "0", "000", "1000", "-2", "2.0", "1e3", "0x10", "None", "nan", "True", "the", "the the",
    "&", "...", "İstanbul", "ß", "ﬀ", "\ufeffFrance",
]

# Text of every kind: unicode (control and format characters included), whitespace only,
# nasty strings alone or inside other text, long repetitions, and integers.
long_texts = st.builds(operator.mul, st.text(min_size=1, max_size=8), st.integers(MAX_QUERY // 2, 10_000))
queries = st.one_of(
    st.text(),
    st.text(st.characters(categories=["Cc", "Cf", "Zs", "Zl", "Zp"])),
    st.sampled_from(NASTY),
    st.builds(operator.add, st.text(max_size=10), st.sampled_from(NASTY)),
    st.builds(operator.add, st.sampled_from(NASTY), st.text(max_size=10)),
    long_texts,
    st.integers(),
)
years = st.one_of(st.none(), st.integers(FIRST_YEAR - 100, LAST_YEAR + 100))


def resolve_or_refuse(registry, query, year=None):
    """The state ``query`` names, or None after checking the error is a clear one-line refusal.

    Where the query is a code or an abbreviation (the first two rules), the state must be that one."""
    text = str(query).strip()
    code = int(text) if re.fullmatch(r"[0-9]{1,3}", text) else None
    abb = next((s for s in registry.states.values() if s.abb == text.upper()), None) if code is None else None
    named = registry.states.get(code) if code is not None else abb
    started = time.perf_counter()
    try:
        state = registry.resolve(query, year)
    except InvalidInput as exc:  # StateNotFound is an InvalidInput
        message = str(exc)
        assert message.strip(), f"empty message for {query!r}"
        assert len(message.splitlines()) == 1, f"message of several lines for {query!r}: {message!r}"
        # clear, not an echo: a long query is quoted cut
        assert len(message) <= 500, f"message of {len(message)} characters for {query!r}"
        if isinstance(exc, StateNotFound):
            missing = [name for name in exc.candidates if name not in message]
            assert not missing, f"candidates {missing} not in the message {message!r}"
            assert named is None, f"{query!r} names {named} but is refused: {message}"
        if code is not None and named is None:
            assert f"no COW state has code {code}" in message
        state = None
    else:
        assert registry[state.ccode] is state
        assert named is None or state is named, f"{query!r} gave {state}, not {named}"
        if year is not None:
            assert state.is_member(year), f"{query!r} in {year} gave {state}, not a member then"
    elapsed = time.perf_counter() - started
    assert elapsed < 2, f"resolving {query!r} took {elapsed:.1f} s"
    return state


@pytest.fixture(scope="module")
def warm(registry):
    """The registry, after one lookup that reaches country_converter (its table loads once)."""
    with pytest.raises(StateNotFound):
        registry.resolve("no such country anywhere")
    return registry


# --- whatever is typed: a state or a clear refusal ------------------------------------------

@FAST
@given(query=queries, year=years)
@example(query="France" * 2000, year=None)
@example(query="\x00" * 10_000, year=1900)
def test_any_text_gives_a_state_or_a_one_line_refusal(warm, query, year):
    resolve_or_refuse(warm, query, year)


@FAST
@given(query=queries, year=st.integers(FIRST_YEAR, LAST_YEAR))
def test_a_year_only_checks_membership(warm, query, year):
    # the year never changes which state a query names: it is that state, or refused because
    # that state was not a member in the year
    state = resolve_or_refuse(warm, query)
    if state is None:
        return
    if state.is_member(year):
        assert warm.resolve(query, year) is state
    else:
        with pytest.raises(InvalidInput, match=f"was not a member of the state system in {year}"):
            warm.resolve(query, year)


@settings(max_examples=50, deadline=None, derandomize=True)
@given(query=st.one_of(st.floats(), st.booleans(), st.none(), st.binary(), st.lists(st.integers(), max_size=2)))
def test_what_is_neither_text_nor_a_whole_number_is_refused(warm, query):
    with pytest.raises(StateNotFound, match="cannot read .* as a state"):
        warm.resolve(query)


# --- what must resolve ----------------------------------------------------------------------

def test_every_state_resolves_by_its_code_abbreviation_and_name_in_each_of_its_years(registry):
    for state in registry.states.values():
        spells = state.member_years()
        first, last = spells[0][0], spells[-1][1]
        for query in (state.ccode, str(state.ccode), f"{state.ccode:03d}", state.abb, state.name):
            for year in (None, first, last):
                assert registry.resolve(query, year) is state, f"{query!r} in {year} is not {state}"


def test_every_alias_resolves_to_its_state(registry):
    for alias, ccode in ALIASES.items():
        if ccode in registry.states:
            assert registry.resolve(alias).ccode == ccode, alias


def recased(text: str, upper: list[bool]) -> str:
    return "".join(c.upper() if up else c.lower() for c, up in zip(text, upper + [False] * len(text)))


SPACES = " \t\n\r\x0b\x0c\u00a0\u2003\u3000"  # ASCII and unicode whitespace
whitespace = st.text(st.sampled_from(SPACES), max_size=4)
gaps = st.text(st.sampled_from(SPACES), min_size=1, max_size=3)


@FAST
@given(data=st.data())
def test_a_name_resolves_whatever_its_case_spacing_dots_and_leading_the(registry, data):
    state = registry[data.draw(st.sampled_from(sorted(registry.states)), label="ccode")]
    words = state.name.replace(" & ", " and ").split()
    if data.draw(st.booleans(), label="ampersand") and "and" in words:
        words[words.index("and")] = "&"
    text = words[0] + "".join(data.draw(gaps) + word for word in words[1:])
    for _ in range(data.draw(st.integers(0, 3), label="dots")):
        at = data.draw(st.integers(0, len(text)))
        text = text[:at] + "." + text[at:]
    if data.draw(st.booleans(), label="leading 'the'"):
        text = "the" + data.draw(gaps) + text
    text = recased(text, data.draw(st.lists(st.booleans(), max_size=len(text))))
    query = data.draw(whitespace) + text + data.draw(whitespace)
    note(f"query {query!r} for {state}")
    assert registry.resolve(query) is state


@FAST
@given(data=st.data())
def test_a_code_or_abbreviation_resolves_whatever_its_case_and_padding(registry, data):
    state = registry[data.draw(st.sampled_from(sorted(registry.states)), label="ccode")]
    form = data.draw(st.sampled_from([str(state.ccode), f"{state.ccode:03d}", state.abb]), label="form")
    form = recased(form, data.draw(st.lists(st.booleans(), max_size=len(form))))
    query = data.draw(whitespace) + form + data.draw(whitespace)
    assert registry.resolve(query) is state, query


@FAST
@given(data=st.data())
def test_a_state_is_refused_exactly_in_the_years_it_was_not_a_member(registry, data):
    state = registry[data.draw(st.sampled_from(sorted(registry.states)), label="ccode")]
    year = data.draw(st.integers(FIRST_YEAR - 50, LAST_YEAR + 50), label="year")
    spells = state.member_years()
    if not FIRST_YEAR <= year <= LAST_YEAR:
        with pytest.raises(InvalidInput, match=f"year {year} is outside {FIRST_YEAR}-{LAST_YEAR}"):
            registry.resolve(state.ccode, year)
    elif any(first <= year <= last for first, last in spells):
        assert registry.resolve(state.abb, year) is state
    else:
        with pytest.raises(InvalidInput, match=f"was not a member of the state system in {year}"):
            registry.resolve(state.abb, year)


# --- through the command line ---------------------------------------------------------------

@pytest.mark.parametrize(
    "query, shown",
    [
        ("Fr\nance", "'Fr\\nance'"),
        ("'; DROP TABLE states;-- $(rm -rf /) %s {0}", "'; DROP TABLE states;-- $(rm -rf /) %s {0}'"),
        ("France" * 2000, "12,000 characters"),
        ("[/x]", "'[/x]'"),  # rich markup: an unmatched closing tag was a MarkupError and a traceback
        ("[bold]Fr", "'[bold]Fr'"),  # an opening tag vanished from the message
    ],
    ids=["line-break", "injection", "very-long", "markup-close", "markup-open"],
)
def test_the_cli_refuses_nasty_names_in_one_line(paths, query, shown):
    assert_user_error(foedus("states", "resolve", query), "no state matches", shown)
