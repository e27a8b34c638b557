"""Tracking tokens, link rewriting, consent and machine detection, without the HTTP layer."""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from postwise.core.db import EngageEventRecord, open_database
from postwise.engage.contacts import ContactStore, pseudonymise
from postwise.engage.ingest import import_records
from postwise.engage.tracking import (
    MachineDetection,
    Tracker,
    TrackingClaims,
    TrackingConsentRule,
    TrackingError,
    TrackingRecorder,
    tracked_contacts,
    tracking_allowed,
)

KEY = b"k" * 32
BASE = "https://t.example.com"
CONTACT = pseudonymise("ann@example.org", KEY)
TRACKER = Tracker(KEY, BASE, clock=lambda: 1_700_000_000.0)
HREF = re.compile(r"href=(?:\"([^\"]*)\"|'([^']*)'|([^\s>'\"]+))")


@pytest.fixture
def store(tmp_path: Path) -> ContactStore:
    return ContactStore(open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}"), KEY)


def _contact(store: ContactStore, address: str, tracking: bool | None) -> str:
    consent = [{"purpose": "marketing", "channel": "email", "granted": True}]
    if tracking is not None:
        consent.append({"purpose": "tracking", "channel": "email", "granted": tracking})
    report, _ = import_records(store, "contacts", [{"email": address, "consent": consent}])
    assert report.failed == 0
    return store.contact_id(address)


def _token(url: str) -> str:
    return url.rsplit("/", 1)[1].removesuffix(".gif")


def test_click_token_round_trip_keeps_url_exactly() -> None:
    target = "https://shop.example.com/p?a=1&b=%20x#frag"
    url = TRACKER.click_url(target, "spring", "m-1", CONTACT, variant="B", link=3)
    assert url.startswith(BASE + "/t/c/")
    claims = TRACKER.verify(_token(url), "click")
    assert claims == TrackingClaims(
        "click", "spring", "m-1", "B", CONTACT, 1_700_000_000, 3, target
    )


def test_kinds_do_not_stand_in_for_each_other() -> None:
    pixel = _token(TRACKER.pixel_url("c", "m", CONTACT))
    unsubscribe = _token(TRACKER.unsubscribe_url("c", "m", CONTACT))
    assert TRACKER.verify(pixel, "open").kind == "open"
    assert TRACKER.verify(unsubscribe).kind == "unsubscribe"
    with pytest.raises(TrackingError, match="not click"):
        TRACKER.verify(pixel, "click")
    with pytest.raises(TrackingError, match="not unsubscribe"):
        TRACKER.verify(pixel, "unsubscribe")


def test_other_key_and_contact_hash_key_are_refused() -> None:
    token = _token(TRACKER.pixel_url("c", "m", CONTACT))
    with pytest.raises(TrackingError, match="signature"):
        Tracker(b"x" * 32, BASE).verify(token)
    # The token key is derived with a purpose label: the raw engage key does not sign tokens.
    payload = token.split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    forged = base64.urlsafe_b64encode(hmac.new(KEY, raw, hashlib.sha256).digest()[:16])
    with pytest.raises(TrackingError):
        TRACKER.verify(payload + "." + forged.rstrip(b"=").decode())


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_modified_token_is_refused(data: st.DataObject) -> None:
    token = _token(TRACKER.click_url("https://example.com/x?y=1", "c", "m", CONTACT, "A", 0))
    position = data.draw(st.integers(0, len(token)), label="position")
    edit = data.draw(st.sampled_from(["replace", "insert", "delete"]), label="edit")
    alphabet = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=")
    char = data.draw(st.one_of(alphabet, st.characters()), label="char")
    if edit == "insert":
        modified = token[:position] + char + token[position:]
    elif position == len(token):
        modified = token[:-1]
    elif edit == "delete":
        modified = token[:position] + token[position + 1 :]
    else:
        modified = token[:position] + char + token[position + 1 :]
    if modified == token:
        return
    with pytest.raises(TrackingError):
        TRACKER.verify(modified)


@pytest.mark.parametrize("bad", ["", ".", "abc", "abc.", ".abc", "a.b.c", "é.é", "x" * 9000])
def test_malformed_tokens_are_refused(bad: str) -> None:
    with pytest.raises(TrackingError):
        TRACKER.verify(bad)


@pytest.mark.parametrize(
    "target",
    ["javascript:alert(1)", "//evil.example", "/relative", "https://a.example/\r\nX: y", ""],
)
def test_unsafe_targets_cannot_be_signed(target: str) -> None:
    with pytest.raises(TrackingError):
        TRACKER.click_url(target, "c", "m", CONTACT)


MESSAGE = """<html><body>
<p><a class="cta" href="https://shop.example.com/sale?x=1&amp;y=2">Sale</a>
<a href='http://blog.example.com/post'>Blog</a>
<a href=https://bare.example.com/>Bare</a>
<a title="see href=https://no.example" href="https://second.example.com/">Two</a>
<a href="mailto:help@example.com">Mail us</a>
<a href="#top">Top</a>
<a href="/relative">Relative</a>
<a href="tel:+441234">Call</a>
<a href="{unsub}">Unsubscribe</a>
<a href="https://other.example.com/unsubscribe?id=9">Their unsubscribe</a>
<a data-pw-notrack href="https://private.example.com/">Private</a>
</p></BODY></html>"""


def test_rewrite_links_tracks_http_links_and_keeps_the_rest(store: ContactStore) -> None:
    contact = _contact(store, "ann@example.org", tracking=True)
    unsubscribe = TRACKER.unsubscribe_url("c", "m", contact)
    source = MESSAGE.format(unsub=unsubscribe)
    out = TRACKER.rewrite_links(source, "c", "m", contact, "A", consent=store)
    hrefs = ["".join(groups) for groups in HREF.findall(out)]
    tracked = [h for h in hrefs if h.startswith(BASE + "/t/c/")]
    targets = [TRACKER.verify(_token(html.unescape(h)), "click") for h in tracked]
    assert [(t.link, t.url) for t in targets] == [
        (0, "https://shop.example.com/sale?x=1&y=2"),
        (1, "http://blog.example.com/post"),
        (2, "https://bare.example.com/"),
        (3, "https://second.example.com/"),
    ]
    assert {t.variant for t in targets} == {"A"}
    for kept in (
        "mailto:help@example.com",
        "#top",
        "/relative",
        "tel:+441234",
        unsubscribe,
        "https://other.example.com/unsubscribe?id=9",
        "https://private.example.com/",
    ):
        assert kept in hrefs
    assert 'title="see href=https://no.example"' in out
    assert '<a class="cta" href=' in out and "<a href='" + BASE in out
    # The pixel goes right before </BODY>, once, and is a valid open token.
    pixel = re.search(r'<img src="([^"]+)" width="1" height="1" alt=""[^>]*/></BODY>', out)
    assert pixel is not None and out.count("<img") == 1
    assert TRACKER.verify(_token(pixel.group(1)), "open").contact == contact
    # Everything outside the rewritten hrefs is byte-identical.
    strip = re.compile(r'href=(?:"[^"]*"|\'[^\']*\'|[^\s>]+)|<img[^>]*/>')
    assert strip.sub("", out) == strip.sub("", source)


def test_pixel_appended_when_there_is_no_body(store: ContactStore) -> None:
    contact = _contact(store, "ann@example.org", tracking=True)
    out = TRACKER.rewrite_links("<p>hi</p>", "c", "m", contact, consent=store)
    assert out.startswith("<p>hi</p><img src=") and out.endswith("/>")


def test_consent_rules(store: ContactStore) -> None:
    granted = _contact(store, "g@example.org", tracking=True)
    refused = _contact(store, "r@example.org", tracking=False)
    silent = _contact(store, "s@example.org", tracking=None)
    unknown = pseudonymise("nobody@example.org", KEY)
    strict = TrackingConsentRule.GRANTED
    lenient = TrackingConsentRule.NOT_REFUSED
    assert [tracking_allowed(store, c, strict) for c in (granted, refused, silent, unknown)] == [
        True,
        False,
        False,
        False,
    ]
    assert [tracking_allowed(store, c, lenient) for c in (granted, refused, silent, unknown)] == [
        True,
        False,
        True,
        False,
    ]
    source = MESSAGE.format(unsub="https://t.example.com/t/u/x")
    for contact in (refused, silent):
        assert TRACKER.rewrite_links(source, "c", "m", contact, consent=store) == source
    lenient_out = TRACKER.rewrite_links(
        source, "c", "m", silent, consent=store, consent_rule=lenient
    )
    assert "/t/c/" in lenient_out and "/t/o/" in lenient_out


def test_tracked_contacts_is_tracking_allowed_for_a_batch(store: ContactStore) -> None:
    granted = _contact(store, "g@example.org", tracking=True)
    refused = _contact(store, "r@example.org", tracking=False)
    silent = _contact(store, "s@example.org", tracking=None)
    # the latest statement stands, either way round
    withdrawn = _contact(store, "w@example.org", tracking=True)
    regranted = _contact(store, "x@example.org", tracking=False)
    later = datetime.now(UTC) + timedelta(minutes=1)
    store.record_consent(withdrawn, "tracking", "email", False, "test", recorded_at=later)
    store.record_consent(regranted, "tracking", "email", True, "test", recorded_at=later)
    batch = [granted, refused, silent, withdrawn, regranted]
    for rule in TrackingConsentRule:
        expected = {c for c in batch if tracking_allowed(store, c, rule)}
        assert tracked_contacts(store, batch, rule) == expected
    assert tracked_contacts(store, batch) == {granted, regranted}
    assert tracked_contacts(store, batch, TrackingConsentRule.NOT_REFUSED) == {
        granted,
        silent,
        regranted,
    }
    assert tracked_contacts(store, []) == set()


def test_recorder_skips_contacts_without_tracking_consent(store: ContactStore) -> None:
    refused = _contact(store, "r@example.org", tracking=False)
    token = _token(TRACKER.click_url("https://x.example/", "c", "m", refused))
    recorder = TrackingRecorder(store)
    outcome = recorder.record_click(token, TRACKER.verify(token), "Mozilla/5.0 (X11) Firefox/120")
    assert outcome.status == "not_tracked"
    with store.engine.connect() as connection:
        assert connection.execute(select(EngageEventRecord.id)).first() is None


def test_opens_near_delivery_are_machine_and_retries_dedupe(store: ContactStore) -> None:
    contact = _contact(store, "ann@example.org", tracking=True)
    delivered = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    import_records(
        store,
        "events",
        [
            {
                "event_id": "d1",
                "type": "delivered",
                "occurred_at": delivered.isoformat(),
                "contact_id": contact,
                "properties": {"campaign": "c", "message": "m"},
            }
        ],
    )
    token = _token(TRACKER.pixel_url("c", "m", contact))
    claims = TRACKER.verify(token)
    recorder = TrackingRecorder(store)
    human = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/124 Safari/537"
    early = recorder.record_open(token, claims, human, now=delivered + timedelta(seconds=1))
    assert early.machine is not None and early.machine.reason == "soon_after_delivery"
    later = delivered + timedelta(hours=2)
    first = recorder.record_open(token, claims, human, now=later)
    again = recorder.record_open(token, claims, human, now=later + timedelta(milliseconds=200))
    assert (first.status, again.status) == ("imported", "duplicate")
    assert first.machine is not None and not first.machine.machine
    with store.engine.connect() as connection:
        rows = connection.execute(
            select(EngageEventRecord.properties).where(EngageEventRecord.type == "open")
        ).all()
    flags = sorted((row[0]["machine"], row[0].get("machine_reason")) for row in rows)
    assert flags == [(False, None), (True, "soon_after_delivery")]
    assert all(row[0]["campaign"] == "c" and row[0]["user_agent"] == human for row in rows)


DETECT = MachineDetection(machine_networks=(("198.51.100.0/24", "scanner:network"),))
BROWSER = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 Version/17 Safari"


@pytest.mark.parametrize(
    ("agent", "client", "since", "reason", "proxy"),
    [
        ("Mozilla/5.0", None, None, "apple_mpp", "apple"),
        ("", None, None, "no_user_agent", None),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0",
            None,
            None,
            "gmail_prefetch",
            "gmail",
        ),
        ("Mozilla/5.0 (compatible; Barracuda Sentinel)", None, None, "scanner:barracuda", None),
        ("python-requests/2.31", None, None, "scanner:http_library", None),
        (BROWSER, "198.51.100.7", None, "scanner:network", None),
        (BROWSER, "203.0.113.5", 3.0, "soon_after_delivery", None),
        (BROWSER, "203.0.113.5", 60.0, None, None),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
            "(via ggpht.com GoogleImageProxy)",
            None,
            600.0,
            None,
            "gmail",
        ),
        (
            "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html",
            None,
            None,
            None,
            "yahoo",
        ),
    ],
)
def test_open_classification(
    agent: str, client: str | None, since: float | None, reason: str | None, proxy: str | None
) -> None:
    verdict = DETECT.classify_open(agent, client, since)
    assert (verdict.machine, verdict.reason, verdict.proxy) == (reason is not None, reason, proxy)


def test_proxy_opens_can_count_as_machine() -> None:
    strict = MachineDetection(proxy_opens_are_machine=True)
    verdict = strict.classify_open("Mozilla/5.0 (via ggpht.com GoogleImageProxy)", None, None)
    assert verdict.machine and verdict.reason == "image_proxy:gmail"


@pytest.mark.parametrize(
    ("agent", "method", "since", "reason"),
    [
        (BROWSER, "HEAD", None, "head_request"),
        ("Mozilla/5.0 (compatible; Mimecast URL Protect)", "GET", None, "scanner:mimecast"),
        ("Microsoft Office Existence Discovery", "GET", None, "scanner:office_link_probe"),
        ("Slackbot-LinkExpanding 1.0", "GET", None, "scanner:link_preview"),
        (BROWSER, "GET", 1.5, "soon_after_delivery"),
        (BROWSER, "GET", 30.0, None),
    ],
)
def test_click_classification(
    agent: str, method: str, since: float | None, reason: str | None
) -> None:
    verdict = DETECT.classify_click(agent, method, None, since)
    assert (verdict.machine, verdict.reason) == (reason is not None, reason)
