"""Contacts and consent: keyed pseudonymous ids, the address in one table only, consent
enforced before any decision."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import inspect, text

from postwise.core.db import open_database
from postwise.core.settings import Settings
from postwise.engage.contacts import (
    ConsentError,
    ContactError,
    ContactStore,
    pseudonymise,
)
from postwise.engage.ingest import import_records

KEY = b"k" * 32


@pytest.fixture
def store(tmp_path: Path) -> ContactStore:
    return ContactStore(open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}"), KEY)


def test_hmac_is_keyed_and_normalised() -> None:
    first = pseudonymise("Ann@Example.org", KEY)
    assert first == pseudonymise(" <ann@example.org> ", KEY)
    assert first != pseudonymise("ann@example.org", b"other-key-" * 4)
    assert len(first) == 64 and "ann" not in first


@pytest.mark.parametrize("bad", ["", "no-at-sign", "a b@x.org", "a@nodot", "x" * 300 + "@x.org"])
def test_malformed_addresses_are_refused(bad: str) -> None:
    with pytest.raises(ContactError):
        pseudonymise(bad, KEY)


def test_no_consent_means_no_decision(store: ContactStore) -> None:
    contact_id = store.upsert("ann@example.org", {"city": "Leeds"})
    assert not store.has_consent(contact_id, "marketing", "email")
    with pytest.raises(ConsentError, match="no consent recorded"):
        store.require_consent(contact_id, "marketing", "email")
    store.record_consent(contact_id, "marketing", "email", True, "signup form")
    store.require_consent(contact_id, "marketing", "email")
    assert not store.has_consent(contact_id, "marketing", "sms")
    assert store.consenting([contact_id], "marketing", "email") == {contact_id}


def test_latest_statement_wins(store: ContactStore) -> None:
    contact_id = store.upsert("ann@example.org")
    now = datetime.now(UTC)
    store.record_consent(contact_id, "marketing", "email", True, "form", now)
    store.record_consent(contact_id, "marketing", "email", False, "call", now + timedelta(1))
    with pytest.raises(ConsentError, match="withdrawn"):
        store.require_consent(contact_id, "marketing", "email")
    store.record_consent(contact_id, "marketing", "email", True, "old", now - timedelta(1))
    assert not store.has_consent(contact_id, "marketing", "email")
    assert store.consenting([contact_id], "marketing", "email") == set()


def test_unsubscribe_and_complaint_withdraw_consent(store: ContactStore) -> None:
    for number, kind in enumerate(("unsubscribe", "complaint")):
        address = f"user{number}@example.org"
        contact_id = store.upsert(address)
        store.record_consent(
            contact_id, "marketing", "email", True, "form", datetime(2024, 1, 1, tzinfo=UTC)
        )
        event = {"event_id": f"e{number}", "type": kind, "occurred_at": "2024-02-01T00:00:00Z"}
        report, _ = import_records(store, "events", [{**event, "contact_id": contact_id}])
        assert report.imported == 1 and report.consent_withdrawn == 1
        with pytest.raises(ConsentError):
            store.require_consent(contact_id, "marketing", "email")


def test_raw_address_lives_only_in_contact_addresses(store: ContactStore) -> None:
    address = "secret.person@example.org"
    contact_id = store.upsert(address, {"email_again": address, "plan": "gold"})
    records = [
        {
            "email": address,
            "attributes": {"note": f"reach me at {address}"},
            "consent": [{"purpose": "marketing", "channel": "email", "granted": True}],
        }
    ]
    import_records(store, "contacts", records)
    event = {"event_id": "x1", "type": "click", "occurred_at": 1_700_000_000, "email": address}
    import_records(store, "events", [event])
    assert store.address_of(contact_id) == address
    assert store.attributes(contact_id) == {"plan": "gold"}
    with store.engine.connect() as connection:
        for table in inspect(connection).get_table_names():
            rows = connection.execute(text(f'SELECT * FROM "{table}"')).fetchall()
            found = any("secret.person" in str(value).lower() for row in rows for value in row)
            assert found == (table == "contact_addresses"), table


def test_production_refuses_to_start_without_a_key(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="engage_hmac_key is required in production"):
        Settings(environment="production", data_dir=tmp_path)
    with pytest.raises(ValueError, match="at least 32"):
        Settings(environment="test", data_dir=tmp_path, engage_hmac_key="short")
    chosen = Settings(environment="production", data_dir=tmp_path, engage_hmac_key="s" * 40)
    assert chosen.resolved_engage_hmac_key() == b"s" * 40


def test_local_key_is_generated_once(tmp_path: Path) -> None:
    settings = Settings(environment="test", data_dir=tmp_path)
    key = settings.resolved_engage_hmac_key()
    assert len(key) == 64
    assert Settings(environment="test", data_dir=tmp_path).resolved_engage_hmac_key() == key
    assert (tmp_path / "engage-hmac.key").stat().st_mode & 0o077 == 0


def test_consenting_by_id_and_by_scan_agree_with_has_consent(
    store: ContactStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    import postwise.engage.contacts as contacts_module

    start = datetime(2026, 1, 1, tzinfo=UTC)
    ids = [store.upsert(f"c{i}@example.test") for i in range(12)]
    for i, contact_id in enumerate(ids):
        if i % 3 == 0:
            continue  # no statement: no consent
        store.record_consent(contact_id, "marketing", "email", True, "form", start)
        if i % 3 == 2:  # a later withdrawal wins
            later = start + timedelta(days=1)
            store.record_consent(contact_id, "marketing", "email", False, "form", later)
    store.record_consent(ids[0], "marketing", "sms", True, "form", start)  # another channel
    expected = {c for c in ids if store.has_consent(c, "marketing", "email")}
    assert expected == {c for i, c in enumerate(ids) if i % 3 == 1}
    asked = [*ids[:7], "f" * 64]  # a subset, and an unknown id
    by_id = store.consenting(asked, "marketing", "email")
    monkeypatch.setattr(contacts_module, "_CONSENT_BY_ID_LIMIT", 1)
    by_scan = store.consenting(asked, "marketing", "email")
    assert by_id == by_scan == expected & set(asked)
