"""The platform's HTTP API (FastAPI, OpenAPI at /docs): thin routers over the services."""
