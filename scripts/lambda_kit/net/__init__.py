"""Reaching package indexes as pip and pipenv would: settings (pip's own configuration, the kit's, the
lock's sources), HTTP, reachability probes, index pages. Runs in the images too (standard library only)."""
