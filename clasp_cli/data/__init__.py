"""Corpora: built-in sentences, synthetic speech, importers of real corpora into manifests."""
