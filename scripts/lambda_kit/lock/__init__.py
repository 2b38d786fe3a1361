"""Reading the lock (Pipfile.lock, pylock.toml, uv.lock, poetry.lock, requirements.txt) into one model,
and checking it against its project file. The image reads only the Pipfile.lock model (lockfile)."""
