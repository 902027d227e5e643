"""``sandbox release``: check signed release bundles.

``verify BUNDLE`` exits 0 when the bundle is intact and 1 (with every reason)
when it was tampered with; 2 on a usage error such as a missing key. A bundle as
downloaded is plain; one kept on the platform is sealed (export_review/at_rest.py) and
is opened with the platform's key store.
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from export_review.at_rest import bundle_opener
from export_review.bundle import FileCipher, verify_bundle
from export_review.signing import load_public_key, signing_key_path
from sandbox.errors import SandboxError
from sandbox.keys.store import key_store
from sandbox.settings import get_settings

release_app = typer.Typer(no_args_is_help=True, help=__doc__)


@release_app.callback()
def _group() -> None:
    """Keep ``verify`` a subcommand even while it is the only one."""


def _opener(bundle: Path) -> FileCipher:
    """Opens the files of a bundle kept on the platform; the key store is read only then."""
    return lambda name, data: bundle_opener(key_store(get_settings()), bundle.name)(name, data)


@release_app.command("verify")
def verify(
    bundle: Path = typer.Argument(..., help="The bundle directory."),
    public_key: Path | None = typer.Option(
        None, "--public-key", help="Ed25519 public key PEM (default: the platform's key)."
    ),
) -> None:
    """Check the bundle's signature and every file's SHA-256."""
    key_path = public_key or signing_key_path(get_settings().keys_dir)
    try:
        key = load_public_key(key_path)
    except (OSError, ValueError, SandboxError) as exc:
        typer.echo(f"error: cannot load the public key {key_path}: {exc}", err=True)
        sys.exit(2)
    problems = verify_bundle(bundle, key, _opener(bundle))
    if problems:
        for problem in problems:
            typer.echo(f"tampered: {problem}", err=True)
        sys.exit(1)
    typer.echo(f"ok: {bundle} is intact and signed by this key")
