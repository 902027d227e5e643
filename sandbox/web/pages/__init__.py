"""The page routers, one module per audience."""
