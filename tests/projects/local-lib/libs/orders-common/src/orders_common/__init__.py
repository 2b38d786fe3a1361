"""Shared helpers the sample function imports from a local path dependency."""

VERSION = "1.4.0"


def normalise_sku(sku: str) -> str:
    return sku.strip().lower()
