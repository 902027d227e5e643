"""Failed sign-ins slow the next attempt down, per account and per address (R13 identity
authentication and access control; Rizhao Art.29).

Two rules, each a capped exponential wait after a number of free failures in the last
hour, counted from the last failure:

* ``sign-in-backoff-account``: failures against one account name (whether or not it
  exists, so the answer never tells which accounts do), since its last successful
  sign-in. An address the account signed in from in the last 90 days is exempt, so an
  attacker guessing a reviewer's password from elsewhere cannot keep the reviewer out.
* ``sign-in-backoff-address``: failures from one client address, whatever the account,
  so one machine cannot try many accounts quickly.

There is no lockout: the wait never exceeds :data:`CAP_SECONDS`, and a throttled attempt
is refused without looking at the password (so guesses made while waiting are worthless)
and without being written down (so it does not lengthen the wait). Refusals are
:class:`~sandbox.errors.TooManyAttempts`: HTTP 429 with ``Retry-After``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sandbox.accounts.attempts import SignInAttempt, as_utc, record_attempt
from sandbox.accounts.models import User
from sandbox.accounts.service import authenticate
from sandbox.errors import TooManyAttempts

ARTICLE = "Rizhao Art.29 (R13)"
#: Failures older than this no longer count.
WINDOW = timedelta(hours=1)
#: A successful sign-in from an address exempts it from the account rule this long.
KNOWN_FOR = timedelta(days=90)
CAP_SECONDS = 300


@dataclass(frozen=True)
class Backoff:
    """``free`` failures cost nothing; each one after doubles the wait, from ``base``
    seconds up to ``cap``."""

    rule: str
    free: int
    base: float = 1.0
    cap: float = CAP_SECONDS

    def delay(self, failures: int) -> float:
        """Seconds to wait after the last of ``failures`` recent failures."""
        if failures < self.free:
            return 0.0
        return min(self.cap, self.base * 2 ** min(failures - self.free, 32))


ACCOUNT = Backoff("sign-in-backoff-account", free=5)
ADDRESS = Backoff("sign-in-backoff-address", free=10)


def _failures(session: Session, *conditions: object) -> tuple[int, datetime | None]:
    count, last = session.execute(
        select(func.count(), func.max(SignInAttempt.at)).where(
            SignInAttempt.succeeded.is_(False), *conditions
        )
    ).one()
    return count, as_utc(last) if last is not None else None


def _last_success(session: Session, *conditions: object) -> datetime | None:
    last = session.scalar(
        select(func.max(SignInAttempt.at)).where(SignInAttempt.succeeded.is_(True), *conditions)
    )
    return as_utc(last) if last is not None else None


@dataclass(frozen=True)
class Wait:
    """What one rule says now: recent failures it counts, and seconds left to wait."""

    rule: Backoff
    failures: int
    seconds: int

    def refusal(self, whose: str) -> TooManyAttempts:
        return TooManyAttempts(
            f"{self.failures} failed sign-ins {whose} in the last hour: wait {self.seconds} s "
            f"before trying again (after {self.rule.free} failures each one doubles the wait, "
            f"up to {int(self.rule.cap)} s; nothing is locked)",
            retry_after=self.seconds,
            rule=self.rule.rule,
            article=ARTICLE,
        )


def _wait(rule: Backoff, failures: int, last: datetime | None, now: datetime) -> Wait:
    left = rule.delay(failures) - (now - last).total_seconds() if last else 0.0
    return Wait(rule, failures, math.ceil(left) if left > 0 else 0)


def account_wait(session: Session, username: str, now: datetime) -> Wait:
    """The account rule: failures since the later of an hour ago and its last success."""
    success = _last_success(session, SignInAttempt.username == username)
    since = now - WINDOW
    start = max(since, success) if success is not None else since
    n, last = _failures(session, SignInAttempt.username == username, SignInAttempt.at > start)
    return _wait(ACCOUNT, n, last, now)


def address_wait(session: Session, address: str, now: datetime) -> Wait:
    """The address rule: failures from ``address`` in the last hour, whatever the account."""
    n, last = _failures(session, SignInAttempt.address == address, SignInAttempt.at > now - WINDOW)
    return _wait(ADDRESS, n, last, now)


def known_address(session: Session, username: str, address: str, now: datetime) -> bool:
    """Whether ``username`` signed in from ``address`` in the last :data:`KNOWN_FOR`."""
    return bool(address) and (
        _last_success(
            session,
            SignInAttempt.username == username,
            SignInAttempt.address == address,
            SignInAttempt.at >= now - KNOWN_FOR,
        )
        is not None
    )


def check_backoff(session: Session, *, username: str, address: str, now: datetime) -> None:
    """Raise :class:`TooManyAttempts` (the longest wait of the two rules) if a sign-in to
    ``username`` from ``address`` must wait; an empty address skips the address rule."""
    refusals = []
    if not known_address(session, username, address, now):
        wait = account_wait(session, username, now)
        if wait.seconds:
            refusals.append(wait.refusal("to this account"))
    if address:
        wait = address_wait(session, address, now)
        if wait.seconds:
            refusals.append(wait.refusal("from your address"))
    if refusals:
        raise max(refusals, key=lambda r: r.retry_after)


def authenticate_with_backoff(
    session: Session,
    username: str,
    password: str,
    *,
    address: str,
    channel: str,
    now: datetime,
    second_factor_follows: Callable[[User], bool] = lambda _: False,
) -> User | None:
    """The user whose password this is, or ``None``; the attempt is recorded either way
    (the caller commits), except a right password that ``second_factor_follows``: the
    second step records that attempt, so a password alone never resets the account's
    wait. Raises :class:`TooManyAttempts` first if the attempt must wait."""
    check_backoff(session, username=username, address=address, now=now)
    user = authenticate(session, username, password)
    if user is None or not second_factor_follows(user):
        record_attempt(
            session,
            username=username,
            address=address,
            channel=channel,
            succeeded=user is not None,
            at=now,
        )
    return user
