"""JupyterHub configuration helpers (hooks imported by jupyterhub_config.py)."""
