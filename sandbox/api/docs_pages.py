"""The API's documentation pages, /docs (Swagger UI) and /redoc, served without the internet.

FastAPI's own pages load their scripts, styles, fonts and favicon from CDNs, so on a
platform without internet access (the usual case for a data sandbox) they are blank. These
pages load the copies under ``sandbox/web/static/apidocs`` (Swagger UI and ReDoc, each with
its licence; see the README there). Swagger UI's online validator is turned off, and a
content security policy keeps images to this origin: ReDoc's sidebar would otherwise fetch
its maker's logo from outside (it hides the logo when it cannot load it).
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse

ASSETS = "/static/apidocs"
FAVICON = "/favicon.ico"
#: Images from this origin and inline ones only; scripts and styles come from ASSETS anyway.
IMAGES_HERE = {"Content-Security-Policy": "img-src 'self' data:"}


def install_docs(app: FastAPI) -> None:
    """Add /docs, its OAuth2 redirect and /redoc; the app must be made with
    ``docs_url=None, redoc_url=None`` so FastAPI's CDN pages are not there as well."""
    openapi_url = app.openapi_url or "/openapi.json"
    redirect_url = "/docs/oauth2-redirect"

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} · Swagger UI",
            oauth2_redirect_url=redirect_url,
            swagger_js_url=f"{ASSETS}/swagger-ui/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui/swagger-ui.css",
            swagger_favicon_url=FAVICON,
            swagger_ui_parameters={"validatorUrl": None},  # its badge is fetched from outside
        )
        page.headers.update(IMAGES_HERE)
        return page

    @app.get(redirect_url, include_in_schema=False)
    def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        page = get_redoc_html(
            openapi_url=openapi_url,
            title=f"{app.title} · ReDoc",
            redoc_js_url=f"{ASSETS}/redoc/redoc.standalone.js",
            redoc_favicon_url=FAVICON,
            with_google_fonts=False,
        )
        page.headers.update(IMAGES_HERE)
        return page
