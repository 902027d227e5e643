"""Refusals of export and import requests, catalogue reviews, previews and the audit record,
provoked through the services: each carries the rule the register lists and reads in
Chinese."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session, sessionmaker

from export_review.imports import create_import, withdraw_import
from export_review.requests import submit_request
from export_review.rerun import own_cursors
from sandbox.audit.checkpoint import make_checkpoint
from sandbox.catalog.review import get_review
from sandbox.keys.store import key_store
from sandbox.preview.service import latest_preview, set_preview_budget
from sandbox.settings import Settings, get_settings
from tests.refusals.provoke import Provoke, Users, assert_refused_by, refusal_test, refused

CASES: dict[str, tuple[str, Provoke]] = {
    "an export request that does not exist": (
        "export-unknown", lambda session, users: submit_request(
            session=session, actor=users["alice"], request_id=999,
            cursors=own_cursors(key_store(get_settings())))),
    "an import request that does not exist": (
        "import-unknown", lambda session, users: withdraw_import(
            session=session, actor=users["alice"], request_id=999)),
    "a catalogue review that does not exist": (
        "catalog-review-unknown", lambda session, _: get_review(session, 999)),
    "a preview budget with a delta of one": (
        "preview-budget", lambda session, users: set_preview_budget(
            session=session, actor=users["health"], name="clinic_visits", epsilon=1.0,
            delta=1.0)),
    "a preview never made": (
        "preview-none", lambda session, _: latest_preview(session, "clinic_visits")),
}  # fmt: skip


test_the_refusal_carries_its_rule_and_reads_in_chinese = refusal_test(CASES, "signed")


def test_an_import_says_what_it_is_for(
    factory: sessionmaker[Session], signed: Users, settings: Settings
) -> None:
    def hand_in(session: Session, users: Users) -> object:
        return create_import(
            session=session, settings=settings, actor=users["alice"], agreement_id="AGR-T-0001",
            purpose=" ", name="codes.csv", data=b"code,label\n1,a\n",
        )  # fmt: skip

    assert_refused_by(refused(factory, signed, hand_in), "import-purpose")


def test_an_empty_record_is_not_checkpointed(factory: sessionmaker[Session]) -> None:
    def checkpoint(session: Session, _: Users) -> object:
        return make_checkpoint(session, Ed25519PrivateKey.generate())

    assert_refused_by(refused(factory, {}, checkpoint), "audit-empty")
