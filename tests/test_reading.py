"""Reading like a listener: windows merged into chunks of up to 30 s, one language per recording,
and each chunk's timed words handed back to its windows."""

from __future__ import annotations

import numpy as np
import pytest

from clasp_cli.reading.align import speech_of, timed_words, window_texts
from clasp_cli.reading.chunks import reading_chunks
from clasp_cli.reading.language import Language, chunk_language, recording_language
from clasp_cli.reading.reader import Segment


# -- chunks ---------------------------------------------------------------------------------------


def test_every_window_is_in_exactly_one_chunk_of_at_most_30_s():
    rng = np.random.default_rng(0)
    t, spans = 0.0, []
    for _ in range(200):
        t += rng.uniform(-1.0, 3.0)  # overlaps and pauses
        d = rng.uniform(1.0, 6.0)
        spans.append((max(0.0, t), max(0.0, t) + d))
        t = max(0.0, t) + d
    spans.sort()
    chunks = reading_chunks(spans)
    assert sorted(w for c in chunks for w in c.windows) == list(range(len(spans)))
    assert all(c.seconds <= 30.0 for c in chunks)
    for c in chunks:  # a chunk's audio holds all of each of its windows
        assert all(c.start <= spans[w][0] and spans[w][1] <= c.end for w in c.windows)


def test_a_chunk_is_cut_at_the_longest_pause():
    spans = [(0, 5), (5.2, 10), (10.3, 15), (18.0, 22), (22.1, 27), (27.2, 33)]  # 3 s pause before window 3
    chunks = reading_chunks(spans)
    assert [c.windows for c in chunks] == [(0, 1, 2), (3, 4, 5)]


def test_speech_that_fits_in_30_s_is_one_chunk():
    assert [c.windows for c in reading_chunks([(0, 4), (5, 9), (20, 29.5)])] == [(0, 1, 2)]


def test_a_window_longer_than_30_s_is_a_chunk_of_its_own():
    chunks = reading_chunks([(0, 5), (6, 50), (51, 55)])
    assert [c.windows for c in chunks] == [(0,), (1,), (2,)]


# -- language -------------------------------------------------------------------------------------


def test_a_recording_takes_the_language_with_most_probability_over_its_speech():
    probs = [{"cs": 0.5, "sk": 0.4}, {"sk": 0.7, "cs": 0.2}, {"cs": 0.9}, {"cs": 0.8, "pl": 0.1}]
    lang = recording_language(probs, [10, 2, 10, 10])
    assert (lang.code, lang.source) == ("cs", "detected")


def test_a_short_recording_with_weak_evidence_takes_the_index_prior():
    lang = recording_language([{"ar": 0.45, "es": 0.3}], [2.0], prior="es")
    assert (lang.code, lang.source) == ("es", "prior")


def test_strong_evidence_beats_the_prior():
    assert recording_language([{"de": 0.97}], [12.0], prior="en").code == "de"


def test_the_prior_is_not_taken_where_the_speech_rules_it_out():
    assert recording_language([{"ja": 0.55, "zh": 0.44}], [2.0], prior="es").code == "ja"


def test_a_forced_language_is_read_everywhere():
    forced = recording_language([{"de": 0.99}], [30.0], forced="en")
    assert forced == Language("en", 1.0, "forced")
    assert chunk_language(forced, {"de": 0.99}, 30.0) == "en"


def test_a_long_chunk_switches_language_when_whisper_clearly_prefers_another():
    rec = Language("en", 0.8, "detected")
    assert chunk_language(rec, {"de": 0.52, "en": 0.15}, 24.0) == "de"
    assert chunk_language(rec, {"de": 0.6, "en": 0.3}, 24.0) == "en"  # not clearly
    assert chunk_language(rec, {"de": 0.45, "en": 0.01}, 24.0) == "en"  # not sure enough
    assert chunk_language(rec, {"pl": 0.999}, 6.0) == "en"  # too little speech: short chunks misfire


# -- words back onto windows ------------------------------------------------------------------------


def test_each_window_gets_the_words_said_inside_it_and_none_is_lost_in_a_pause():
    spans = [(0.0, 2.0), (2.5, 5.0)]
    (chunk,) = reading_chunks(spans)
    words = timed_words([Segment(0.0, 5.0, "one two three four five")], 0.0, False)
    texts = window_texts(chunk, words, spans, False)
    assert " ".join([texts[0], texts[1]]).split() == "one two three four five".split()
    assert texts[0].split()[0] == "one" and texts[1].split()[-1] == "five"


def test_a_word_in_the_overlap_of_two_windows_belongs_to_both():
    spans = [(0.0, 3.0), (2.0, 5.0)]
    (chunk,) = reading_chunks(spans)
    words = [(1.0, "a"), (2.5, "b"), (4.0, "c")]
    assert window_texts(chunk, words, spans, False) == {0: "a b", 1: "b c"}


def test_a_segment_running_on_into_a_pause_times_its_words_in_its_speech():
    # Whisper ends the first sentence's segment at 4.0, well into the pause before the next window.
    spans = [(0.0, 2.0), (4.0, 6.0)]
    segs = [Segment(0.0, 4.0, "please hold the line"), Segment(4.0, 6.0, "your call matters")]
    words = timed_words(segs, 0.0, False, speech_of(spans))
    assert all(not 2.0 < t < 4.0 for t, _ in words)
    (chunk,) = reading_chunks(spans)
    assert window_texts(chunk, words, spans, False) == {0: "please hold the line", 1: "your call matters"}


def test_a_segment_with_no_speech_inside_is_spread_over_its_own_span():
    words = timed_words([Segment(2.2, 3.8, "hm yes")], 0.0, False, speech_of([(0.0, 2.0), (4.0, 6.0)]))
    assert all(2.2 <= t <= 3.8 for t, _ in words)


def test_the_speech_of_overlapping_windows_is_their_union():
    assert speech_of([(2.0, 5.0), (0.0, 3.0), (7.0, 8.0)]) == [(0.0, 5.0), (7.0, 8.0)]


def test_unspaced_languages_time_each_character():
    words = timed_words([Segment(0.0, 2.0, "天气很好")], 10.0, True)
    assert [w for _, w in words] == list("天气很好") and 10.0 < words[0][0] < words[-1][0] < 12.0


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_segment_gives_no_words(text):
    assert timed_words([Segment(0.0, 1.0, text)], 0.0, False) == []


def test_a_chunk_may_say_a_sentence_twice_but_not_stutter():
    from clasp_cli.transcribe import looped, stutters

    twice = "The river is cold today. The river is cold today."
    assert looped(twice) and not stutters(twice)  # a window that says it twice loops; 30 s of speech may
    assert stutters("we have to go we have to go we have to go now")
