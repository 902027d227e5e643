"""The query service: the workspace's only door (routes, worker, query log)."""
