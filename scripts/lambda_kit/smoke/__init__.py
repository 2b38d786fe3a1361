"""make smoke: the zip run as Lambda runs it, in the runtime image (or on the host)."""
