"""Frozen encoders behind two small protocols: speech -> frames, text -> unit vectors."""

from .speech import SpeechEncoder, SpeechFeatures, build_speech_encoder
from .text import TextEncoder, build_text_encoder

__all__ = ["SpeechEncoder", "SpeechFeatures", "TextEncoder", "build_speech_encoder", "build_text_encoder"]
