"""The platform's public keys, published so its signatures can be checked outside it.

Release bundles are signed with the release-signing key (``sandbox release verify
BUNDLE --public-key release-signing.pem``) and audit checkpoints with the audit key
(the checkpoint carries the raw key in hex; compare it with the one here). Publishing
them is what makes the record verifiable by the authority and by anyone holding a
bundle (R7: Shanghai Art.19-20; R8: Shanghai Art.25). Private keys never leave
``keys_dir``; only the public halves are read out.
"""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import HTMLResponse, PlainTextResponse

from sandbox.errors import NotFound
from sandbox.http.deps import SettingsDep
from sandbox.web.rendering import page_router, render
from sandbox.web.views import published_keys

router = page_router("/keys")

#: Download names of the PEM files.
PEM_FILES = {"release-signing.pem": "release", "audit-checkpoint.pem": "audit"}


@router.get("")
def keys(request: Request, settings: SettingsDep) -> HTMLResponse:
    return render(request, "keys.html", {"keys": published_keys(settings), "pem_files": PEM_FILES})


@router.get("/{filename}")
def pem(filename: str, settings: SettingsDep) -> PlainTextResponse:
    key = published_keys(settings).get(PEM_FILES.get(filename, ""))
    if key is None or key.pem is None:
        raise NotFound(f"no published key named {filename}", rule="key-unknown")
    return PlainTextResponse(
        key.pem,
        media_type="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
