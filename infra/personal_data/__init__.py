"""Erasure from an immutable log by crypto-shredding: see codec.py and docs/erasure.md."""
