"""The kit's lines to the user, in one voice: each starts with the kit's name, so a Jenkins log or a
terminal shows which lines are the kit's. Every line the kit writes about itself is made here (the
error lines too: contract.error_lines). Standard library only: the image writes these lines."""

PREFIX = "lambda-kit: "


def line(text: str) -> str:
    """One of the kit's lines: what it did, found or decided."""
    return PREFIX + text


def warning(text: str) -> str:
    """Something the user should know that does not stop the run."""
    return f"{PREFIX}warning: {text}"
