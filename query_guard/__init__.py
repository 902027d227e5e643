"""Query guard: per-agreement DuckDB databases, the sqlglot guard, the query service."""
