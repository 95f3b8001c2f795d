"""First-party plugins, one package per API area."""
