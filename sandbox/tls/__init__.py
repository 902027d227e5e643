"""TLS for the platform and its query workers: a development CA (``development``), and
what serving HTTPS needs besides uvicorn's own options (``web``: HSTS, the plain-HTTP
listener that redirects)."""
