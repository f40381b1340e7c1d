"""Reading what was said the way a listener hears it: a recording's windows merged into reading
chunks of up to 30 s (Whisper's context), one language per recording, and each chunk's words
handed back to the windows they were said in.

    chunks.py    windows -> reading chunks, cut at the longest pauses
    language.py  a recording's language from Whisper's probabilities, the index's prior, switches
    reader.py    batched decoding of chunks with timestamps (and the loop guard)
    align.py     timed segments -> each window's words
"""
