"""The built-in text corpus: splitting, cleaning, the Debian sources, the held-out test subset."""

from __future__ import annotations


import pytest

from clasp_cli.data import corpus
from clasp_cli.data.sentences import Sentence
from clasp_cli.errors import ManifestError, UsageError

needs_debian_sources = pytest.mark.skipif(
    bool(corpus.missing_packages()),
    reason=f"Debian packages missing: {' '.join(corpus.missing_packages())} "
    f"(apt-get install -y {' '.join(corpus.missing_packages())}); CI installs them",
)


@pytest.fixture(scope="module")
def builtin() -> list[Sentence]:
    return corpus.builtin_corpus()


# --- split_sentences -------------------------------------------------------------------------


def test_split_keeps_titles_and_street_abbreviations_inside_a_sentence():
    text = "Mr. Smith met Dr. Jones on St. James Street. They talked for an hour."
    assert corpus.split_sentences(text) == [
        "Mr. Smith met Dr. Jones on St. James Street.",
        "They talked for an hour.",
    ]


def test_split_keeps_eg_ie_and_etc_inside_a_sentence():
    text = "Bring fruit, e.g. apples, i.e. something sweet, pens, paper, etc. to the meeting. Then we start."
    assert corpus.split_sentences(text) == [
        "Bring fruit, e.g. apples, i.e. something sweet, pens, paper, etc. to the meeting.",
        "Then we start.",
    ]


def test_split_ends_a_sentence_at_etc_when_a_new_one_begins():
    assert corpus.split_sentences("We bought pens, paper, etc. Then we went home.") == [
        "We bought pens, paper, etc.",
        "Then we went home.",
    ]


def test_split_keeps_initials_together():
    assert corpus.split_sentences("J. R. R. Tolkien wrote it. It is long.") == [
        "J. R. R. Tolkien wrote it.",
        "It is long.",
    ]


def test_split_ends_after_a_closing_quote_but_not_before_a_lowercase_speech_tag():
    text = 'She said, "We leave at noon." Nobody answered. "Why?" he asked.'
    assert corpus.split_sentences(text) == ['She said, "We leave at noon."', "Nobody answered.", '"Why?" he asked.']


def test_split_treats_an_ellipsis_before_a_capital_as_an_end_and_before_lowercase_as_a_pause():
    assert corpus.split_sentences("I was thinking... Maybe not. Wait... what was that?") == [
        "I was thinking...",
        "Maybe not.",
        "Wait... what was that?",
    ]


def test_split_joins_wrapped_lines_and_breaks_at_blank_lines():
    text = "The rain in the north\nwas heavy all night.\n\nA new paragraph\nstarts here"
    assert corpus.split_sentences(text) == ["The rain in the north was heavy all night.", "A new paragraph starts here"]


# --- clean_sentence --------------------------------------------------------------------------


def test_clean_normalises_whitespace_and_curly_quotes():
    messy = "  He  said \u201cgood\tmorning\u201d to   everyone.  "
    assert corpus.clean_sentence(messy) == 'He said "good morning" to everyone.'


def test_clean_adds_a_final_period_and_a_capital_letter():
    assert corpus.clean_sentence("a city is a large community of lonely people") == (
        "A city is a large community of lonely people."
    )


def test_clean_rejects_an_attribution_line():
    assert corpus.clean_sentence("-- Mark Twain") is None
    assert corpus.clean_sentence("\t\t-- Samuel Clemens, in a letter to his wife") is None


def test_clean_strips_a_trailing_attribution():
    assert corpus.clean_sentence("A friend is a present you give yourself. -- Robert Louis Stevenson") == (
        "A friend is a present you give yourself."
    )


def test_clean_rejects_more_than_47_words_and_keeps_47():
    assert corpus.clean_sentence(" ".join(["word"] * 47) + ".") is not None
    assert corpus.clean_sentence(" ".join(["word"] * 48) + ".") is None


def test_clean_rejects_fewer_than_4_words():
    assert corpus.clean_sentence("Go home now.") is None
    assert corpus.clean_sentence("Go home right now.") == "Go home right now."


@pytest.mark.parametrize(
    "text",
    [
        "See https://example.com/page for all of the details.",
        "Write to me at someone@example.org about the new plan.",
        "if (x == 1) { return y; } else { return z; }",
        "1 Mole = 007 Secret Agents, and 2 pints = 1 Cavort",
        "|__|  /\\  |__|  ~~~ ascii art ~~~ |__|",
        "12 34 56 78 90 11 22 33 44 55",
    ],
)
def test_clean_rejects_urls_code_and_symbols(text):
    assert corpus.clean_sentence(text) is None


def test_clean_rejects_all_caps_headers():
    assert corpus.clean_sentence("THE SECOND BOOK OF THE KINGS") is None


def test_clean_keeps_a_single_capitalised_word_in_a_sentence():
    assert corpus.clean_sentence("And the LORD spake unto Moses, saying this.") is not None


def test_clean_strips_leading_verse_numbers_and_enumerators():
    assert corpus.clean_sentence("3:16 For God so loved the world.") == "For God so loved the world."
    assert corpus.clean_sentence("(2) Great generals are forewarned.") == "Great generals are forewarned."


def test_clean_rejects_a_fragment_ending_in_a_comma_or_colon():
    assert corpus.clean_sentence("Seventeenth rule of friendship among men:") is None
    assert corpus.clean_sentence("and then there were only three of them,") is None


def test_clean_removes_an_unbalanced_quote():
    assert corpus.clean_sentence('"We leave at noon, he said to us.') == "We leave at noon, he said to us."


def test_clean_rejects_mojibake():
    assert corpus.clean_sentence("Here\u00c3\u00a2\u00c2\u0080\u00c2\u0099s the thing about lawyers.") is None


# --- de-duplication and text files -----------------------------------------------------------


def test_dedup_ignores_case_and_punctuation_and_keeps_the_first():
    sentences = [
        Sentence("Hello, world: how are you?", "a"),
        Sentence("hello world how are you", "b"),
        Sentence("HELLO WORLD. HOW ARE YOU!", "c"),
        Sentence("Hello world, who are you?", "d"),
    ]
    assert [s.domain for s in corpus.deduplicate(sentences)] == ["a", "d"]


def test_load_text_files_uses_the_file_stem_as_domain(tmp_path):
    path = tmp_path / "cooking.txt"
    path.write_text("Boil the water first.\nThen add\nthe pasta slowly. Boil the water first!\n", encoding="utf-8")
    sentences = corpus.load_text_files([path])
    assert [(s.text, s.domain, s.lang) for s in sentences] == [
        ("Boil the water first.", "cooking", "en"),
        ("Then add the pasta slowly.", "cooking", "en"),
    ]
    assert corpus.load_text_files([path], domain="food")[0].domain == "food"


def test_load_text_files_names_an_unreadable_file(tmp_path):
    path = tmp_path / "latin1.txt"
    path.write_bytes("Caf\xe9 au lait is very good.".encode("latin-1"))
    with pytest.raises(ManifestError, match="latin1.txt"):
        corpus.load_text_files([path])


# --- the built-in corpus (Debian fortunes + bible-kjv) -----------------------------------------


@needs_debian_sources
def test_builtin_corpus_has_at_least_20000_distinct_sentences(builtin):
    keys = {corpus.dedup_key(s.text) for s in builtin}
    assert len(builtin) >= 20000
    assert len(keys) == len(builtin)


@needs_debian_sources
def test_builtin_corpus_has_at_least_10_domains_of_substance(builtin):
    per_domain: dict[str, int] = {}
    for s in builtin:
        per_domain[s.domain] = per_domain.get(s.domain, 0) + 1
    assert len([d for d, n in per_domain.items() if n >= 50]) >= 10
    assert {"news", "religion", "science", "sports", "food", "love", "computers"} <= set(per_domain)


@needs_debian_sources
def test_builtin_corpus_contains_no_test_subset_sentence(builtin):
    held_out = {corpus.dedup_key(s.text) for s in corpus.test_subset()}
    assert not held_out & {corpus.dedup_key(s.text) for s in builtin}


@needs_debian_sources
def test_builtin_corpus_sentences_are_clean_english(builtin):
    for s in builtin:
        assert s.lang == "en" and s.source
        assert corpus.MIN_WORDS <= len(s.text.split()) <= corpus.MAX_WORDS
        assert corpus.clean_sentence(s.text) == s.text


@needs_debian_sources
def test_builtin_corpus_interleaves_domains_so_a_prefix_is_balanced(builtin):
    first = builtin[:1000]
    largest = max(sum(s.domain == d for s in first) for d in {s.domain for s in first})
    assert largest <= 100


@needs_debian_sources
def test_builtin_corpus_raises_when_asked_for_more_than_it_has(builtin):
    with pytest.raises(ManifestError, match="fewer than"):
        corpus.builtin_corpus(min_sentences=len(builtin) + 1)


def test_builtin_corpus_names_the_missing_debian_package(monkeypatch, tmp_path):
    monkeypatch.setattr(corpus, "_PACKAGES", {**corpus._PACKAGES, "fortunes": tmp_path / "absent"})
    with pytest.raises(ManifestError, match=r"fortunes.*apt-get install -y fortunes"):
        corpus.builtin_corpus()


@needs_debian_sources
def test_builtin_corpus_is_deterministic():
    corpus._builtin.cache_clear()
    first = corpus.builtin_corpus()
    corpus._builtin.cache_clear()
    assert [s.text for s in corpus.builtin_corpus()] == [s.text for s in first]


# --- the held-out test subset and its translations -------------------------------------------


def test_test_subset_has_exactly_200_sentences_with_distinct_ids():
    subset = corpus.test_subset()
    ids = [s.source for s in subset]
    assert len(subset) == 200
    assert len(set(ids)) == 200


def test_test_subset_has_all_five_translations_non_empty():
    for s in corpus.test_subset():
        assert set(s.translations) == set(corpus.TEST_LANGS), s.source
        assert all(t.strip() and t != s.text for t in s.translations.values()), s.source


def test_test_subset_spans_at_least_10_domains_with_6_to_25_words_each():
    subset = corpus.test_subset()
    assert len({s.domain for s in subset}) >= 10
    assert all(6 <= len(s.text.split()) <= 25 for s in subset)


def test_test_subset_sentences_are_distinct():
    assert len({corpus.dedup_key(s.text) for s in corpus.test_subset()}) == 200


def test_non_english_sets_cover_at_least_4_languages_with_the_english_original():
    sets = corpus.non_english_sentences()
    english = {s.source: s.text for s in corpus.test_subset()}
    assert len(sets) >= 4 and "en" not in sets
    for lang, sentences in sets.items():
        assert len(sentences) == 200
        assert all(s.lang == lang and s.translations["en"] == english[s.source] for s in sentences)
        assert all(s.text == s.translations.get(lang, s.text) for s in sentences)


def test_non_english_sets_refuse_a_language_without_translations():
    with pytest.raises(UsageError, match="'it'"):
        corpus.non_english_sentences(["it"])
