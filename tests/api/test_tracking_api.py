"""The tracking endpoints through the real app under uvicorn on loopback: click redirects,
the open pixel, one-click unsubscribe, and bad tokens that never redirect."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from postwise.core.db import EngageEventRecord, open_database
from postwise.engage.contacts import ContactStore
from postwise.engage.tracking import PIXEL_GIF, Tracker

APPLE_MPP = "Mozilla/5.0"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"


@pytest.fixture(scope="module")
def world(live_api: Any) -> Iterator[tuple[httpx.Client, Tracker, ContactStore]]:
    settings = live_api.settings
    engine = open_database(settings.resolved_database_url)
    store = ContactStore.from_settings(settings, engine)
    tracker = Tracker(settings.resolved_engage_hmac_key(), live_api.base_url)
    with httpx.Client(base_url=live_api.base_url, follow_redirects=False, timeout=10) as client:
        yield client, tracker, store
    engine.dispose()


def _contact(client: httpx.Client, address: str, tracking: bool | None) -> str:
    consent: list[dict[str, Any]] = [{"purpose": "marketing", "channel": "email", "granted": True}]
    if tracking is not None:
        consent.append({"purpose": "tracking", "channel": "email", "granted": tracking})
    reply = client.post("/v1/contacts", json={"email": address, "consent": consent})
    assert reply.status_code == 200, reply.text
    contact_id: str = reply.json()["items"][0]["contact_id"]
    return contact_id


def _events(store: ContactStore, contact: str, kind: str) -> list[dict[str, Any]]:
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(EngageEventRecord.properties).where(
                EngageEventRecord.contact_id == contact, EngageEventRecord.type == kind
            )
        ).all()
    return [dict(row[0]) for row in rows]


def _path(url: str, tracker: Tracker) -> str:
    return url.removeprefix(tracker.base_url)


def test_click_redirects_exactly_and_records(
    world: tuple[httpx.Client, Tracker, ContactStore],
) -> None:
    client, tracker, store = world
    contact = _contact(client, "click@example.org", tracking=True)
    target = "https://shop.example.com/sale?x=1&y=%2F#top"
    url = tracker.click_url(target, "spring", "m-1", contact, variant="B", link=2)
    reply = client.get(_path(url, tracker), headers={"user-agent": BROWSER})
    assert reply.status_code == 302
    assert reply.headers["location"] == target
    assert "set-cookie" not in reply.headers
    [event] = _events(store, contact, "click")
    assert event == {
        "campaign": "spring",
        "message": "m-1",
        "variant": "B",
        "link": 2,
        "url": target,
        "user_agent": BROWSER,
        "machine": False,
    }
    scanner = client.head(_path(url, tracker), headers={"user-agent": BROWSER})
    assert scanner.status_code == 302
    machine = [e for e in _events(store, contact, "click") if e["machine"]]
    assert [(e["machine_reason"], e["method"]) for e in machine] == [("head_request", "HEAD")]


def test_pixel_serves_gif_and_flags_apple_mpp(
    world: tuple[httpx.Client, Tracker, ContactStore],
) -> None:
    client, tracker, store = world
    contact = _contact(client, "pixel@example.org", tracking=True)
    url = tracker.pixel_url("spring", "m-2", contact, variant="A")
    assert url.endswith(".gif")
    reply = client.get(_path(url, tracker), headers={"user-agent": APPLE_MPP})
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "image/gif"
    assert reply.content == PIXEL_GIF
    assert reply.content[:6] == b"GIF89a" and reply.content[6:10] == b"\x01\x00\x01\x00"
    assert "no-store" in reply.headers["cache-control"]
    without_suffix = client.get(_path(url, tracker).removesuffix(".gif"))
    assert without_suffix.status_code == 200 and without_suffix.content == PIXEL_GIF
    events = _events(store, contact, "open")
    apple = [e for e in events if e["user_agent"] == APPLE_MPP]
    assert len(apple) == 1
    assert apple[0]["machine"] is True and apple[0]["machine_reason"] == "apple_mpp"
    assert apple[0]["proxy"] == "apple" and apple[0]["variant"] == "A"


def test_no_tracking_consent_still_redirects_but_records_nothing(
    world: tuple[httpx.Client, Tracker, ContactStore],
) -> None:
    client, tracker, store = world
    contact = _contact(client, "private@example.org", tracking=False)
    click = tracker.click_url("https://example.net/", "c", "m", contact)
    reply = client.get(_path(click, tracker), headers={"user-agent": BROWSER})
    assert reply.status_code == 302 and reply.headers["location"] == "https://example.net/"
    pixel = client.get(_path(tracker.pixel_url("c", "m", contact), tracker))
    assert pixel.status_code == 200 and pixel.content == PIXEL_GIF
    assert _events(store, contact, "click") == [] and _events(store, contact, "open") == []


def test_one_click_unsubscribe_withdraws_consent_once(
    world: tuple[httpx.Client, Tracker, ContactStore],
) -> None:
    client, tracker, store = world
    contact = _contact(client, "leaver@example.org", tracking=None)
    assert store.has_consent(contact, "marketing", "email")
    path = _path(tracker.unsubscribe_url("spring", "m-3", contact), tracker)
    page = client.get(path)
    assert page.status_code == 200 and '<form method="post">' in page.text
    assert store.has_consent(contact, "marketing", "email"), "GET must not unsubscribe"
    headers = {"content-type": "application/x-www-form-urlencoded"}
    for _ in range(2):
        reply = client.post(path, content=b"List-Unsubscribe=One-Click", headers=headers)
        assert reply.status_code == 200 and "Unsubscribed" in reply.text
    assert _events(store, contact, "unsubscribe") == [
        {"campaign": "spring", "message": "m-3", "variant": "", "method": "one-click"}
    ]
    assert not store.has_consent(contact, "marketing", "email")
    standing = store.consent(contact, "marketing", "email")
    assert standing is not None and standing.source.startswith("unsubscribe event")


@pytest.mark.parametrize("prefix", ["/t/c/", "/t/o/", "/t/u/"])
def test_bad_tokens_get_400_and_no_redirect(
    world: tuple[httpx.Client, Tracker, ContactStore], prefix: str
) -> None:
    client, tracker, _ = world
    contact = _contact(client, "victim@example.org", tracking=True)
    good = tracker.click_url("https://example.com/", "c", "m", contact)
    token = good.rsplit("/", 1)[1]
    # A token signed by another key for an attacker's URL, a bit-flipped one, and garbage.
    forged = Tracker(b"z" * 32, tracker.base_url).click_url(
        "https://evil.example/", "c", "m", contact
    )
    flipped = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (forged.rsplit("/", 1)[1], flipped, "not-a-token", token + "x"):
        reply = client.get(prefix + bad)
        assert reply.status_code == 400, (prefix, bad)
        assert "location" not in reply.headers
        assert "evil.example" not in reply.text
    if prefix == "/t/u/":
        assert client.post(prefix + "junk.junk").status_code == 400
    if prefix != "/t/c/":
        # A click token is not accepted where a pixel or unsubscribe token is expected.
        assert client.get(prefix + token).status_code == 400


def test_multipart_one_click_and_plain_form_post(
    world: tuple[httpx.Client, Tracker, ContactStore],
) -> None:
    client, tracker, store = world
    multipart = _contact(client, "multi@example.org", tracking=None)
    path = _path(tracker.unsubscribe_url("c", "m", multipart), tracker)
    reply = client.post(path, files={"List-Unsubscribe": (None, "One-Click")})
    assert reply.status_code == 200
    assert [e["method"] for e in _events(store, multipart, "unsubscribe")] == ["one-click"]
    plain = _contact(client, "plain@example.org", tracking=None)
    reply = client.post(_path(tracker.unsubscribe_url("c", "m", plain), tracker))
    assert reply.status_code == 200
    assert [e["method"] for e in _events(store, plain, "unsubscribe")] == ["form"]
    assert not store.has_consent(plain, "marketing", "email")
