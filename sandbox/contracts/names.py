"""SQL names of datasets and columns: ASCII or Chinese, each written one way only.

Providers' files are headed in Chinese (区县, 就诊日期), and those headers are the
names researchers query, quoted or not (R2: Shanghai Art.12). A name is in NFC,
the form any reader of a file makes of the same characters, and holds lower-case
ASCII letters, digits, underscores and Chinese characters (Han ideographs) only:

- none of them changes under sqlglot's or DuckDB's case folding, so ``区县``,
  ``"区县"`` and ``GDP增速`` resolve to the one column ``gdp增速`` in the guard's
  schema, the per-agreement database and a result's header alike;
- full-width letters and digits and other compatibility forms (``ＧＤＰ``, ``①``)
  are refused with the form to write: a researcher typing the ASCII form would not
  find the column, and ``ＧＤＰ`` beside ``gdp`` would be two columns that look alike;
- other scripts are refused because their letters look like Latin ones (Cyrillic
  ``а``, Greek ``ο``), and punctuation because an unquoted name must stay one name.

Names are compared for clashes by :func:`fold` (NFKC and case folding), so two
headers that would become the same name, or look the same, are refused together.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable

#: PostgreSQL's limit on a name, which also keeps names readable on every page.
MAX_CHARS = 63
#: Names the per-agreement build uses for its own hidden columns (``query_guard.compile``).
RESERVED_PREFIX = "__qg"
_ASCII = frozenset("abcdefghijklmnopqrstuvwxyz0123456789_")
_HAN = ("CJK UNIFIED IDEOGRAPH", "CJK COMPATIBILITY IDEOGRAPH")
ALLOWED = "lower-case letters a-z, Chinese characters, digits and underscores"


def nfc(text: str) -> str:
    """``text`` in Unicode normal form C."""
    return unicodedata.normalize("NFC", text)


def fold(name: str) -> str:
    """How names compare for look-alikes: ``ＧＤＰ``, ``GDP`` and ``gdp`` are one name."""
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", name).casefold())


def _is_han(ch: str) -> bool:
    return unicodedata.category(ch) == "Lo" and unicodedata.name(ch, "").startswith(_HAN)


def _allowed(ch: str) -> bool:
    return ch in _ASCII or _is_han(ch)


def suggestion(name: str) -> str | None:
    """A SQL name to write instead of ``name``: its normal form, other characters as
    underscores (``金额（万元）`` → ``金额_万元``); None when none is left."""
    chars = [ch if _allowed(ch) else "_" for ch in fold(name)]
    words = "".join(chars).split("_")
    written = "_".join(w for w in words if w)
    if written[:1].isdigit():
        written = "_" + written
    return written if written and problem(written) is None else None


def _instead(name: str) -> str:
    found = suggestion(name)
    return f"; write {found!r}" if found else ""


def problem(name: str) -> str | None:
    """What is wrong with ``name`` (taken in NFC) as a SQL name, or None when nothing is."""
    name = nfc(name)
    if not name:
        return "must not be empty"
    if len(name) > MAX_CHARS:
        return f"has {len(name)} characters; at most {MAX_CHARS}"
    if unicodedata.normalize("NFKC", name) != name:
        return (
            f"{name!r} has full-width or compatibility characters, which look like other "
            f"characters but are not them{_instead(name)}"
        )
    if name.lower() != name:
        return f"{name!r} must be lower case (SQL does not tell cases apart){_instead(name)}"
    if not all(_allowed(ch) for ch in name) or name[0].isdigit():
        return f"{name!r} may hold only {ALLOWED}, not starting with a digit{_instead(name)}"
    if name.startswith(RESERVED_PREFIX):
        return f"{name!r}: names starting with {RESERVED_PREFIX} are reserved for the platform"
    return None


def sql_name(name: str) -> str:
    """``name`` in NFC if it is a valid SQL name; otherwise ValueError saying what to write."""
    found = problem(name)
    if found is not None:
        raise ValueError(f"must be a SQL name of {ALLOWED}: {found}")
    return nfc(name)


def proposed_name(header: str) -> str:
    """The SQL name proposed for a file's column header: the header itself, lower-cased
    (``GDP增速`` is queried as ``gdp增速`` anyway); the header unchanged when even that is
    no SQL name, so that the refusal says why and the provider writes the name."""
    header = nfc(header.strip())
    lower = header.lower()
    return lower if problem(lower) is None else header


def clashes(names: Iterable[str], key: Callable[[str], str] = fold) -> list[list[str]]:
    """Groups of two or more names that are the same name, or look it (:func:`fold`)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(key(name), []).append(name)
    return [group for group in groups.values() if len(group) > 1]


def describe_clashes(groups: list[list[str]]) -> str:
    """``gdp and GDP; a and ａ``: the clashing groups as a refusal lists them."""
    return "; ".join(" and ".join(repr(n) for n in group) for group in groups)
