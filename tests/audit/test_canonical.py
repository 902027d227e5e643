"""The canonical encoding: pinned bytes, and refusals that name the offending value."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.audit.canonical import (
    GENESIS_HASH,
    canonical_bytes,
    canonical_json,
    event_hash,
    format_instant,
    is_canonical,
)
from sandbox.errors import ValidationFailed


def test_event_hash_is_sha256_of_prev_hash_and_canonical_payload() -> None:
    expected_payload = (
        '{"action":"agreement.suspend","actor":"alice","at":"2026-01-02T03:04:05.000006Z",'
        '"details":{"amount":"1.50","reason":"投诉"},"object":"agreement:AGR-2026-0001","seq":1}'
    )
    expected = hashlib.sha256(GENESIS_HASH.encode() + expected_payload.encode("utf-8")).hexdigest()
    assert (
        event_hash(
            prev_hash=GENESIS_HASH,
            seq=1,
            at="2026-01-02T03:04:05.000006Z",
            actor="alice",
            action="agreement.suspend",
            object="agreement:AGR-2026-0001",
            details=canonical_json({"reason": "投诉", "amount": Decimal("1.50")}),
        )
        == expected
    )


def test_values_are_encoded_as_documented() -> None:
    shanghai = timezone(timedelta(hours=8))
    value = {
        "b": [1, 0.1, True, None, (2, 3)],
        "a": datetime(2026, 1, 2, 11, 4, 5, tzinfo=shanghai),
        "naive": datetime(2026, 1, 2, 3, 4, 5),
        "day": date(2026, 1, 2),
        "cost": Decimal("12.30"),
    }
    assert canonical_json(value) == (
        '{"a":"2026-01-02T03:04:05.000000Z","b":[1,0.1,true,null,[2,3]],'
        '"cost":"12.30","day":"2026-01-02","naive":"2026-01-02T03:04:05.000000Z"}'
    )


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ({"x": float("nan")}, "$.x"),
        ({"x": [float("inf")]}, "$.x[0]"),
        ({"x": Decimal("NaN")}, "$.x"),
        ({1: "a"}, "key 1"),
        ({"x": {1, 2}}, "$.x is a set"),
        ({"x": b"bytes"}, "$.x is a bytes"),
    ],
)
def test_unencodable_values_are_refused_by_path(value: object, names: str) -> None:
    with pytest.raises(ValidationFailed, match=re.escape(names)):
        canonical_json(value)


def test_instants_are_fixed_width_utc() -> None:
    moment = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
    assert format_instant(moment) == "2026-03-01T00:00:00.000000Z"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(json_values)
def test_canonical_text_is_a_fixed_point(value: object) -> None:
    """What a verifier reads back encodes to the very same text (floats included)."""
    text = canonical_json(value)
    assert canonical_json(json.loads(text)) == text


@given(st.text(), st.text(), st.text(), st.integers(min_value=1), json_values)
def test_the_spliced_payload_is_the_canonical_payload(
    actor: str, action: str, object_: str, seq: int, details: object
) -> None:
    fields = {"seq": seq, "at": "2026-01-01T00:00:00.000000Z", "actor": actor, "action": action}
    whole = canonical_bytes({**fields, "object": object_, "details": details})
    spliced = event_hash(
        prev_hash=GENESIS_HASH, object=object_, details=canonical_json(details), **fields
    )
    assert spliced == hashlib.sha256(GENESIS_HASH.encode() + whole).hexdigest()


@pytest.mark.parametrize("text", ['{"a": 1}', '{"b":1,"a":2}', "NaN", '{"a":1.0e0}', "not json"])
def test_non_canonical_text_is_recognised(text: str) -> None:
    assert not is_canonical(text)
