"""The query service over HTTP (``/qs``): the routes a workspace calls, served by the
platform and by each agreement's worker (:mod:`sandbox.apps.worker`)."""
