"""What a person reads on a page, and which of it is not in the page's language.

Text a person reads: element text and the ``title``, ``placeholder``, ``aria-label`` and
``alt`` attributes. Left out as not the interface's own words: scripts and styles, the
tab's ``title`` (it repeats the heading, which is read, and cannot mark data), code
(``code``, ``pre``, ``kbd``, ``samp``), what people typed (``textarea``), anything marked
``translate="no"`` (the HTML attribute for data, names and identifiers) and anything
marked with a ``lang`` other than the page's (the other language's name in the switch, a
guide shown in the other language).
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

#: Elements whose content is never the interface's text.
SKIPPED = frozenset({"script", "style", "code", "pre", "kbd", "samp", "textarea", "title"})
VOID = frozenset({"br", "hr", "img", "input", "link", "meta", "wbr", "col", "area", "source"})
READ_ATTRIBUTES = ("title", "placeholder", "aria-label", "alt")
#: Latin words a Chinese page writes as they are: names of formats, standards, programs,
#: algorithms and protocols, and Kubernetes' kinds of object (Pod, Service ...).
LATIN_IN_CHINESE = frozenset({
    "CSV", "UTF", "BOM", "GBK", "GB", "GB18030", "Excel", "xlsx", "Parquet", "JSON", "Lines",
    "SQL", "PNG", "SVG", "PDF", "ZIP", "zip", "API", "HTTP", "HTTPS", "OIDC", "PEM", "Ed25519",
    "SHA", "UTC", "ID", "TOTP", "JupyterLab", "JupyterHub", "Jupyter", "Hub", "DP", "YAML",
    "Markdown", "TXT", "HTML", "base64", "MiB", "GiB", "CPU", "KiB", "MB", "ICD", "CI", "DNS",
    "CJK", "Noto", "Sans", "DejaVu", "Debian", "Docker", "iptables", "configurable-http-proxy",
    "PostgreSQL", "SQLite", "DuckDB", "Prometheus", "matplotlib", "Alembic", "psycopg",
    "systemd", "cron", "SIGTERM", "SIGINT", "Bearer", "debootstrap", "pip", "age", "root",
    "TLS", "CA", "HSTS", "GET", "HEAD", "nginx", "Caddy", "Firefox", "Chromium", "curl",
    "AES", "GCM", "AES-GCM", "SM3", "SM4", "SM4-GCM", "PCG", "OpenSSL", "WAL", "KMS", "LUKS",
    "HKDF",
    "Python", "pyarrow", "IPv6", "REST", "RBAC", "seccomp", "sysctl", "tmpfs",
    "Kubernetes", "kubectl", "kubelet", "kubernetes-validate", "KubeSpawner", "DockerSpawner",
    "Calico", "Cilium", "flannel",
    "Pod", "Deployment", "Service", "NetworkPolicy", "ConfigMap", "Secret", "Role", "Ingress",
})  # fmt: skip
#: A run of ASCII with a dot, slash, underscore, parenthesis, equals sign, colon or at sign
#: is an identifier, a file name, a path, an address or a call (``.ipynb``, ``/tmp``,
#: ``db.dp(sql``, ``http://host``), not a word of the interface.
IDENTIFIER = re.compile(r"[!-~]*[._/()=:@][!-~]*")
#: A refusal the catalogue has no text for, shown in English and marked so (_refusal.html).
MARKED_UNTRANSLATED = re.compile(r"<[^>]*\bdata-untranslated\b[^>]*>([^<]*)<")
LATIN_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]*(?:['-][A-Za-z]+)*")
CHINESE = re.compile(r"[\u3000-\u303f\u3400-\u9fff\uf900-\ufaff\uff00-\uffef]")


class _Reader(HTMLParser):
    def __init__(self, lang: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = lang
        self.stack: list[tuple[str, bool]] = []  # (tag, hidden)
        self.texts: list[str] = []

    def _hidden(self) -> bool:
        return bool(self.stack) and self.stack[-1][1]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        other_lang = (found.get("lang") or self.lang).split("-")[0] != self.lang
        hidden = self._hidden() or tag in SKIPPED or found.get("translate") == "no" or other_lang
        if not hidden:
            self.texts.extend(v for k in READ_ATTRIBUTES if (v := found.get(k)))
        if tag not in VOID:
            self.stack.append((tag, hidden))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if not self._hidden() and data.strip():
            self.texts.append(" ".join(data.split()))


def visible_text(html: str, lang: str) -> list[str]:
    """The interface's own text on a page, one string per text node or attribute."""
    reader = _Reader(lang)
    reader.feed(html)
    return reader.texts


def untranslated(html: str, lang: str) -> list[str]:
    """The strings on a page that are not in ``lang``: Latin words (other than names of
    formats and programs) on a Chinese page, Chinese characters on an English one, and
    refusals shown in English for want of their Chinese text."""
    found = MARKED_UNTRANSLATED.findall(html)
    for text in visible_text(html, lang):
        if lang == "zh":
            words = [w for w in LATIN_WORD.findall(IDENTIFIER.sub(" ", text)) if len(w) > 1]
            if any(w not in LATIN_IN_CHINESE for w in words):
                found.append(text)
        elif CHINESE.search(text):
            found.append(text)
    return found
