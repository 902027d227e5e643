"""How encrypted files are opened and written: per-agreement databases and dataset versions,
encrypted by DuckDB itself when given a key.

With a key, DuckDB encrypts every block of the file, its WAL and, with
``temp_file_encryption``, what a query spills to disk, with AES-256-GCM under a key it
derives from ours and a salt of the file's own (Rizhao Art.29). Without the key the file
does not open, and a wrong key is refused by the GCM tag; the key never enters the file.

Reading uses DuckDB's built-in crypto module. Writing (the build, and encrypted spill)
needs its OpenSSL module, which comes only with the ``httpfs`` extension, and there is none
installable for this DuckDB (2.0) without the network: so :data:`WRITE_WITH_BUILTIN_CRYPTO`
tells DuckDB to write with the built-in module, which it calls unsafe because the nonces,
salts and spill keys it draws come from a PCG generator seeded with 64 random bits, not a
CSPRNG (docs/en/operator.md, "Encryption at rest", says what that costs). The data keys
themselves come from the OS (:mod:`sandbox.keys.store`).

A dataset version is a Parquet file with modular encryption (encrypted footer and columns,
AES-GCM under one key; the file says ``PARE`` where a plain one says ``PAR1``), written and
read by DuckDB's Parquet reader, which the build scans anyway: it reads only the columns
and row groups a build needs and decrypts only those. pyarrow's own Parquet encryption was
not chosen because its files hold per-file keys wrapped by a KMS client, which DuckDB cannot
unwrap: the build would have to decrypt through pyarrow and copy every row into DuckDB.
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pyarrow as pa

from sandbox.errors import SandboxError

#: The name the agreement's database is attached under, and made the default catalog.
ALIAS = "agreement"
#: See the module's docstring; set only on connections that are given a key.
WRITE_WITH_BUILTIN_CRYPTO = "SET force_mbedtls_unsafe = true"
KEY_RULE = "at-rest-key"
ARTICLE = "Rizhao Art.29"


def attach(
    conn: duckdb.DuckDBPyConnection, path: str | Path, *, key: bytes | None, read_only: bool
) -> None:
    """Attach ``path`` as :data:`ALIAS`, encrypted under ``key`` if one is given, make it
    the default catalog and detach the in-memory one, so it is the only database there is.

    A file that does not open with the key given (or opens without one when a key is
    given, or the reverse) is refused, naming :data:`KEY_RULE`.
    """
    options = ["READ_ONLY"] if read_only else []
    if key is not None:
        conn.execute(WRITE_WITH_BUILTIN_CRYPTO)
        options.append(f"ENCRYPTION_KEY '{key.hex()}'")
    suffix = f" ({', '.join(options)})" if options else ""
    remedy = "rebuild it by provisioning again"
    with refused_without_key(f"the database {Path(path).name}", key, remedy):
        conn.execute(f"ATTACH {_string(str(path))} AS {ALIAS}{suffix}")
    conn.execute(f"USE {ALIAS}")
    conn.execute("DETACH memory")


def _string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@contextlib.contextmanager
def refused_without_key(what: str, key: bytes | None, remedy: str) -> Iterator[None]:
    """Turn DuckDB's refusal of a file that does not open with ``key`` (a wrong key, no key
    for an encrypted file, a key for a plain one) into one naming :data:`KEY_RULE`."""
    try:
        yield
    except (duckdb.CatalogException, duckdb.InvalidInputException) as exc:
        said = str(exc).lower()
        if "encrypt" not in said and "aes tag" not in said:
            raise
        state = "with the key given" if key is not None else "without a key"
        raise SandboxError(
            f"{what} does not open {state}: it is encrypted under another key, or not "
            f"encrypted as expected; {remedy}",
            rule=KEY_RULE,
            article=ARTICLE,
        ) from None


def is_encrypted_parquet(path: str | Path) -> bool:
    """Whether ``path`` is a Parquet file with an encrypted footer: its magic says ``PARE``."""
    with open(path, "rb") as f:
        return f.read(4) == b"PARE"


def _parquet_key(conn: duckdb.DuckDBPyConnection, name: str, key: bytes) -> str:
    """Give ``conn`` ``key`` as ``name`` (writes use the built-in crypto, see above), and
    return the encryption configuration that reads or writes a Parquet file under it."""
    conn.execute(WRITE_WITH_BUILTIN_CRYPTO)
    conn.execute(f"PRAGMA add_parquet_key({_string(name)}, '{base64.b64encode(key).decode()}')")
    return f"{{footer_key: {_string(name)}}}"


def parquet_source(
    conn: duckdb.DuckDBPyConnection, path: str | Path, *, key: bytes | None, name: str
) -> str:
    """SQL reading the Parquet file ``path``; with ``key``, given to ``conn`` as ``name``, a
    file encrypted under it. Run the SQL inside :func:`refused_without_key`."""
    quoted = _string(str(path))
    if key is None:
        return f"read_parquet({quoted})"
    return f"read_parquet({quoted}, encryption_config = {_parquet_key(conn, name, key)})"


def write_encrypted_parquet(table: pa.Table, path: str | Path, key: bytes) -> None:
    """Write ``table`` to ``path`` as a Parquet file encrypted under ``key``."""
    with duckdb.connect(config={"autoload_known_extensions": False}) as conn:
        config = _parquet_key(conn, "version", key)
        conn.register("version_rows", table)
        to = _string(str(path))
        conn.execute(f"COPY version_rows TO {to} (FORMAT parquet, ENCRYPTION_CONFIG {config})")
