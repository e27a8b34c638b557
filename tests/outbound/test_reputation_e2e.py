"""Reputation end to end: hard bounces from a real provider sink, through the real delivery
worker, cross the shipped hard-bounce rule (with an operator file lowering its volume floor);
the actions it imposes are recorded as events and hold the sending domain's mail."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from postwise.core.db import EventRecord
from postwise.outbound.reputation import load_reputation
from tests.outbound.delivery_harness import OutboundWorld

# Only the volume floor changes: the rate (5%), the window (15m) and the responses are shipped.
OPERATOR_REPUTATION = """
[rule.hard-bounce-rate]
min_volume = 10
min_events = 5
"""
RULE = "reputation:hard-bounce-rate"


def other_domain_message() -> bytes:
    return (
        b"From: Someone <someone@bare.test>\r\nTo: ok@mail.test\r\nSubject: unrelated\r\n"
        b"\r\nNot from corp.test.\r\n"
    )


async def test_hard_bounces_cross_the_shipped_rule_and_hold_the_sending_domain(
    tmp_path: Path,
) -> None:
    policy_file = tmp_path / "reputation.toml"
    policy_file.write_text(OPERATOR_REPUTATION)
    shipped = load_reputation(None).rules["hard-bounce-rate"]
    assert (shipped.min_volume, shipped.rate) == (200, 0.05)
    async with OutboundWorld(
        tmp_path, reputation_policy_path=policy_file, record_actions=True
    ) as world:
        rule = world.reputation.policy.rules["hard-bounce-rate"]
        assert (rule.min_volume, rule.min_events, rule.rate) == (10, 5, 0.05)

        # Nine hard bounces: below the provider's and the sending domain's volume floor. (The
        # pool may fire already: the DSN delivered to corp.test adds to its volume.)
        first = world.submit([f"unknown{i}@mail.test" for i in range(9)])
        await world.settled(first.enqueued.message_id)
        early = {a.budget_key for a in world.automation._active if a.rule == RULE}
        assert early <= {"*"}
        # The tenth reaches min_volume at 100% hard bounces.
        tenth = world.submit(["unknown9@mail.test"])
        shown = await world.settled(tenth.enqueued.message_id)
        assert shown["recipients"][0]["reason"] == "userunknown"
        fired = {a.budget_key: a for a in world.automation._active if a.rule == RULE}
        assert {"provider:testmail", "sending:corp.test"} <= set(fired)

        provider = fired["provider:testmail"]
        assert provider.action == "slow_down" and provider.factor == 0.5
        assert provider.count == 10
        assert "hard bounce rate 100.000%" in provider.reason
        assert "(10 hard bounces / 10 delivered or bounced over 15m)" in provider.reason
        assert "at provider:testmail above the limit 5.000%" in provider.reason

        sending = fired["sending:corp.test"]
        assert sending.action == "suspend_destination" and sending.pool == "*"
        assert (sending.expires_at - sending.started_at).total_seconds() == 2 * 3600
        assert "at sending:corp.test" in sending.reason

        # Every imposed action is a shaping_action event (once).
        with world.engine.connect() as connection:
            events = list(
                connection.execute(
                    select(EventRecord.id, EventRecord.payload).where(
                        EventRecord.type == "shaping_action"
                    )
                )
            )
        recorded = {p["budget_key"]: p for _, p in events if p["rule"] == RULE}
        assert set(recorded) == set(fired)
        assert recorded["provider:testmail"]["reason"] == provider.reason
        assert recorded["provider:testmail"]["count"] == 10
        assert len({event_id for event_id, _ in events}) == len(events)

        # While the suspension holds, corp.test's mail waits without an attempt...
        delivered_before = world.received()
        held = world.submit(["ok@mail.test"])
        await world.until(
            lambda: any(
                not r.counted and c["message_id"] == held.enqueued.message_id
                for r, c in world.results
            )
        )
        postponed = next(
            r
            for r, c in world.results
            if not r.counted and c["message_id"] == held.enqueued.message_id
        )
        assert postponed.next_attempt_at == sending.expires_at.timestamp()
        assert "sending domain suspended by reputation" in postponed.reply

        def held_row() -> dict[str, object]:
            row: dict[str, object] = world.queue.show(held.enqueued.message_id)["recipients"][0]
            return row

        await world.until(lambda: held_row()["next_attempt_at"] == sending.expires_at.timestamp())
        assert held_row()["state"] == "queued" and held_row()["attempts"] == 0
        assert world.reputation.suspended_sending_domains(datetime.now(UTC)) == {
            "corp.test": sending.expires_at
        }
        # ...and other sending domains' mail still goes out.
        other = world.submit(["ok2@mail.test"], raw=other_domain_message(), sender="s@bare.test")
        assert (await world.settled(other.enqueued.message_id))["recipients"][0][
            "state"
        ] == "delivered"
        await world.until(lambda: world.received() >= delivered_before + 1)
        sunk = [m for ip in ("127.0.0.2", "127.0.0.3") for m in world.sinks[ip].messages]
        assert all("ok@mail.test" not in m.rcpt_to for m in sunk)
