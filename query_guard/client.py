"""The notebook client: the researcher's side of the query service.

    from query_guard.client import connect
    db = connect()                       # SANDBOX_QUERY_URL and SANDBOX_TOKEN from the workspace
    #                                      (and SANDBOX_QUERY_CA: its TLS is verified by it)
    df = db.sql("SELECT district, count(*) AS n FROM clinic_visits GROUP BY district")

Results arrive as an Arrow IPC stream and are returned as pandas DataFrames.
A query the guard refuses raises :class:`QueryBlocked` with every reason
(rule, message, article); any other refusal raises :class:`QueryRefused`. Reasons and
refusals print in the workspace's language (``connect(lang="zh")``, by default from its
locale, ``LC_ALL``/``LC_MESSAGES``/``LANG``), the rule id and article always kept.
``%load_ext query_guard.client`` adds the ``%%sql`` cell magic.

Only the standard library, httpx, pyarrow and pandas are used (and the platform's
message catalogue, ``sandbox.refusal_text``, which is standard library only): this module
is installed in the workspace image, which has nothing else of the platform.
"""

from __future__ import annotations

import json
import os
import ssl
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, TextIO

import httpx
import pandas as pd
import pyarrow as pa

from sandbox.refusal_text import say, say_article

ARROW_STREAM = "application/vnd.apache.arrow.stream"
DECISION_KEY = b"query_guard.decision"
#: How an aggregate-mode result was protected: perturbation and suppressed cells.
DISCLOSURE_KEY = b"query_guard.disclosure"
#: Seconds a query runs before the elapsed-time line appears.
PROGRESS_AFTER_S = 2.0


def workspace_language() -> str:
    """``zh`` when the workspace's locale is Chinese (``zh_CN.UTF-8``), else ``en``."""
    for name in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(name)
        if value:
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


@dataclass(frozen=True)
class Reason:
    """Why the guard refused or rewrote a query; printed in ``lang`` (the service's English
    text where the catalogue has no other), ``message`` is the service's own text."""

    rule: str
    message: str
    article: str | None = None
    lang: str = "en"

    def __str__(self) -> str:
        text = say(self.rule, self.message, self.lang) or self.message
        cite = f" ({say_article(self.article, self.lang)})" if self.article else ""
        return f"[{self.rule}] {text}{cite}"


class QueryRefused(Exception):
    """The query service refused the request (authentication, agreement status, engine...).

    ``message`` is the service's text; the exception prints it in ``lang``."""

    def __init__(
        self,
        message: str,
        *,
        rule: str,
        article: str | None = None,
        status: int = 0,
        lang: str = "en",
    ):
        text = say(rule, message, lang) or message
        cite = f"; {say_article(article, lang)}]" if article else "]"
        super().__init__(f"{text} [{rule}{cite}")
        self.message, self.rule, self.article, self.status = message, rule, article, status


class QueryBlocked(QueryRefused):
    """The guard blocked the query; ``reasons`` says what was wrong and what is allowed."""

    def __init__(self, reasons: list[Reason], *, status: int = 403, lang: str = "en"):
        first = reasons[0] if reasons else Reason("QG-000", "blocked")
        lead = "查询被拦截：" if lang == "zh" else "the guard blocked this query:"
        super().__init__(
            lead + "\n  " + "\n  ".join(map(str, reasons)),
            rule=first.rule,
            article=first.article,
            status=status,
            lang=lang,
        )
        self.reasons = reasons


class ExportRefused(QueryRefused):
    """The platform's automatic export checks refused the files; fix them and try again."""


def _uploads(files: Sequence[str | Path]) -> list[tuple[str, tuple[str, bytes]]]:
    return [("files", (Path(f).name, Path(f).read_bytes())) for f in files]


def _json(value: Any) -> str:
    return "" if value is None else json.dumps(value)


def _refusal(response: httpx.Response, lang: str) -> QueryRefused:
    try:
        body = response.json()
    except ValueError:
        return QueryRefused(
            f"the query service answered HTTP {response.status_code}",
            rule="http",
            status=response.status_code,
            lang=lang,
        )
    if body.get("action") == "block":
        reasons = body.get("reasons", [])
        return QueryBlocked(
            [Reason(r["rule"], r["message"], r.get("article"), lang) for r in reasons],
            status=response.status_code,
            lang=lang,
        )
    return QueryRefused(
        str(body.get("error") or body.get("detail")),
        rule=str(body.get("rule", "http")),
        article=body.get("article"),
        status=response.status_code,
        lang=lang,
    )


class _Elapsed:
    """Prints ``running… 12 s`` on one line while a request is outstanding."""

    def __init__(self, stream: TextIO | None):
        self.stream = stream
        self.shown = False

    def wait(self, done: threading.Event) -> None:
        started = time.monotonic()
        while not done.wait(0.5):
            elapsed = time.monotonic() - started
            if self.stream is not None and elapsed >= PROGRESS_AFTER_S:
                self.stream.write(f"\rquery running… {elapsed:.0f} s")
                self.stream.flush()
                self.shown = True
        if self.shown:
            self.stream.write("\r" + " " * 40 + "\r")
            self.stream.flush()


class Connection:
    """A workspace's connection to its agreement's query service."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout_s: float = 600.0,
        progress: TextIO | None = sys.stderr,
        lang: str | None = None,
        ca: str | None = None,
    ):
        self.url = url.rstrip("/")
        # With a CA (the platform's, mounted read-only in the workspace) the service's
        # certificate is verified against it alone; the token never goes in clear.
        if ca and not self.url.startswith("https://"):
            raise QueryRefused(
                f"the query service must be reached over https when a CA is given, not {url}",
                rule="client-tls",
            )
        self._http = httpx.Client(
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout_s, connect=10.0),
            verify=ssl.create_default_context(cafile=ca) if ca else True,
        )
        self._progress = progress
        #: The language refusals print in: ``zh`` or ``en`` (default: the locale's).
        self.lang = lang if lang in ("zh", "en") else workspace_language()
        #: The guard's decision on the last query that ran (action, sql, reasons).
        self.last_decision: dict[str, Any] | None = None
        #: How the last result was protected in aggregate mode (None in record mode).
        self.last_disclosure: dict[str, Any] | None = None

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send in a thread so a long query shows its elapsed time; raise refusals."""
        outcome: dict[str, Any] = {}
        done = threading.Event()

        def send() -> None:
            try:
                outcome["response"] = self._http.request(method, self.url + path, **kwargs)
            except BaseException as exc:  # handed to the caller's thread below
                outcome["error"] = exc
            finally:
                done.set()

        threading.Thread(target=send, daemon=True).start()
        _Elapsed(self._progress).wait(done)
        if "error" in outcome:
            raise outcome["error"]
        response: httpx.Response = outcome["response"]
        if response.status_code >= 400:
            raise _refusal(response, self.lang)
        return response

    def arrow(self, sql: str) -> pa.Table:
        """Run ``sql`` and return the result as an Arrow table."""
        response = self._send("POST", "/query", json={"sql": sql}, headers={"Accept": ARROW_STREAM})
        table = pa.ipc.open_stream(response.content).read_all()
        metadata = table.schema.metadata or {}
        if DECISION_KEY in metadata:
            self.last_decision = json.loads(metadata[DECISION_KEY])
        raw = metadata.get(DISCLOSURE_KEY)
        self.last_disclosure = json.loads(raw) if raw else None
        return table.replace_schema_metadata(None)

    def sql(self, sql: str) -> pd.DataFrame:
        """Run ``sql`` and return the result as a pandas DataFrame.

        In aggregate mode ``.attrs["disclosure"]`` says that values are perturbed and
        which cells were suppressed, and one line says so under the cell."""
        frame = self.arrow(sql).to_pandas()
        if self.last_disclosure is not None:
            frame.attrs["disclosure"] = self.last_disclosure
            if self._progress is not None:
                self._progress.write("note: " + "; ".join(self.last_disclosure["notes"]) + "\n")
        return frame

    def scope(self) -> dict[str, Any]:
        """What the agreement allows: datasets, columns, mode and limits."""
        return self._send("GET", "/agreement").json()

    def tables(self) -> pd.DataFrame:
        """The views this agreement lets you query, one row each (from :meth:`scope`)."""
        rows = [
            {
                "view": name,
                "title": part["title"],
                "columns": len(part["columns"]),
                "row_filter": part["row_filter"],
                "suspended": part["suspended"],
            }
            for name, part in self.scope()["datasets"].items()
        ]
        return pd.DataFrame(rows, columns=["view", "title", "columns", "row_filter", "suspended"])

    def describe(self, view: str) -> pd.DataFrame:
        """The columns of ``view``: name, Chinese label, the type the view holds (BIGINT for
        a pseudonymised identifier), sensitivity and description."""
        datasets = self.scope()["datasets"]
        if view not in datasets:
            raise QueryRefused(
                f"there is no view {view!r} in this agreement; the views are: "
                + ", ".join(sorted(datasets)),
                rule="unknown-view",
            )
        rows = [
            {
                "column": c["name"],
                "label": c.get("label", ""),
                "type": c.get("view_type", c["type"]),
                "sensitivity": c["sensitivity"],
                "description": c["description"],
            }
            for c in datasets[view]["columns"]
        ]
        return pd.DataFrame(rows, columns=["column", "label", "type", "sensitivity", "description"])

    def welcome_notebook(self) -> dict[str, Any]:
        """The agreement's welcome notebook (nbformat 4 JSON), as a new workspace gets it."""
        return self._send("GET", "/welcome.ipynb").json()

    def usage_report(self, period_end: date | str, summary: str, outputs: str = "") -> dict:
        """Report how the data was used in the period ending ``period_end`` (Shanghai Art.25)."""
        body = {"period_end": str(period_end), "summary": summary, "outputs": outputs}
        return self._send("POST", "/usage-reports", json=body).json()

    def dp(
        self,
        sql: str,
        epsilon: float,
        purpose: str | None = None,
        chart: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """A differentially private release, charged to the agreement's budget at once.

        With a ``purpose`` the result is also submitted as an export request (it leaves
        the platform only after the provider's review) as a ``dp_table``, or with a
        ``chart`` specification as a ``figure`` the platform draws from it; the answer
        then has ``release`` and ``export``.
        """
        if purpose is None:
            return self._send("POST", "/dp", json={"sql": sql, "epsilon": epsilon}).json()
        body = {"sql": sql, "epsilon": epsilon, "purpose": purpose, "chart": chart}
        return self._send("POST", "/dp-exports", json=body).json()

    def output_forms(self) -> pd.DataFrame:
        """The output forms this agreement lets leave, each explained in one sentence: the
        ``form`` values :meth:`check_export` and :meth:`export` accept."""
        rows = self.scope()["output_forms"]
        return pd.DataFrame(rows, columns=["form", "zh", "en"])

    def check_export(
        self,
        files: Sequence[str | Path],
        form: str,
        queries: Sequence[str] = (),
        chart: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The platform's automatic checks on files in one output ``form`` (see
        :meth:`output_forms`), without submitting anything; tables are checked from the rows
        behind them when ``queries`` include the query of each. A ``figure`` is one CSV
        table and its ``chart`` specification (kind bar/line/scatter/histogram, x, y,
        series, title, x_label, y_label), drawn by the platform."""
        data = {"form": form, "queries": json.dumps(list(queries)), "chart": _json(chart)}
        return self._send("POST", "/exports/check", files=_uploads(files), data=data).json()

    def export(
        self,
        files: Sequence[str | Path],
        purpose: str,
        form: str,
        queries: Sequence[str] = (),
        chart: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Check, then submit files in one output ``form`` (a table, a figure's table with
        its ``chart``, a report, code) for review; a failed check raises
        :class:`ExportRefused` and submits nothing."""
        verdict = self.check_export(files, form, queries, chart)
        if not verdict["ok"]:
            refused = verdict["refused"]
            raise ExportRefused(refused["error"], rule=refused["rule"], article=refused["article"])
        data = {
            "purpose": purpose,
            "form": form,
            "queries": json.dumps(list(queries)),
            "chart": _json(chart),
        }
        return self._send("POST", "/exports", files=_uploads(files), data=data).json()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(url: str | None = None, token: str | None = None, **kwargs: Any) -> Connection:
    """Connect to the query service; the workspace sets ``SANDBOX_QUERY_URL``,
    ``SANDBOX_TOKEN`` and, when the service serves TLS, ``SANDBOX_QUERY_CA`` (the CA file
    its certificate is verified against; ``ca=`` to pass another) at spawn. ``lang="zh"``
    or ``"en"`` chooses the language refusals print in (by default the workspace's
    locale)."""
    url = url or os.environ.get("SANDBOX_QUERY_URL")
    token = token or os.environ.get("SANDBOX_TOKEN")
    kwargs["ca"] = kwargs.get("ca") or os.environ.get("SANDBOX_QUERY_CA") or None
    if not url or not token:
        raise QueryRefused(
            "no query service configured: pass url= and token=, or set "
            "SANDBOX_QUERY_URL and SANDBOX_TOKEN",
            rule="client-config",
        )
    return Connection(url, token, **kwargs)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext query_guard.client`` registers the ``%%sql`` cell magic."""
    from query_guard.magic import load_ipython_extension as load

    load(ipython)
