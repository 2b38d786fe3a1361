"""The audit of a zip: what Lambda would reject or break on (structure, sizes, native code as the
loader resolves it, dependency closure, secrets), as findings with rule ids and hints."""
