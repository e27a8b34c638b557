"""A campaign end to end over real sockets: contacts imported from CSV, a campaign file with two
subject variants and a 20% holdout created and sent through the CLI, messages delivered by the
delivery worker over SMTP to aiosmtpd provider sinks on loopback (local DNS for the MX), the
delivered messages parsed from the sinks, their pixel, tracked link and one-click unsubscribe
requested over HTTP from a real uvicorn API server, purchases added, then ``campaign report
--json`` checked against exactly what happened; a re-send sends nothing twice."""

from __future__ import annotations

import email
import email.policy
import json
import os
import re
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from postwise.cli import app
from postwise.core.db import OutboundMessageRecord, OutboundRecipientRecord
from postwise.core.settings import Settings, get_settings
from postwise.engage.campaigns import CampaignMessageRecord
from postwise.engage.contacts import ContactStore
from postwise.engage.ingest import import_file, import_records
from tests.outbound.delivery_harness import OutboundWorld

ROOT = Path(__file__).resolve().parents[2]
TRACKING_ROOT = "https://t.postwise.test"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0"
APPLE_MPP = "Mozilla/5.0"
KEY = "campaign-e2e-engage-key-0123456789abcdef"
CAMPAIGN = """
id = "spring"
name = "Spring news"
template = "{template}"
sender = "Postwise News <news@corp.test>"
segment = {{ attribute = "country", eq = "UK" }}
holdout = 0.2
subjects = ["Hello {{{{ first_name | default('there') }}}}, spring is here", "Spring news"]
reward = "click"
conversion_window_days = 7
"""


@contextmanager
def _live_api(settings: Settings) -> Iterator[str]:
    """The real app on uvicorn, loopback, a free port, in a thread; yields its base URL."""
    import uvicorn

    from postwise.api.app import create_app

    application = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(application, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test API server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _cli(*args: str) -> Any:
    result = CliRunner().invoke(app, ["campaign", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout) if "--json" in args else result.stdout


def _contacts_csv(path: Path) -> dict[str, dict[str, Any]]:
    """12 consenting UK contacts (one at an address the provider does not know: a hard
    bounce; two who refused tracking), one UK contact without marketing consent, one FR."""
    people: dict[str, dict[str, Any]] = {}
    for n in range(12):
        address = "unknown1@mail.test" if n == 5 else f"reader{n}@mail.test"
        people[address] = {
            "country": "UK",
            "marketing": "yes",
            "tracking": "no" if n in (3, 8) else "yes",
        }
    people["nomail@mail.test"] = {"country": "UK", "marketing": "no", "tracking": "yes"}
    people["abroad@mail.test"] = {"country": "FR", "marketing": "yes", "tracking": "yes"}
    lines = ["email,first_name,country,segments,consent.marketing.email,consent.tracking.email"]
    for i, (address, p) in enumerate(people.items()):
        segment = "vip" if i % 2 else "new"
        lines.append(
            f"{address},Reader{i},{p['country']},{segment},{p['marketing']},{p['tracking']}"
        )
    path.write_text("\n".join(lines) + "\n")
    return people


def _parts(raw: bytes) -> tuple[str, str, str, str]:
    """(To, Subject, HTML, List-Unsubscribe) of a delivered message."""
    message = email.message_from_bytes(raw, policy=email.policy.default)
    body = message.get_body(("html",))
    assert body is not None
    html = body.get_content()
    return str(message["To"]), str(message["Subject"]), html, str(message["List-Unsubscribe"])


def _local(url: str, base: str) -> str:
    assert url.startswith(TRACKING_ROOT + "/t/"), url
    return base + url.removeprefix(TRACKING_ROOT)


async def test_campaign_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, test_model_dir: Path
) -> None:
    for name in list(os.environ):
        if name.upper().startswith("POSTWISE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    async with OutboundWorld(
        tmp_path,
        tracking_base_url=TRACKING_ROOT,
        engage_hmac_key=KEY,
        model_path=test_model_dir,
    ) as world:
        settings = world.settings
        for key, value in {
            "DATA_DIR": str(settings.data_dir),
            "ENVIRONMENT": "test",
            "ENGAGE_HMAC_KEY": KEY,
            "TRACKING_BASE_URL": TRACKING_ROOT,
            "MODEL_PATH": str(test_model_dir),
            "SMTP_HOSTNAME": "out.postwise.test",
        }.items():
            monkeypatch.setenv(f"POSTWISE_{key}", value)
        get_settings.cache_clear()
        store = ContactStore.from_settings(settings, world.engine)

        # 1. contacts from CSV, with consent
        people = _contacts_csv(tmp_path / "contacts.csv")
        imported = import_file(store, "contacts", tmp_path / "contacts.csv")
        assert imported.created == len(people) and imported.failed == 0
        ids = {address: store.contact_id(address) for address in people}

        # 2. the campaign, created and sent through the CLI
        definition = tmp_path / "spring.toml"
        definition.write_text(
            CAMPAIGN.format(template=ROOT / "examples" / "templates" / "welcome.toml")
        )
        created = _cli("create", str(definition), "--json")
        assert [v["name"] for v in created["variants"]] == ["a", "b"]
        preview = _cli("preview", "spring", "--json")
        assert preview["audience"]["members"] == 13
        assert preview["audience"]["excluded_consent"] == 1
        assert preview["audience"]["included"] == 12
        sample = preview["sample"]
        assert sample["contact"] in ids.values()
        assert sorted(sample["variants"]) == ["a", "b"]
        assert sample["variants"]["a"]["subject"].endswith(", spring is here")
        assert sample["variants"]["b"]["subject"] == "Spring news"
        assert all(v["text"].strip() for v in sample["variants"].values())
        with world.engine.connect() as connection:  # a preview records nothing
            assert connection.execute(select(func.count(CampaignMessageRecord.id))).scalar() == 0
        sent = _cli("send", "spring", "--json")
        assert sent["audience"]["included"] == 12
        assert sent["failed"] == {}
        with world.engine.connect() as connection:
            rows = {
                r.contact_id: r
                for r in connection.execute(
                    select(CampaignMessageRecord).where(
                        CampaignMessageRecord.campaign_id == "spring"
                    )
                )
            }
        treated = {c for c, r in rows.items() if r.state == "queued"}
        held = {c for c, r in rows.items() if r.state == "holdout"}
        assert len(treated) + len(held) == 12 and held  # every consenting UK contact, once
        assert sent["queued"] == len(treated) and sent["holdout"] == len(held)
        assert ids["nomail@mail.test"] not in rows and ids["abroad@mail.test"] not in rows

        # 3. real delivery over SMTP to the provider sinks
        bounce_expected = ids["unknown1@mail.test"] in treated
        world.worker.wake()

        def settled() -> bool:
            with world.engine.connect() as connection:
                waiting = connection.execute(
                    select(func.count()).where(OutboundRecipientRecord.state == "queued")
                ).scalar_one()
            return waiting == 0

        await world.until(settled, timeout=30)
        sunk = [m for sink in world.sinks.values() for m in sink.messages]
        # the sender's mailbox (corp.test) also gets the delivery status notification
        delivered = [m for m in sunk if m.rcpt_to[0] in people]
        notices = [m for m in sunk if m.rcpt_to == ("news@corp.test",)]
        assert len(notices) == int(bounce_expected)
        assert len(delivered) == len(treated) - int(bounce_expected)

        # 4. the readers act: pixels, a click, a one-click unsubscribe, over HTTP
        variant_of_subject = {"Spring news": "b"}
        expected = Counter()
        per_variant: dict[str, Counter[str]] = {"a": Counter(), "b": Counter()}
        unsubscribed: list[str] = []
        for contact in treated:
            per_variant[rows[contact].variant]["sends"] += 1
        if bounce_expected:
            per_variant[rows[ids["unknown1@mail.test"]].variant]["bounces"] += 1
        with _live_api(settings) as base, httpx.Client(timeout=10) as client:
            for index, arrived in enumerate(sorted(delivered, key=lambda m: m.rcpt_to[0])):
                to, subject, html, list_unsubscribe = _parts(arrived.data)
                variant = variant_of_subject.get(subject, "a")
                per_variant[variant]["deliveries"] += 1
                contact = ids[to]
                assert rows[contact].variant == variant
                pixels = re.findall(r'src="([^"]*/t/o/[^"]+)"', html)
                clicks = re.findall(r'href="([^"]*/t/c/[^"]+)"', html)
                if people[to]["tracking"] == "no":
                    assert pixels == [] and clicks == []  # no tracking without consent
                else:
                    assert len(pixels) == 1 and clicks
                    reply = client.get(_local(pixels[0], base), headers={"user-agent": BROWSER})
                    assert reply.status_code == 200
                    expected["opens_human"] += 1
                    per_variant[variant]["opens_human"] += 1
                    if index % 2 == 0:
                        machine = client.get(
                            _local(pixels[0], base), headers={"user-agent": APPLE_MPP}
                        )
                        assert machine.status_code == 200
                        expected["opens_machine"] += 1
                        per_variant[variant]["opens_machine"] += 1
                    if index % 3 == 0:
                        reply = client.get(_local(clicks[0], base), headers={"user-agent": BROWSER})
                        assert reply.status_code == 302
                        expected["clicks_human"] += 1
                        per_variant[variant]["clicks_human"] += 1
                if index == 1:
                    url = list_unsubscribe.strip("<>")
                    reply = client.post(
                        _local(url, base),
                        content=b"List-Unsubscribe=One-Click",
                        headers={"content-type": "application/x-www-form-urlencoded"},
                    )
                    assert reply.status_code == 200
                    unsubscribed.append(contact)
                    per_variant[variant]["unsubscribes"] += 1

        # 5. purchases: two treated buyers in the window, one after it, one held-out buyer
        buyers = sorted(treated)[:3]
        now = datetime.now(UTC)
        purchases = [
            {
                "event_id": "p1",
                "type": "purchase",
                "occurred_at": (now + timedelta(hours=1)).isoformat(),
                "contact_id": buyers[0],
                "value": 30.0,
            },
            {
                "event_id": "p2",
                "type": "purchase",
                "occurred_at": (now + timedelta(days=2)).isoformat(),
                "contact_id": buyers[1],
                "value": 12.5,
            },
            {
                "event_id": "p3",
                "type": "purchase",
                "occurred_at": (now + timedelta(days=9)).isoformat(),
                "contact_id": buyers[2],
                "value": 99.0,
            },
            {
                "event_id": "p4",
                "type": "purchase",
                "occurred_at": (now + timedelta(hours=2)).isoformat(),
                "contact_id": sorted(held)[0],
                "value": 5.0,
            },
        ]
        report_in, _ = import_records(store, "events", purchases)
        assert report_in.imported == 4
        for buyer, value in ((buyers[0], 30.0), (buyers[1], 12.5)):
            per_variant[rows[buyer].variant]["conversions"] += 1
            per_variant[rows[buyer].variant]["revenue"] += value

        # 6. the report counts exactly that
        report = _cli("report", "spring", "--json")
        totals = report["totals"]
        assert totals["sends"] == len(treated)
        assert totals["deliveries"] == len(delivered)
        assert totals["bounces"] == int(bounce_expected)
        assert totals["pending"] == 0
        assert totals["opens_human"] == expected["opens_human"]
        assert totals["opens_machine"] == expected["opens_machine"]
        assert totals["unique_opens"] == expected["opens_human"]
        assert totals["clicks_human"] == expected["clicks_human"]
        assert totals["clicks_machine"] == 0
        assert totals["unsubscribes"] == 1
        assert totals["conversions"] == 2
        assert totals["revenue"] == 42.5
        assert totals["complaints"] == 0
        assert report["contacts"] == {
            "queued": len(treated),
            "holdout": len(held),
            "global_holdout": 0,
            "failed": 0,
        }
        for name in ("a", "b"):
            got = report["variants"].get(name, {})
            for metric, value in per_variant[name].items():
                assert got.get(metric) == value, (name, metric, got)
        assert sum(v["sends"] for v in report["variants"].values()) == len(treated)
        assert sum(v["sends"] for v in report["segments"].values()) == len(treated)
        conversion = report["lift"]["conversion"]
        assert conversion["treated"]["n"] == len(treated)
        assert conversion["held_out"] == {"n": len(held), "mean": 1 / len(held)}
        assert conversion["lift"] == pytest.approx(2 / len(treated) - 1 / len(held))
        low, high = conversion["ci95"]
        assert low <= conversion["lift"] <= high
        assert report["sync"]["delivered_events"] == len(delivered)
        assert not store.has_consent(unsubscribed[0], "marketing", "email")

        # 7. a re-send queues nothing and delivers nothing twice
        with world.engine.connect() as connection:
            before = connection.execute(select(func.count(OutboundMessageRecord.id))).scalar_one()
        again = _cli("send", "spring", "--json")
        assert again["queued"] == 0
        # the unsubscriber and a hard-bounced address have left the audience
        assert again["duplicates"] == len(treated) - 1 - int(bounce_expected)
        assert again["audience"]["excluded_consent"] == 2
        assert again["audience"]["excluded_suppressed"] == int(bounce_expected)
        with world.engine.connect() as connection:
            after = connection.execute(select(func.count(OutboundMessageRecord.id))).scalar_one()
        assert after == before
        assert sum(sink.count() for sink in world.sinks.values()) == len(sunk)
        for sink in world.sinks.values():
            assert sink.duplicates() == {}
    get_settings.cache_clear()
