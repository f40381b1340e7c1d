"""Defaults the CLI's help quotes: kept free of imports so `clasp --help` stays instant."""

# The shipped model a new index gets: multilingual whisper-base frames. It beats clasp-tiny on
# every quality row (README, "Shipped models"); clasp-tiny stays the fast English choice.
DEFAULT_MODEL = "clasp-base"
