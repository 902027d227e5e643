"""Ingress and egress at the workspace's Jupyter server: no file comes in but through an
import request a provider approved, and no file goes out but through an export request.

Both are enforced in the server, not only hidden in JupyterLab's menus
(``SINGLEUSER_ARGS`` in sandbox/workspaces/hardening.py puts them on every workspace's
command line, Docker and development alike):

* :class:`IngressContentsManager` refuses every base64 save (JupyterLab sends each upload,
  dropped or picked, as ``{"type": "file", "format": "base64", ...}``, large ones in
  ``chunk``\\ s), every chunked save, a text file larger than the editor writes
  (:data:`MAX_TEXT_BYTES`) and a notebook carrying attachments (files dropped or pasted
  into a Markdown cell). Notebooks and text files written in the editor keep saving.
  Binary contents are not served to the browser either (``format=base64`` reads).
* :func:`_load_jupyter_server_extension` closes ``/files/`` (downloads), ``/view/`` and
  ``/nbconvert/`` (a notebook exported as HTML, PDF or a script) with a refusal in place of
  the route.

This is defence in depth (THREAT_MODEL): whatever a kernel shows reaches the screen, where
it can be read, copied or photographed, and text typed or pasted into a cell comes in. What
protects the data is that, in aggregate mode, nothing individual ever reaches the workspace
to be carried out or linked with what comes in, and that the query engine reads no file of
the workspace. Every refusal names its rule and article, in Chinese and English.

Only the standard library, the Jupyter server and :mod:`sandbox.errors` are imported: the
image has nothing else of the platform.
"""

from __future__ import annotations

import json
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web
from traitlets import Int, default

from sandbox.errors import PolicyViolation

UPLOAD = "workspace-upload"
DOWNLOAD = "workspace-download"
#: The provider decides what enters the sandbox under the agreement's conditions of use
#: (Shanghai Art.15), and every entry is in the full record (Shanghai Art.20).
ART_INGRESS = "Shanghai Art.15, 20; agreement clause imports"
#: Outputs leave only as the agreement's review clause says (Shanghai Art.15).
ART_EGRESS = "Shanghai Art.15; agreement clause review"
#: The largest text file the editor saves; larger text is an upload by another name.
MAX_TEXT_BYTES = 1024 * 1024
#: Where a researcher asks for a file to be brought in.
IMPORT_HINT = (
    "请在平台上提出导入申请（/api/imports），数据提供方审核通过后文件出现在 project/imports/ · "
    "ask for an import on the platform (/api/imports); once the provider approves it, it "
    "appears in project/imports/"
)
EXPORT_HINT = (
    "成果只能通过导出申请离开工作空间 · outputs leave the workspace only through an export "
    "request (db.export(...) in a notebook, or the platform's page)"
)


def _upload_refused(what_zh: str, what_en: str) -> PolicyViolation:
    return PolicyViolation(
        UPLOAD, ART_INGRESS, f"{what_zh}，不能直接上传到工作空间 · {what_en}: {IMPORT_HINT}"
    )


def _download_refused(what_zh: str, what_en: str) -> PolicyViolation:
    return PolicyViolation(DOWNLOAD, ART_EGRESS, f"{what_zh} · {what_en}; {EXPORT_HINT}")


def check_save(model: dict[str, Any], *, max_text_bytes: int = MAX_TEXT_BYTES) -> None:
    """Raise :class:`PolicyViolation` unless ``model`` (a contents API save) is a notebook
    without attachments, a directory, or a text file the editor writes.

    >>> check_save({"type": "file", "format": "text", "content": "print(1)"})
    >>> check_save({"type": "file", "format": "base64", "content": "AA=="})
    Traceback (most recent call last):
    sandbox.errors.PolicyViolation: ... [workspace-upload; Shanghai Art.15, 20; ...]
    """
    kind, form = model.get("type"), model.get("format")
    if model.get("chunk") is not None:
        raise _upload_refused("分块上传的文件", "a file sent in chunks is an upload")
    if kind == "file" and "content" in model and form != "text":
        raise _upload_refused(
            "二进制（base64）文件", f"a {form or 'binary'} file save is an upload"
        )
    if kind == "file" and model.get("content") is not None:
        size = len(str(model["content"]).encode("utf-8"))
        if size > max_text_bytes:
            raise _upload_refused(
                f"超过 {max_text_bytes // 1024} KiB 的文本文件",
                f"a text file of {size // 1024} KiB is more than the editor writes "
                f"(at most {max_text_bytes // 1024} KiB)",
            )
    if kind == "notebook" and isinstance(model.get("content"), dict):
        cells = model["content"].get("cells") or []
        if any(isinstance(c, dict) and c.get("attachments") for c in cells):
            raise _upload_refused(
                "含附件（拖入或粘贴到 Markdown 单元格的文件）的笔记本",
                "a notebook whose Markdown cells carry attachments (files dropped or pasted "
                "into them) brings files in; remove the attachments",
            )


def check_served(model: dict[str, Any]) -> None:
    """Raise :class:`PolicyViolation` when ``model`` (a contents API read) would hand the
    browser a binary file's bytes."""
    if model.get("type") == "file" and model.get("format") == "base64" and model.get("content"):
        raise _download_refused(
            "二进制文件不向浏览器提供（图表在笔记本中显示）",
            "binary files are not handed to the browser (figures show in the notebook)",
        )


def _http(refusal: PolicyViolation) -> web.HTTPError:
    """The refusal as the contents API answers it: 403 with the message in JSON."""
    return web.HTTPError(403, str(refusal), reason="Forbidden")


class IngressContentsManager(AsyncLargeFileManager):
    """The workspace's contents manager: the stock one, refusing uploads and binary reads
    (:func:`check_save`, :func:`check_served`)."""

    max_text_bytes = Int(
        MAX_TEXT_BYTES, help="The largest text file (bytes of UTF-8) the editor may save."
    ).tag(config=True)

    @default("files_handler_class")
    def _closed_files(self) -> type[web.RequestHandler]:
        return ClosedRoute

    @default("files_handler_params")
    def _closed_files_params(self) -> dict[str, Any]:
        return {}

    async def save(self, model: dict[str, Any], path: str = "") -> dict[str, Any]:
        try:
            check_save(model, max_text_bytes=self.max_text_bytes)
        except PolicyViolation as refusal:
            self.log.warning("refused a save to %s: %s", path, refusal.rule)
            raise _http(refusal) from None
        return await super().save(model, path)

    async def get(self, path: str, content: bool = True, type=None, format=None, **kw):  # noqa: A002
        model = await super().get(path, content=content, type=type, format=format, **kw)
        try:
            check_served(model)
        except PolicyViolation as refusal:
            raise _http(refusal) from None
        return model


class ClosedRoute(web.RequestHandler):
    """A download route, closed: every method answers 403 with the rule and article."""

    def initialize(self, **_: Any) -> None:  # the files handler's parameters are ignored
        pass

    def prepare(self) -> None:
        refusal = _download_refused(
            "工作空间不提供文件下载或导出", "the workspace serves no file downloads or exports"
        )
        self.set_status(403)
        self.set_header("Content-Type", "application/json; charset=UTF-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(json.dumps({"message": str(refusal), **refusal.to_dict()}, ensure_ascii=False))


#: The routes closed in front of the server's own (tornado matches rules added by an
#: extension before the server's).
CLOSED_ROUTES = ("files", "view", "nbconvert")


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp) -> None:  # type: ignore[no-untyped-def]
    """Close the download routes, and refuse to run without the refusing contents manager
    (a server that would take uploads must not start as a workspace)."""
    if not isinstance(serverapp.contents_manager, IngressContentsManager):
        raise RuntimeError(
            "the workspace's server must use query_guard.workspace_ingress."
            "IngressContentsManager (sandbox/workspaces/hardening.py SINGLEUSER_ARGS)"
        )
    base = serverapp.web_app.settings["base_url"].rstrip("/")
    serverapp.web_app.add_handlers(
        ".*$", [(f"{base}/{route}(?:/.*)?", ClosedRoute) for route in CLOSED_ROUTES]
    )
    serverapp.log.info("workspace ingress: uploads refused, %s closed", ", ".join(CLOSED_ROUTES))
