"""Operator functions: provision, suspend, revoke and destroy per-agreement workspaces (R16)."""
