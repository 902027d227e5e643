"""``sandbox catalog``: publish a dataset version from its entry YAML, list the catalogue,
the authority's catalogue review and a provider's withdrawal of its proposal
(Shanghai Art.12; Wuxi Art.11-12)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from sandbox.catalog.models import Dataset
from sandbox.catalog.reading import Encoding, ReadOptions
from sandbox.catalog.review import Decision, decide_review, list_reviews, withdraw_review
from sandbox.catalog.service import latest_version, public_datasets, publish_dataset
from sandbox.cli.common import AS_OPTION, acting_user, refusals_exit, unit_of_work
from sandbox.contracts import load_catalog_entry
from sandbox.errors import ContractError, ValidationFailed
from sandbox.settings import get_settings

catalog_app = typer.Typer(no_args_is_help=True)


@catalog_app.command("publish")
def publish(
    entry: Path = typer.Argument(..., help="Catalogue entry YAML."),
    data: Path | None = typer.Option(None, help="Data file; default: the entry's source."),
    basis: str = typer.Option("", help="Desensitisation/consent reference for a class change."),
    encoding: Encoding = typer.Option(Encoding.auto, help="A CSV file's encoding."),
    header_row: int | None = typer.Option(
        None, min=1, help="The header's row in the file; default: found after any title rows."
    ),
    as_user: str = AS_OPTION,
) -> None:
    """Publish a new version of a dataset (quality report printed as JSON).

    A new or changed entry is printed with ``"status": "under_review"``: it is
    published when the authority approves its catalogue review."""
    with refusals_exit():
        parsed = load_catalog_entry(entry)
        source = data or parsed.source_path()
        if source is None:
            raise ContractError(f"{entry}: source: no data file given", rule="catalog-entry")
        with unit_of_work() as session:
            publication = publish_dataset(
                session=session,
                actor=acting_user(session, as_user),
                entry=parsed,
                data_path=source,
                settings=get_settings(),
                class_change_basis=basis,
                read_options=ReadOptions(encoding, header_row),
            )
            typer.echo(json.dumps(publication.to_dict(), ensure_ascii=False, indent=2))


@catalog_app.command("list")
def list_public() -> None:
    """The public catalogue: name, class, latest version."""
    with refusals_exit(), unit_of_work() as session:
        for ds in public_datasets(session):
            v = latest_version(session, ds)
            typer.echo(f"{ds.name}\t{ds.open_class}\tv{v.version if v else '-'}\t{ds.status}")


@catalog_app.command("reviews")
def reviews(
    status: str = typer.Option(
        "", help="under_review, published, rejected or withdrawn; default: all."
    ),
    as_user: str = AS_OPTION,
) -> None:
    """Catalogue reviews as the user may see them: id, dataset, kind, status, legality review."""
    with refusals_exit(), unit_of_work() as session:
        for r in list_reviews(session, acting_user(session, as_user), status):
            name = session.get_one(Dataset, r.dataset_id).name
            typer.echo(f"{r.id}\t{name}\t{r.kind}\t{r.to_class}\t{r.status}\t{r.legality_review}")


@catalog_app.command("review")
def review(
    review_id: int = typer.Argument(..., help="The catalogue review's id."),
    approve: bool = typer.Option(False, "--approve", help="Publish the proposed entry."),
    reject: bool = typer.Option(False, "--reject", help="Refuse the proposed entry."),
    legality_review: str = typer.Option(
        "", "--legality-review", help="合法性审查: the legality review, required either way."
    ),
    as_user: str = AS_OPTION,
) -> None:
    """Decide a catalogue review as the authority (Shanghai Art.12; Wuxi Art.11-12)."""
    with refusals_exit():
        if approve == reject:
            raise ValidationFailed(
                "give exactly one of --approve or --reject", rule="catalog-review-decision"
            )
        decision = Decision.approve if approve else Decision.reject
        with unit_of_work() as session:
            r = decide_review(
                session=session,
                actor=acting_user(session, as_user),
                review_id=review_id,
                decision=decision,
                legality_review=legality_review,
            )
            typer.echo(f"catalogue review {r.id} {r.status}")


@catalog_app.command("withdraw-review")
def withdraw(
    review_id: int = typer.Argument(..., help="The catalogue review's id."),
    reason: str = typer.Option("", "--reason", help="Why the proposal is taken back (required)."),
    as_user: str = AS_OPTION,
) -> None:
    """Withdraw a proposal still under review, as a provider of the dataset's organisation;
    its proposed data version is deleted and the dataset may be proposed again."""
    with refusals_exit(), unit_of_work() as session:
        r = withdraw_review(
            session=session, actor=acting_user(session, as_user), review_id=review_id, reason=reason
        )
        typer.echo(f"catalogue review {r.id} {r.status}")
