"""What of the function's own folder goes into the zip, and secrets in it."""
