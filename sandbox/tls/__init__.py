"""TLS for the platform, its hub and its query workers: a development CA
(``development``), what serving HTTPS needs besides uvicorn's own options (``web``: HSTS,
the plain-HTTP listener that redirects), and the scheme and client a TLS-terminating
reverse proxy names (``proxied``)."""
