"""Where the dependencies are built: Docker (context, engine, container session) or the host (local);
the process runner on `sh` and the build's progress."""
