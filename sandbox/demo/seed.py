"""Seed the platform with the synthetic demo: accounts, datasets, an agreement, an application.

The demo researchers are real-name verified by the demo operator, as an applicant
must be (Wuxi Art.6); their identities are invented and carry no ID number.

Development only: every demo account shares one printed password, and the demo
providers, operator and authority, who must sign in with a second factor, share one
printed authenticator secret (:data:`DEMO_TOTP_SECRET`; the researchers need none). The
data is synthetic; identifiers have valid checksums but region codes that do not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from sandbox.accounts.models import Role, User
from sandbox.accounts.second_factor import STAFF
from sandbox.accounts.service import create_user
from sandbox.accounts.totp import enrol_known_secret
from sandbox.agreements.service import import_agreement
from sandbox.applications.service import create_application, submit_application
from sandbox.catalog.identifiers import credit_code_check_char
from sandbox.catalog.review import Decision, decide_review
from sandbox.catalog.service import publish_dataset
from sandbox.clock import today
from sandbox.contracts import load_agreement, load_catalog
from sandbox.demo.generate import DEMO_AGREEMENTS_DIR, DEMO_CATALOG_DIR, FAKE_REGION, generate_demo
from sandbox.identity.organisations import add_organisation, verify_identity
from sandbox.provisioning.service import provision
from sandbox.settings import Settings
from sandbox.workcalendar import WorkCalendar

DEMO_PASSWORD = "sandbox-demo-2026"
#: The demo staff's TOTP secret (base32), printed by ``sandbox run`` and in the README.
DEMO_TOTP_SECRET = "SANDBOXDEMOTOTPSECRETFORDEMOONLY"
DEMO_LEGALITY_REVIEW = (
    "演示数据：合成数据，不含真实个人信息；开放类型与开放条件符合分类分级规则。"
    " Demo data: synthetic, no real personal information; open class and conditions "
    "follow the classification rules."
)
DEMO_VERIFIED_HOW = "演示账户，身份为虚构 Demo account: invented identity"
#: The demo providers' registered full names, which the pages show instead of short names.
DEMO_PROVIDER_NAMES = {
    "wuxi-health-commission": "无锡市卫生健康委员会",
    "wuxi-market-regulation": "无锡市市场监督管理局",
    "wuxi-statistics-bureau": "无锡市统计局",
    "wuxi-civil-affairs": "无锡市民政局",
}


@dataclass(frozen=True)
class DemoAccount:
    username: str
    role: Role
    display_name: str
    organisation: str


def demo_accounts(providers: list[str]) -> list[DemoAccount]:
    people = [
        DemoAccount("alice", Role.researcher, "李爱丽 Alice Li", "江南大学"),
        DemoAccount("bob", Role.researcher, "王博 Bob Wang", "无锡市卫生经济研究所"),
        DemoAccount("operator", Role.operator, "平台运维 Operator", "市大数据中心"),
        DemoAccount("authority", Role.authority, "主管部门 Authority", "市数据局"),
    ]
    for provider in providers:
        people.append(DemoAccount(provider, Role.provider, f"数据提供方 {provider}", provider))
    return people


def register_demo_provider(session: Session, operator: User, provider: str, i: int) -> None:
    """Put a demo provider in the register of organisations, as an operator does for a real
    one, under an invented credit code (state organ, region 99) with a valid check character."""
    body = f"11{FAKE_REGION}0000{i:09d}"
    add_organisation(
        session=session,
        actor=operator,
        credit_code=body + credit_code_check_char(body),
        name=provider,
        legal_name=DEMO_PROVIDER_NAMES.get(provider, provider),
        verified_how=DEMO_VERIFIED_HOW,
    )


def is_seeded(session: Session) -> bool:
    return session.scalar(select(User.id).limit(1)) is not None


def seed_demo(session: Session, settings: Settings, calendar: WorkCalendar) -> list[DemoAccount]:
    """Everything in one transaction: a failed seed leaves an empty platform."""
    catalog = load_catalog(DEMO_CATALOG_DIR)
    sources = generate_demo(settings.data_dir / "demo-source")
    providers = sorted({e.provider for e in catalog.values()})
    accounts = demo_accounts(providers)
    users: dict[str, User] = {}
    for a in accounts:
        users[a.username] = create_user(
            session=session,
            username=a.username,
            password=DEMO_PASSWORD,
            role=a.role,
            display_name=a.display_name,
            organisation=a.organisation,
            email=f"{a.username}@example.invalid",
            actor="demo-seed",
        )
    for a in accounts:
        if Role(a.role) in STAFF:
            enrol_known_secret(session, users[a.username], settings.keys_dir, DEMO_TOTP_SECRET)
    for i, provider in enumerate(providers):
        register_demo_provider(session, users["operator"], provider, i)
    for a in accounts:
        if a.role == Role.researcher:
            verify_identity(
                session=session,
                actor=users["operator"],
                username=a.username,
                legal_name=a.display_name.split()[0],
                verified_how=DEMO_VERIFIED_HOW,
                resident_id=None,
                secret_key=settings.secret_key,
            )
    for name, entry in catalog.items():
        publication = publish_dataset(
            session=session,
            actor=users[entry.provider],
            entry=entry,
            data_path=Path(sources[name]),
            settings=settings,
        )
        if publication.review is not None:
            # The demo authority reviews the demo catalogue (Shanghai Art.12; Wuxi Art.11-12).
            decide_review(
                session=session,
                actor=users["authority"],
                review_id=publication.review.id,
                decision=Decision.approve,
                legality_review=DEMO_LEGALITY_REVIEW,
            )
    for path in sorted(DEMO_AGREEMENTS_DIR.glob("*.yaml")):
        agreement = load_agreement(path)
        import_agreement(session=session, actor=users[agreement.provider], agreement=agreement)
        provision(
            session=session, settings=settings, actor=users["operator"], agreement_id=agreement.id
        )
    conditional = [e for e in catalog.values() if e.open_class == "conditional"]
    target = conditional[-1]
    app = create_application(
        session=session,
        actor=users["bob"],
        fields={
            "application_type": "sandbox",
            "title": f"Demo application for {target.title}",
            "reason": "Study of regional patterns for a public-interest report.",
            "scenario": "Aggregate statistics by district and year, published as a report.",
            "purpose": "Regional comparison of aggregate indicators.",
            "datasets": {target.name: [c.name for c in target.columns[:3]]},
            "usage_from": today(),
            "usage_until": today().replace(year=today().year + 1),
            "output_forms": ["dp_table", "report"],
            "conditions_evidence": "Institutional data-security certificate no. DEMO-001.",
            "commitment_signed": True,
        },
    )
    submit_application(
        session=session,
        actor=users["bob"],
        application_id=app.id,
        today=today(),
        calendar=calendar,
    )
    return accounts
