"""Server-rendered pages for the public, researchers, providers, operators and the authority.

Pages are thin: each route calls the same service functions as the JSON API
and renders a Jinja2 template. :func:`sandbox.apps.pages.install_pages` mounts them.
"""
