"""What a build was asked for and what it resolves to, checked before anything runs."""
