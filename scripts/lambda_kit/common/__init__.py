"""What every stage shares: the error kinds, the contract with the Dockerfile, the runtimes table,
digests, temporary folders, disk space, tool process groups. Standard library only: the images run it."""
