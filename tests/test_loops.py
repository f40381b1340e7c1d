"""Whisper's greedy decoder can go round a window's sentence again; such transcripts are caught and cut."""

from __future__ import annotations

import pytest

from clasp_cli.transcribe import cut_loop, drop_repeats, looped

# Transcripts whisper-base really made of examples/archive windows before the loop guard.
LOOPS = [
    ("Walk past the bakery and turn left at the second traffic light. Walk past the bakery and turn left at the "
     "second traffic light. Walk past the bakery", "Walk past the bakery and turn left at the second traffic light."),
    ("Directions to the new office Directions to the new office Directions to the", "Directions to the new office"),
    ("Saturday starts cloudy, with every rain moving in from the coast by afternoon. Saturday starts cloudy when heavy "
     "rain moving in From the coast by the afternoon Saturday starts cloudy When heavy",
     "Saturday starts cloudy, with every rain moving in from the coast by afternoon."),
    # The second pass glues words the first kept apart ("kilo-ofripe"), which a word-by-word cut missed.
    ("Add a kilo of ripe tomatoes, a little sugar and a handful of fresh basil. Add a kilo-ofripe tomatoes, a litle "
     "sugar and a hand full of fresh basil . Add a", "Add a kilo of ripe tomatoes, a little sugar and a handful of fresh basil."),
]


@pytest.mark.parametrize("text,kept", LOOPS)
def test_a_transcript_that_goes_round_again_is_caught_and_cut_after_its_first_pass(text, kept):
    assert looped(text)
    assert cut_loop(drop_repeats(text)) == kept
    assert not looped(kept)


@pytest.mark.parametrize("text", [
    "The budget passed by 7 votes to 4.",
    "Two members argued that the bus network needed more funding instead.",
    "No, no, I said the train, not the tram.",
    "",
])
def test_ordinary_speech_is_left_alone(text):
    assert not looped(text) and cut_loop(text) == text and drop_repeats(text) == text
