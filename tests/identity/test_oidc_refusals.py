"""Refusals of sign-in through an identity provider not covered by the ID token checks: a
provider that did not sign the person in, a code it refuses, links made twice or missing.
Each carries its rule and reads in Chinese (``tests/refusals/provoke.py``)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.apps.platform import create_app
from sandbox.identity.oidc import link_subject, unlink_subject
from sandbox.refusal_text import say
from sandbox.settings import Settings
from tests.identity.conftest import PLATFORM
from tests.identity.provider import LocalProvider
from tests.identity.test_oidc import assert_refused, link, through_provider
from tests.refusals.provoke import assert_refused_by, refused


def _callback(client: TestClient, **change: str) -> str:
    """The provider's answer to a sign-in, with ``change`` made to its query."""
    back = urlsplit(through_provider(client))
    query = {k: v[0] for k, v in parse_qs(back.query).items()} | change
    return f"{back.path}?{urlencode(query)}"


@pytest.mark.parametrize(
    ("change", "rule", "chinese"),
    [
        ({"code": "not-the-code"}, "oidc-code", "统一身份认证服务拒绝了授权码"),
        ({"code": "", "error": "access_denied"}, "oidc-denied", "统一身份认证未能完成登录"),
    ],
)
def test_a_sign_in_the_provider_did_not_grant(
    client: TestClient, users: dict[str, User], change: dict[str, str], rule: str, chinese: str
) -> None:
    client.cookies.set("lang", "zh")
    response = client.get(_callback(client, **change))
    assert_refused(response, rule, client)
    assert chinese in response.text


def test_a_link_is_made_once_and_only_a_link_is_unmade(
    factory: sessionmaker[Session], users: dict[str, User], provider: LocalProvider
) -> None:
    link(factory, "alice", "subject-alice", provider.issuer)

    def ops(session: Session) -> User:
        return session.scalars(select(User).where(User.username == "ops")).one()

    again = refused(factory, users, lambda session, _: link_subject(
        session=session, actor=ops(session), username="alice", issuer=provider.issuer,
        subject="subject-alice",
    ))  # fmt: skip
    assert_refused_by(again, "oidc-link-duplicate")
    missing = refused(factory, users, lambda session, _: unlink_subject(
        session=session, actor=ops(session), username="bob", issuer=provider.issuer,
    ))  # fmt: skip
    assert say(missing.rule, missing.message, "zh") == "bob 在该统一身份认证服务中没有关联"
    assert_refused_by(missing, "oidc-link-unknown")


def test_a_provider_that_does_not_answer(
    settings: Settings, factory: sessionmaker[Session]
) -> None:
    """Nothing listens on port 9 of the loopback: the sign-in cannot start."""
    gone = settings.model_copy(update={"oidc_issuer": "http://127.0.0.1:9"})
    with TestClient(create_app(gone), base_url=PLATFORM) as client:
        client.cookies.set("lang", "zh")
        answer = client.get("/auth/oidc/login", follow_redirects=False)
    assert answer.status_code == 502 and "oidc-provider" in answer.text
    assert "统一身份认证服务（http://127.0.0.1:9" in answer.text
