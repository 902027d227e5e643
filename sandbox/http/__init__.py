"""What the API and the pages share at the HTTP edge: request dependencies (database,
settings, the signed-in user and their role), sign-in, the client's address, the request
checks, and the one mapping of error kinds to HTTP answers."""
