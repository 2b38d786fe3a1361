"""Packed dependencies reused: the machine's cache, the fleet's shared cache (signed), their keys."""
