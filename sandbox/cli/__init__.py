"""The ``sandbox`` command line (Typer): the same services and permission checks as the API."""
