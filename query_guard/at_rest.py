"""How a per-agreement database file is attached: encrypted by DuckDB itself when given a key.

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
"""

from __future__ import annotations

from pathlib import Path

import duckdb

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
    quoted = "'" + str(path).replace("'", "''") + "'"
    suffix = f" ({', '.join(options)})" if options else ""
    try:
        conn.execute(f"ATTACH {quoted} AS {ALIAS}{suffix}")
    except (duckdb.CatalogException, duckdb.InvalidInputException) as exc:
        if "encrypt" not in str(exc).lower():
            raise
        state = "with the key given" if key is not None else "without a key"
        raise SandboxError(
            f"the database {Path(path).name} does not open {state}: it is encrypted under "
            "another key, or not encrypted as expected; rebuild it by provisioning again",
            rule=KEY_RULE,
            article=ARTICLE,
        ) from None
    conn.execute(f"USE {ALIAS}")
    conn.execute("DETACH memory")
