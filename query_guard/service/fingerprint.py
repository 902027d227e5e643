"""What of a query the record keeps: its text with identifier literals hashed, and its shape.

The record must show what was asked (Shanghai Art.19-20) without itself
becoming a list of the resident ID numbers and credit codes researchers typed
(THREAT_MODEL, "The record"). Literals that look like identifiers, or that are
compared with an identifier column, are replaced by a keyed hash: equal values
give equal hashes, so repeated probing stays visible, but the value cannot be
brute-forced from the record without the platform's key.

The shape (the query with its WHERE clauses taken out) and the set of WHERE
conjuncts let the early warnings spot differencing: two queries of one shape
whose conditions differ by one narrow predicate (R12).

The parser recurses once per level of nesting, so a query nested deeper than
Python's stack allows is treated like one that does not parse, and
:func:`nesting_depth` lets the door refuse such a query before anything parses it.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

DIALECT = "duckdb"
#: 18 characters of the unified credit code alphabet (which includes every resident
#: ID number): the shape of a GB 11643 or GB 32100 identifier.
_IDENTIFIER_LIKE = re.compile(r"[0-9A-HJ-NPQRTUWXY]{17}[0-9A-HJ-NPQRTUWXY]", re.IGNORECASE)
_IDENTIFIER_IN_TEXT = re.compile(
    r"(?<![0-9A-Za-z])" + _IDENTIFIER_LIKE.pattern + r"(?![0-9A-Za-z])", re.IGNORECASE
)
_STRING_LITERAL = re.compile(r"'(?:[^']|'')*'")
#: What can hold a bracket that does not nest: quoted text and comments; then brackets.
_BRACKET_TOKENS = re.compile(
    r"'(?:[^']|'')*'?|\"(?:[^\"]|\"\")*\"?|--[^\n]*|/\*.*?(?:\*/|$)|(?P<open>[(\[{])|[)\]}]",
    re.DOTALL,
)
_COMPARISONS = (
    exp.EQ,
    exp.NEQ,
    exp.NullSafeEQ,
    exp.NullSafeNEQ,
    exp.GT,
    exp.GTE,
    exp.LT,
    exp.LTE,
    exp.In,
    exp.Between,
    exp.Like,
    exp.ILike,
)
HASH_PREFIX = "h:"
#: Queries whose record form a process remembers: a notebook sends the same text again and
#: again, and parsing it for the record cost the worker about as much as the guard's decision.
REMEMBERED = 512


def keyed_hash(key: bytes, value: str, length: int = 16) -> str:
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:length]


def _hashed(key: bytes, value: str) -> str:
    return HASH_PREFIX + keyed_hash(key, value)


def nesting_depth(sql: str) -> int:
    """How deep brackets nest in ``sql``, outside quotes and comments; read without parsing.

    >>> nesting_depth("SELECT ((1)) + f('((', [2])")
    2
    """
    depth = deepest = 0
    for token in _BRACKET_TOKENS.finditer(sql):
        if token.group("open"):
            depth += 1
            deepest = max(deepest, depth)
        elif token.group(0) in ")]}":
            depth = max(depth - 1, 0)
    return deepest


def _parse(sql: str) -> exp.Expression | None:
    try:
        trees = [t for t in sqlglot.parse(sql, read=DIALECT) if t is not None]
    except (SqlglotError, RecursionError):
        return None
    return trees[0] if len(trees) == 1 else None


def _compared_with_identifier(literal: exp.Literal, identifier_columns: frozenset[str]) -> bool:
    node = literal.parent
    while isinstance(node, exp.Tuple | exp.Paren | exp.Cast | exp.TryCast):
        node = node.parent
    if not isinstance(node, _COMPARISONS):
        return False
    return any(c.name.lower() in identifier_columns for c in node.find_all(exp.Column))


def _is_sensitive(literal: exp.Literal, identifier_columns: frozenset[str]) -> bool:
    return bool(_IDENTIFIER_LIKE.fullmatch(literal.name)) or (
        literal.is_string and _compared_with_identifier(literal, identifier_columns)
    )


def redact_text(key: bytes, text: str) -> str:
    """Hash every identifier-looking token of free text (messages that may quote SQL)."""
    return _IDENTIFIER_IN_TEXT.sub(lambda m: _hashed(key, m.group(0)), text)


def redact_sql(key: bytes, sql: str, identifier_columns: Iterable[str]) -> str:
    """The query as the record keeps it, identifier literals replaced by keyed hashes.

    >>> redact_sql(b"k", "SELECT 1 FROM t WHERE pid = 'x1'", ["pid"])
    "SELECT 1 FROM t WHERE pid = 'h:c09e25232ec7f921'"

    Identifier-looking tokens inside longer string literals are hashed too. Text
    that does not parse cannot be analysed, so every string literal in it is
    hashed, and any identifier-looking token outside quotes too.
    """
    return _redacted(key, sql, frozenset(c.lower() for c in identifier_columns))


@lru_cache(maxsize=REMEMBERED)
def _redacted(key: bytes, sql: str, columns: frozenset[str]) -> str:
    tree = _parse(sql)
    if tree is not None:
        try:
            for literal in list(tree.find_all(exp.Literal)):
                if _is_sensitive(literal, columns):
                    literal.replace(exp.Literal.string(_hashed(key, literal.name)))
                elif literal.is_string and _IDENTIFIER_IN_TEXT.search(literal.name):
                    # text that quotes an identifier (a rewrite's embedded condition)
                    literal.replace(exp.Literal.string(redact_text(key, literal.name)))
            return tree.sql(DIALECT)
        except RecursionError:
            pass  # parsed, but too deep to write back: redact it as text
    quoted = _STRING_LITERAL.sub(lambda m: f"'{_hashed(key, m.group(0)[1:-1])}'", sql)
    return redact_text(key, quoted)


@dataclass(frozen=True)
class Shape:
    """A query's fingerprint for differencing: its shape and its WHERE conjuncts (keyed hashes)."""

    shape: str
    where_terms: tuple[str, ...]

    @property
    def terms_key(self) -> str:
        return terms_key(self.where_terms)


def terms_key(where_terms: Iterable[str]) -> str:
    """One digest of a set of WHERE conjuncts' hashes: equal sets, equal digests."""
    return hashlib.sha256("\x1f".join(sorted(where_terms)).encode()).hexdigest()


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


@lru_cache(maxsize=REMEMBERED)
def shape_of(key: bytes, sql: str) -> Shape | None:
    """Fingerprint ``sql``: the hash of the tree with every WHERE removed, and one hash per
    WHERE conjunct (tagged with the WHERE it came from). ``None`` when it does not parse."""
    tree = _parse(sql)
    if tree is None:
        return None
    terms = set()
    try:
        for position, where in enumerate(list(tree.find_all(exp.Where))):
            for term in _conjuncts(where.this.unnest()):
                terms.add(keyed_hash(key, f"{position}:{term.unnest().sql(DIALECT)}", 32))
            where.pop()
        return Shape(keyed_hash(key, tree.sql(DIALECT), 32), tuple(sorted(terms)))
    except RecursionError:
        return None
