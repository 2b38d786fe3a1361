"""Zips read with bounded work and written byte-reproducibly (the deflate on several cores)."""
