"""Sign in through an external OpenID Connect provider: the authorization-code flow.

Wuxi Art.6 sends users of conditional data through the province's unified
identity authentication system before they reach the platform; an OpenID
Connect provider is how such a system is plugged in. The platform is a
confidential client and checks everything OpenID Connect Core 1.0 §3.1 asks
of one, because each check stops a known attack:

* ``state``, random per attempt, also kept in an httponly cookie and stored
  (hashed) in the database, used once: a callback that another browser
  started, or that is replayed, is refused (login CSRF, replay);
* PKCE (S256): a stolen authorization code is worthless without the verifier;
* the ID token's signature against the provider's JWKS (RS256 or ES256 only,
  never ``none`` or HMAC), its ``iss``, ``aud`` (and ``azp``), ``exp``,
  ``iat`` and ``nonce`` (token injection and replay).

A verified subject signs in only as the platform account an operator linked
to it (:class:`OidcLink`); an unlinked subject is refused, never turned into a
new account, so nobody obtains a provider, operator or authority account by
owning an identity at the provider.

Pending attempts live in the database, not in memory, so any instance of the
platform can finish a sign-in another one started.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

import httpx
import jwt
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.permissions import require_role
from sandbox.audit.record import record
from sandbox.db.base import utcnow
from sandbox.errors import Conflict, Kind, NotFound, PolicyViolation, SandboxError
from sandbox.identity.models import OidcLink, OidcLoginAttempt
from sandbox.identity.organisations import find_user
from sandbox.settings import Settings

#: Identity authentication is a required technical safeguard (Rizhao Art.29).
AUTH_ARTICLE = "Rizhao Art.29"
#: Platform access only through real-name identity (Wuxi Art.6).
REAL_NAME_ARTICLE = "Wuxi Art.6"
LOGIN_MINUTES = 10
#: Asymmetric signatures only: an HMAC-signed token could be forged with the client secret.
ALGORITHMS = ("RS256", "ES256")
#: Clock skew tolerated between the platform and the provider.
LEEWAY_SECONDS = 60
REQUIRED_CLAIMS = ["iss", "sub", "aud", "exp", "iat", "nonce"]


class ProviderUnavailable(SandboxError):
    """The identity provider did not answer as an OpenID Connect provider must."""

    rule = "oidc-provider"
    article = AUTH_ARTICLE
    kind = Kind.upstream


def refuse(rule: str, message: str, article: str = AUTH_ARTICLE) -> PolicyViolation:
    return PolicyViolation(rule, article, message)


@dataclass(frozen=True)
class OidcConfig:
    """The platform's registration at the provider (settings ``SANDBOX_OIDC_*``)."""

    issuer: str
    client_id: str
    client_secret: str
    redirect_url: str
    scope: str

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcConfig:
        if not (settings.oidc_issuer and settings.oidc_client_id and settings.oidc_redirect_url):
            raise refuse(
                "oidc-disabled",
                "sign-in through an external identity provider is not configured here; "
                "sign in with your platform account",
            )
        return cls(
            issuer=settings.oidc_issuer,
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            redirect_url=settings.oidc_redirect_url,
            scope=settings.oidc_scope,
        )


@dataclass(frozen=True)
class ProviderMetadata:
    """What the discovery document tells us (OpenID Connect Discovery 1.0 §3)."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str


@dataclass(frozen=True)
class PendingLogin:
    nonce: str
    code_verifier: str


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _aware(instant: datetime) -> datetime:
    """SQLite hands datetimes back naive; ours are all UTC."""
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _get_json(http: httpx.Client, url: str) -> dict[str, Any]:
    try:
        body = http.get(url).raise_for_status().json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(
            f"the identity provider did not answer at {url}; try again later"
        ) from exc
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"the identity provider's answer at {url} is not a JSON object")
    return body


def discover(config: OidcConfig, http: httpx.Client) -> ProviderMetadata:
    """Fetch the discovery document; its ``issuer`` must be exactly the configured one (§4.3)."""
    doc = _get_json(http, config.issuer.rstrip("/") + "/.well-known/openid-configuration")
    if doc.get("issuer") != config.issuer:
        raise refuse("oidc-issuer", "the identity provider names a different issuer than ours")
    try:
        return ProviderMetadata(
            issuer=doc["issuer"],
            authorization_endpoint=doc["authorization_endpoint"],
            token_endpoint=doc["token_endpoint"],
            jwks_uri=doc["jwks_uri"],
        )
    except KeyError as exc:
        raise ProviderUnavailable(f"the discovery document lacks {exc.args[0]}") from exc


def start_login(
    *, session: Session, config: OidcConfig, metadata: ProviderMetadata
) -> tuple[str, str]:
    """Store a new attempt; return the provider URL to send the browser to, and the state.

    The attempt is transient sign-in bookkeeping, not a record of anything that
    was opened or used, so it leaves no audit event; the callback does.
    """
    now = utcnow()
    session.execute(delete(OidcLoginAttempt).where(OidcLoginAttempt.expires_at < now))
    state, nonce, verifier = (secrets.token_urlsafe(32) for _ in range(3))
    session.add(
        OidcLoginAttempt(
            state_hash=_sha256(state),
            nonce=nonce,
            code_verifier=verifier,
            expires_at=now + timedelta(minutes=LOGIN_MINUTES),
        )
    )
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "response_type": "code",
            "client_id": config.client_id,
            "redirect_uri": config.redirect_url,
            "scope": config.scope,
            "state": state,
            "nonce": nonce,
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    return f"{metadata.authorization_endpoint}?{query}", state


def consume_attempt(session: Session, *, state: str, cookie_state: str) -> PendingLogin:
    """Burn the attempt named by ``state``: it must be this browser's, unused and fresh."""
    if not (state and cookie_state and hmac.compare_digest(state, cookie_state)):
        raise refuse(
            "oidc-state",
            "this sign-in answer does not belong to a sign-in started in this browser; "
            "start the sign-in again",
        )
    row = session.get(OidcLoginAttempt, _sha256(state), with_for_update=True)
    now = utcnow()
    if row is None or row.used_at is not None or _aware(row.expires_at) <= now:
        raise refuse(
            "oidc-state",
            f"this sign-in was already used or is older than {LOGIN_MINUTES} minutes; "
            "start the sign-in again",
        )
    row.used_at = now
    return PendingLogin(nonce=row.nonce, code_verifier=row.code_verifier)


def redeem_code(
    *,
    config: OidcConfig,
    metadata: ProviderMetadata,
    code: str,
    pending: PendingLogin,
    http: httpx.Client,
) -> dict[str, Any]:
    """Exchange the code (with the PKCE verifier) for an ID token and return its checked claims."""
    try:
        response = http.post(
            metadata.token_endpoint,
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": config.redirect_url,
                "code_verifier": pending.code_verifier,
            },
            # client_secret_basic: both parts form-encoded first (RFC 6749 §2.3.1).
            auth=(quote(config.client_id, safe=""), quote(config.client_secret, safe="")),
        )
    except httpx.HTTPError as exc:
        raise ProviderUnavailable("the identity provider's token endpoint did not answer") from exc
    if response.status_code != 200:
        raise refuse("oidc-code", "the identity provider refused the authorization code")
    id_token = response.json().get("id_token")
    if not isinstance(id_token, str):
        raise refuse("oidc-token", "the identity provider sent no ID token")
    return verify_id_token(
        id_token, config=config, metadata=metadata, nonce=pending.nonce, http=http
    )


def _signing_key(metadata: ProviderMetadata, kid: str | None, http: httpx.Client) -> Any:
    try:
        keys = jwt.PyJWKSet.from_dict(_get_json(http, metadata.jwks_uri)).keys
    except jwt.PyJWTError as exc:
        raise ProviderUnavailable("the identity provider's key set holds no usable key") from exc
    matching = [k for k in keys if kid is None or k.key_id == kid]
    if len(matching) != 1:
        raise refuse(
            "oidc-signature", "the ID token is signed with a key the provider does not publish"
        )
    return matching[0].key


def verify_id_token(
    id_token: str, *, config: OidcConfig, metadata: ProviderMetadata, nonce: str, http: httpx.Client
) -> dict[str, Any]:
    """Signature, issuer, audience, authorised party, expiry, issue time and nonce."""
    try:
        header = jwt.get_unverified_header(id_token)
    except jwt.PyJWTError as exc:
        raise refuse("oidc-token", "the ID token is not a well-formed JWT") from exc
    alg = header.get("alg")
    if alg not in ALGORITHMS:
        raise refuse("oidc-signature", f"ID tokens must be signed with {' or '.join(ALGORITHMS)}")
    key = _signing_key(metadata, header.get("kid"), http)
    problems: list[tuple[type[jwt.PyJWTError], str, str]] = [
        (jwt.ExpiredSignatureError, "oidc-expired", "the ID token has expired; sign in again"),
        (jwt.InvalidAudienceError, "oidc-audience", "the ID token was issued to another client"),
        (jwt.InvalidIssuerError, "oidc-issuer", "the ID token comes from another issuer"),
        (jwt.InvalidSignatureError, "oidc-signature", "the ID token's signature does not verify"),
        (jwt.PyJWTError, "oidc-token", "the ID token is not valid"),
    ]
    try:
        claims = jwt.decode(
            id_token,
            key=key,
            algorithms=[alg],
            audience=config.client_id,
            issuer=metadata.issuer,
            leeway=LEEWAY_SECONDS,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.PyJWTError as exc:
        rule, message = next((r, m) for kind, r, m in problems if isinstance(exc, kind))
        raise refuse(rule, message) from exc
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != config.client_id:
        raise refuse("oidc-audience", "the ID token was issued to another authorised party")
    if not hmac.compare_digest(str(claims["nonce"]), nonce):
        raise refuse("oidc-nonce", "the ID token was not issued for this sign-in (nonce)")
    return claims


def linked_user(session: Session, *, issuer: str, subject: str) -> User:
    """The active platform account linked to (issuer, subject), or a refusal saying what to do."""
    link = session.scalar(
        select(OidcLink).where(OidcLink.issuer == issuer, OidcLink.subject_index == subject)
    )
    user = session.get(User, link.user_id) if link else None
    if user is None or not user.active:
        raise refuse(
            "oidc-unlinked",
            "the identity provider confirmed who you are, but no active platform account is "
            "linked to that identity; ask the platform operator to link your account "
            "(accounts are never created automatically at sign-in)",
            article=REAL_NAME_ARTICLE,
        )
    return user


def link_subject(
    *, session: Session, actor: User, username: str, issuer: str, subject: str
) -> OidcLink:
    """Let the external identity (issuer, subject) sign in as ``username``."""
    require_role(actor, Role.operator)
    user = find_user(session, username)
    taken = session.scalar(
        select(OidcLink).where(
            OidcLink.issuer == issuer,
            (OidcLink.subject_index == subject) | (OidcLink.user_id == user.id),
        )
    )
    if taken is not None:
        raise Conflict(
            "this identity, or this account, is already linked at this provider; unlink it first",
            rule="oidc-link-duplicate",
        )
    link = OidcLink(
        issuer=issuer,
        subject=subject,
        subject_index=subject,
        user_id=user.id,
        created_by=actor.username,
    )
    session.add(link)
    session.flush()
    record(
        session,
        actor=actor.username,
        action="user.oidc_link",
        object=f"user:{username}",
        details={"issuer": issuer, "subject_index": _stored_index(session, link)},
    )
    return link


def _stored_index(session: Session, link: OidcLink) -> str:
    """The subject's blind index as stored: the record names the identity by it, not by the
    subject, which may be a resident ID number (the subject stays sealed)."""
    return session.scalar(select(OidcLink.subject_index).where(OidcLink.id == link.id)) or ""


def unlink_subject(*, session: Session, actor: User, username: str, issuer: str) -> None:
    require_role(actor, Role.operator)
    user = find_user(session, username)
    link = session.scalar(
        select(OidcLink).where(OidcLink.issuer == issuer, OidcLink.user_id == user.id)
    )
    if link is None:
        raise NotFound(f"{username} has no link at this provider", rule="oidc-link-unknown")
    index = _stored_index(session, link)
    session.delete(link)
    record(
        session,
        actor=actor.username,
        action="user.oidc_unlink",
        object=f"user:{username}",
        details={"issuer": issuer, "subject_index": index},
    )
