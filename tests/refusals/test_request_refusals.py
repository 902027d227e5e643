"""Refusals of export and import requests, catalogue reviews and previews, provoked through
the services: each carries the rule the register lists and reads in Chinese."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from export_review.imports import create_import, withdraw_import
from export_review.requests import submit_request
from sandbox.catalog.review import get_review
from sandbox.preview.service import latest_preview
from sandbox.settings import Settings
from tests.refusals.provoke import Provoke, Users, assert_refused_by, refusal_test, refused

CASES: dict[str, tuple[str, Provoke]] = {
    "an export request that does not exist": (
        "export-unknown", lambda session, users: submit_request(
            session=session, actor=users["alice"], request_id=999)),
    "an import request that does not exist": (
        "import-unknown", lambda session, users: withdraw_import(
            session=session, actor=users["alice"], request_id=999)),
    "a catalogue review that does not exist": (
        "catalog-review-unknown", lambda session, _: get_review(session, 999)),
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
