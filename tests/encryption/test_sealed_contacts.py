"""How to reach the people who object, complain, report misuse or ask for data is sealed
like users' e-mail addresses: a planted contact is absent from the raw tables (and the
SQLite file) and read back by the platform; migration 0012 opens the values on downgrade
and seals them again on upgrade. On SQLite and PostgreSQL."""

from __future__ import annotations

from alembic import command
from sqlalchemy import create_engine, text

from sandbox.db.base import make_sessionmaker, transaction
from sandbox.db.schema import alembic_config, ensure_schema
from sandbox.db.sealed import field_keys, platform_engine
from sandbox.feedback.models import Complaint, Objection
from sandbox.oversight.models import Demand, TipOff
from sandbox.settings import Settings
from tests.encryption.test_sealed_fields import _absent, _raw_dump, settings  # noqa: F401

#: A contact only each row holds, by table.
PLANTED = {
    "objections": "zqx.objection@example.invalid",
    "complaints": "+86 139 0000 7301",
    "tipoffs": "微信 zqx-tipoff-planted",
    "demands": "zqx.demand@example.invalid",
}
MODELS = {"objections": Objection, "complaints": Complaint, "tipoffs": TipOff, "demands": Demand}


def _raw_contacts(url: str) -> dict[str, str]:
    raw = create_engine(url)
    try:
        with raw.connect() as conn:
            return {t: conn.execute(text(f"SELECT contact FROM {t}")).scalar_one() for t in PLANTED}
    finally:
        raw.dispose()


def test_contacts_are_sealed_and_0012_seals_and_opens_them(settings: Settings) -> None:  # noqa: F811
    keys = field_keys(settings)
    ensure_schema(settings.db_url, keys)
    engine = platform_engine(settings)
    try:
        with transaction(make_sessionmaker(engine)) as session:
            session.execute(
                text(
                    "INSERT INTO datasets (id, name, provider, open_class, status,"
                    " under_objection, published, entry, created_at) VALUES (1, 'visits',"
                    " 'Health', 'conditional', 'open', :f, :f, '{}', CURRENT_TIMESTAMP)"
                ),
                {"f": False},
            )
            session.add_all(
                [
                    Objection(dataset_id=1, submitter="Zhu", contact=PLANTED["objections"],
                              description="wrong totals"),
                    Complaint(dataset_id=1, complainant="Zhu", contact=PLANTED["complaints"],
                              kind="privacy", description="my record", evidence=""),
                    TipOff(kind="misuse", contact=PLANTED["tipoffs"], description="seen",
                           status="received", receipt_hash="a" * 64),
                    Demand(requester="Zhu", contact=PLANTED["demands"], title="more data",
                           description="bus stops", status="received", receipt_hash="b" * 64),
                ]
            )  # fmt: skip
        _absent(_raw_dump(settings, PLANTED), PLANTED.values())

        config = alembic_config(settings.db_url)
        config.attributes["field_keys"] = keys
        command.downgrade(config, "0011")
        assert _raw_contacts(settings.db_url) == PLANTED
        command.upgrade(config, "head")
        _absent(_raw_dump(settings, PLANTED), PLANTED.values())
        with transaction(make_sessionmaker(engine)) as session:
            for table, model in MODELS.items():
                assert session.query(model).one().contact == PLANTED[table]
    finally:
        engine.dispose()
