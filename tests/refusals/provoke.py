"""Provoking a refusal and reading it as a person would: its rule, and its Chinese text."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from sqlalchemy.orm import Session, sessionmaker

from sandbox.accounts.models import User
from sandbox.db.base import transaction
from sandbox.errors import SandboxError
from sandbox.refusal_catalogue import RULES
from sandbox.refusal_text import say

CHINESE = re.compile(r"[\u4e00-\u9fff]")
Users = dict[str, User]
#: Something a person does with the platform's accounts, in a transaction.
Provoke = Callable[[Session, Users], object]


def refused(factory: sessionmaker[Session], users: Users, provoke: Provoke) -> SandboxError:
    """The refusal ``provoke`` raises in a transaction of its own (rolled back)."""
    with pytest.raises(SandboxError) as refusal, transaction(factory) as session:
        provoke(session, users)
    return refusal.value


def assert_refused_by(refusal: SandboxError, rule: str) -> str:
    """``refusal`` carries ``rule``, a rule of the register, and reads in Chinese; its text."""
    assert refusal.rule == rule and rule in RULES, (refusal.rule, refusal.message)
    chinese = say(rule, refusal.message, "zh")
    assert chinese and CHINESE.search(chinese), refusal.message
    return chinese


def refusal_test(cases: dict[str, tuple[str, Provoke]], platform: str) -> Callable[..., None]:
    """A test provoking each of ``cases`` (rule, what is done) on the platform the fixture
    named ``platform`` sets up, each refused by its rule and read in Chinese."""

    @pytest.mark.parametrize("case", cases)
    def test(case: str, factory: sessionmaker[Session], request: pytest.FixtureRequest) -> None:
        rule, provoke = cases[case]
        assert_refused_by(refused(factory, request.getfixturevalue(platform), provoke), rule)

    return test
