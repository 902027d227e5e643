"""Compile an agreement into its own DuckDB database: restriction in the data.

The database holds only the agreement's datasets, columns and rows (the row
filter is applied here, at build time, never AND-ed into a user's query), with
identifier columns replaced by keyed pseudonyms. What is not in this file cannot
leak, whatever the guard misses (THREAT_MODEL boundary 1; Rizhao Art.29,
Putuo Art.32). Datasets suspended after a rights complaint are left out
(Shanghai Art.22).

Each dataset is stored as a table in the private schema :data:`PRIVATE_SCHEMA`
and shown to researchers as a view of the same name holding exactly the
agreed columns, so that no ``SELECT *``, star pattern or ``COLUMNS(...)`` can
reach a column the agreement does not allow. The private table also holds,
in aggregate mode, the entity (pseudonymised), which aggregate mode counts
and flattens contributions by (:mod:`query_guard.anonymise`), and, where the
entity is there, :data:`CONTRIBUTION_RANK`: a random order of each entity's
rows drawn once here, so that a DP release bounds contributions with a filter
instead of a grouping over every entity (see ``export_review.dp_release.exact_sql``
for why that is still sampling, not learning from the data). The digest of
each source file is kept in :data:`SOURCES_TABLE`: it names the dataset
version, whose noise key seeds aggregate mode's perturbation.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
from sqlglot import exp

from query_guard.anonymise.noise import contributor_key
from query_guard.at_rest import attach, parquet_source, refused_without_key
from sandbox.contracts.agreement import Agreement
from sandbox.contracts.catalog_entry import CatalogEntry, Sensitivity
from sandbox.contracts.validation import parse_row_filter, validate_agreement
from sandbox.errors import ContractError

#: Bits kept of each HMAC-SHA256 pseudonym: the first 63 bits of the MAC, read
#: big-endian, so every pseudonym is a non-negative BIGINT.
#:
#: Why an integer: aggregate mode (:mod:`query_guard.anonymise`) and DP bounding
#: group and count by the entity on every query, and DuckDB hashes and
#: compares a fixed-width integer far faster than a 20-character string (which
#: does not fit its 12-byte inline string form).
#:
#: Collisions: for n distinct values the chance that any two share a pseudonym
#: is about n^2 / 2^64, i.e. 5.4e-6 for 10 million entities (5.4e-8 for one
#: million). A collision only ever *merges* two entities, never splits one, so
#: it cannot weaken a protection: COUNT(DISTINCT entity) counts the pair once
#: (a group is suppressed sooner, not later) and the DP contribution bound then
#: holds for the merged pair and so for each of its members. Its only effect is
#: on accuracy: a declared join or a record-mode row could attribute one
#: person's rows to another, at odds far below the error rate of the source
#: identifiers themselves. Without the key nobody can search for a collision.
PSEUDONYM_BITS = 63
#: The hidden column holding each row's random draw position within its entity
#: (1, 2, ... in random order), fixed when the database is built; DP releases
#: bound an entity's contribution with ``rank <= max_contributions``. It is not
#: in the guard's schema, so no researcher query can name it.
CONTRIBUTION_RANK = "__qg_contribution_rank"
_BLOCK = 64  # SHA-256 block size, for HMAC's inner and outer pads
#: The entity keyed by the dataset version rather than the agreement: aggregate mode seeds
#: its noise with the set of contributors, and this makes that set, so the noise, the same
#: in every agreement over the same data (never shown; only generated SQL hashes it).
CONTRIBUTOR = "__qg_contributor"
#: The contributor folded to a positive 31-bit INTEGER: aggregate mode's fast path sums it
#: over a bucket's contributing rows to seed the noise by who contributes, and DuckDB
#: sums a narrow integer column without overflow checks at a fraction of the cost of
#: hashing the 64-bit contributor on every row.
CONTRIBUTOR_SEED = "__qg_contributor_seed"
#: :data:`CONTRIBUTOR_SEED` is ``CONTRIBUTOR % SEED_MODULUS + 1``.
SEED_MODULUS = 2147483647
#: Schema of the stored tables; researchers see only the views in ``main``.
PRIVATE_SCHEMA = "qg_private"
#: (dataset, version digest, most rows of one entity) of every dataset built in.
SOURCES_TABLE = "__qg_sources"


def _ident(name: str) -> str:
    return exp.to_identifier(name, quoted=True).sql("duckdb")


def _string(value: str) -> str:
    return exp.Literal.string(value).sql("duckdb")


def hmac_sql(column_sql: str, key: bytes) -> str:
    """HMAC-SHA256 of a column's text as a DuckDB expression (RFC 2104, computed in-engine).

    The key only appears in the build statement, never in the stored database.
    """
    if not key or len(key) > _BLOCK:
        raise ValueError("pseudonym key must be 1 to 64 bytes")
    padded = key.ljust(_BLOCK, b"\0")
    ipad = bytes(b ^ 0x36 for b in padded).hex()
    opad = bytes(b ^ 0x5C for b in padded).hex()
    inner = f"unhex(sha256(unhex('{ipad}') || encode(CAST({column_sql} AS VARCHAR))))"
    first_64_bits = f"CAST('0x' || left(sha256(unhex('{opad}') || {inner}), 16) AS UBIGINT)"
    return f"CAST({first_64_bits} >> {64 - PSEUDONYM_BITS} AS BIGINT)"


def pseudonym(value: str, key: bytes) -> int:
    """The pseudonym the build gives ``value`` (for tests, and for the provider to re-identify)."""
    digest = hmac.new(key, value.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - PSEUDONYM_BITS)


def built_columns(agreement: Agreement, entry: CatalogEntry) -> list[str]:
    """Columns stored for a dataset: the agreed ones, plus in aggregate mode the entity
    (pseudonymised), which the guard needs to count distinct entities per group."""
    columns = list(agreement.datasets[entry.name].columns)
    if agreement.mode == "aggregate" and entry.entity and entry.entity not in columns:
        columns.append(entry.entity)
    return columns


def is_pseudonymised(agreement: Agreement, entry: CatalogEntry, column: str) -> bool:
    """Identifier columns always; a hidden entity column too, since it is not agreed."""
    if entry.column(column).sensitivity == Sensitivity.identifier:
        return True
    return column not in agreement.datasets[entry.name].columns


def column_types(agreement: Agreement, entry: CatalogEntry) -> dict[str, str]:
    """The researcher-visible columns of a dataset (its view) and their SQL types.

    Pseudonymised columns are BIGINT whatever their catalogue type. The hidden
    entity and the contribution rank are deliberately absent: this is the
    guard's schema, and the view's columns.
    """
    return {
        name: "BIGINT" if is_pseudonymised(agreement, entry, name) else entry.column(name).type
        for name in agreement.datasets[entry.name].columns
    }


def private_table(dataset: str) -> str:
    """The stored table of a dataset, as SQL: only generated SQL may name it, never a query."""
    return f"{_ident(PRIVATE_SCHEMA)}.{_ident(dataset)}"


def stored_entity(agreement: Agreement, entry: CatalogEntry) -> str | None:
    """The entity column of the dataset's private table, if the build stored it."""
    return entry.entity if entry.entity in built_columns(agreement, entry) else None


def source_digest(path: Path) -> str:
    """SHA-256 of a source file: the dataset version the database was built from."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def has_contribution_rank(agreement: Agreement, entry: CatalogEntry) -> bool:
    """Whether the dataset's database table carries :data:`CONTRIBUTION_RANK`: exactly when
    it holds the entity, i.e. when a DP release can bound contributions at all."""
    return entry.entity is not None and entry.entity in built_columns(agreement, entry)


def _reader_sql(conn: duckdb.DuckDBPyConnection, name: str, path: Path, key: bytes | None) -> str:
    """SQL reading a dataset's source; a version the platform stored is encrypted Parquet."""
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        return parquet_source(conn, path, key=key, name=name)
    if key is None and suffix in (".csv", ".txt"):
        return f"read_csv({_string(str(path))}, header = true, all_varchar = true)"
    raise ContractError(
        f"{path}: unsupported source format; use Parquet or CSV (an encrypted source is Parquet)",
        rule="build-source",
    )


def _dataset_sql(
    agreement: Agreement,
    entry: CatalogEntry,
    reader: str,
    key: bytes,
    contributor_key: bytes,
) -> str:
    typed = ", ".join(
        f"CAST({_ident(c.name)} AS {c.type}) AS {_ident(c.name)}" for c in entry.columns
    )
    outputs = []
    for name in built_columns(agreement, entry):
        col = _ident(name)
        value = hmac_sql(col, key) if is_pseudonymised(agreement, entry, name) else col
        outputs.append(f"{value} AS {col}")
    if has_contribution_rank(agreement, entry):
        raw = _ident(entry.entity or "")
        outputs.append(f"{hmac_sql(raw, contributor_key)} AS {_ident(CONTRIBUTOR)}")
    scope = agreement.datasets[entry.name]
    where = ""
    if scope.row_filter:
        where = " WHERE " + parse_row_filter(scope.row_filter, entry).sql("duckdb")
    built = f"SELECT {', '.join(outputs)} FROM (SELECT {typed} FROM {reader}) AS src{where}"
    if has_contribution_rank(agreement, entry):
        # Partitioned by the pseudonym, the entity as every query sees it; the draw is a
        # column of its own because DuckDB refuses a volatile window ORDER BY. The window
        # groups rows by entity, so they are put back in the source's order: a file sorted
        # by date keeps its date runs compressed and its zone maps selective, which is
        # most of what a researcher's filters and date functions cost on raw DuckDB.
        draw, position = _ident("__draw"), _ident("__position")
        rank = (
            f"row_number() OVER (PARTITION BY {_ident(entry.entity or '')} "
            f"ORDER BY {draw}) AS {_ident(CONTRIBUTION_RANK)}"
        )
        seed = (
            f"CAST({_ident(CONTRIBUTOR)} % {SEED_MODULUS} + 1 AS INTEGER) "
            f"AS {_ident(CONTRIBUTOR_SEED)}"
        )
        built = (
            f"SELECT * EXCLUDE ({draw}, {position}), {rank}, {seed} "
            f"FROM (SELECT *, random() AS {draw}, row_number() OVER () AS {position} "
            f"FROM ({built}) AS pseudonymised) ORDER BY {position}"
        )
    return f"CREATE TABLE {private_table(entry.name)} AS {built}"


def _max_rows_sql(agreement: Agreement, entry: CatalogEntry) -> str:
    """The most rows any one entity has in the dataset (NULL without an entity): the bound
    aggregate mode's fast path counts contributors and contributions by."""
    if not has_contribution_rank(agreement, entry):
        return "SELECT NULL"
    table = private_table(entry.name)
    return f"SELECT max(n) FROM (SELECT count(*) AS n FROM {table} GROUP BY {_ident(CONTRIBUTOR)})"


def _view_sql(agreement: Agreement, entry: CatalogEntry) -> str:
    agreed = ", ".join(_ident(c) for c in agreement.datasets[entry.name].columns)
    return f"CREATE VIEW {_ident(entry.name)} AS SELECT {agreed} FROM {private_table(entry.name)}"


@dataclass(frozen=True)
class StoredSource:
    """A dataset version as the platform keeps it: its file, the key it is encrypted under
    (None: a plain file), and the SHA-256 of its content as plain Parquet. That digest names
    the version, and aggregate mode keys its noise by it, so it stays the same however the
    file is encrypted: a version encrypted later, or republished unchanged, perturbs alike."""

    path: Path
    key: bytes | None
    digest: str


def _source(entry: CatalogEntry, sources: Mapping[str, Path | StoredSource] | None) -> StoredSource:
    given = (sources or {}).get(entry.name) or entry.source_path()
    if given is None:
        raise ContractError(f"dataset {entry.name!r} has no source file", rule="build-source")
    path = given.path if isinstance(given, StoredSource) else Path(given)
    if not path.is_file():
        raise ContractError(f"dataset {entry.name!r}: source {path} not found", rule="build-source")
    if isinstance(given, StoredSource):
        return given
    return StoredSource(path, None, source_digest(path))  # a catalogue's own file, in clear


def build_agreement_database(
    agreement: Agreement,
    catalog: Mapping[str, CatalogEntry],
    *,
    out_path: str | Path,
    key: bytes,
    sources: Mapping[str, Path | StoredSource] | None = None,
    suspended: frozenset[str] = frozenset(),
    noise_secret: bytes | None = None,
    encryption_key: bytes | None = None,
) -> Path:
    """Build the agreement's database at ``out_path`` atomically and return the path.

    With the platform's ``noise_secret``, :data:`CONTRIBUTOR` names entities alike
    in every agreement, so aggregate mode perturbs alike across agreements. With an
    ``encryption_key`` the file and its WAL are encrypted, and a :class:`StoredSource` with a
    key is read as encrypted under it (:mod:`query_guard.at_rest`).

    It is written to a temporary file next to ``out_path`` and renamed into
    place only when complete, so an interrupted build leaves nothing behind.
    """
    validate_agreement(agreement, dict(catalog))
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_path.with_name(f".{out_path.name}.{uuid.uuid4().hex}.building")
    try:
        con = duckdb.connect(
            config={
                "autoinstall_known_extensions": False,
                "autoload_known_extensions": False,
                "python_enable_replacements": False,
            },
        )
        try:
            attach(con, tmp, key=encryption_key, read_only=False)
            con.execute(f"CREATE SCHEMA {_ident(PRIVATE_SCHEMA)}")
            con.execute(
                f"CREATE TABLE {_ident(PRIVATE_SCHEMA)}.{_ident(SOURCES_TABLE)} "
                "(dataset VARCHAR, digest VARCHAR, max_rows BIGINT)"
            )
            for name in agreement.datasets:
                if name in suspended:
                    continue
                entry = catalog[name]
                source = _source(entry, sources)
                # Without the platform's secret (a throwaway build) contributors are named
                # by the agreement's own key: consistent within this database only.
                contributor = contributor_key(noise_secret or key, name, source.digest)
                reader = _reader_sql(con, name, source.path, source.key)
                remedy = "its key was destroyed or the file replaced; publish it again"
                what = f"dataset {name}'s file {source.path.name}"
                with refused_without_key(what, source.key, remedy):
                    con.execute(_dataset_sql(agreement, entry, reader, key, contributor))
                con.execute(_view_sql(agreement, entry))
                con.execute(
                    f"INSERT INTO {_ident(PRIVATE_SCHEMA)}.{_ident(SOURCES_TABLE)} "
                    f"VALUES (?, ?, ({_max_rows_sql(agreement, entry)}))",
                    [name, source.digest],
                )
            con.execute("CHECKPOINT")
        finally:
            con.close()
        os.chmod(tmp, 0o640)
        os.replace(tmp, out_path)
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()
    return out_path
