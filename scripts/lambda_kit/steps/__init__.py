"""The build steps that turn the lock into packed dependencies: fetch, install, slim, compile, pack.
They run in the build image (incontainer) and on the host (the local builder) alike."""
