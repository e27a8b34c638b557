"""End-to-end delivery: submission -> queue -> MX over a real DNS server -> real SMTP sinks."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from postwise.core.db import EventRecord
from postwise.outbound.submission import SubmissionError
from tests.outbound.delivery_harness import OutboundWorld, message


async def test_accepted_mail_is_delivered_once_to_an_equal_preference_mx(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path) as world:
        accepted = world.submit(["alice@mail.test", "bob@mail.test"])
        shown = await world.settled(accepted.enqueued.message_id)
        assert {r["state"] for r in shown["recipients"]} == {"delivered"}
        assert all(r["last_reply"].startswith("250") for r in shown["recipients"])
        assert {r["last_mx"] for r in shown["recipients"]} <= {"mx1.mail.test", "mx2.mail.test"}
        # The figures behind the MX choice are kept with each recipient for `queue show`.
        detail = shown["recipients"][0]["last_detail"]
        assert detail["provider"] == "provider:testmail" and detail["pool"] == "default"
        order = detail["mx_order"]
        assert {c["host"] for c in order} == {"mx1.mail.test", "mx2.mail.test"}
        assert all(c["preference"] == 10 and 0.0 <= c["sampled_success"] <= 1.0 for c in order)
        sunk = [m for ip in ("127.0.0.2", "127.0.0.3") for m in world.sinks[ip].messages]
        assert len(sunk) == 1  # one transaction, two recipients
        assert sorted(sunk[0].rcpt_to) == ["alice@mail.test", "bob@mail.test"]
        assert sunk[0].mail_from == "owner@corp.test"
        assert b"Received: from tests by out.postwise.test" in sunk[0].data
        with world.engine.connect() as connection:
            types = list(connection.execute(select(EventRecord.type)).scalars())
        assert types.count("delivery") == 2 and "submission" in types


async def test_unknown_user_bounces_hard_is_suppressed_and_the_sender_gets_a_dsn(
    tmp_path: Path,
) -> None:
    async with OutboundWorld(tmp_path) as world:
        accepted = world.submit(["unknown@mail.test"])
        shown = await world.settled(accepted.enqueued.message_id)
        recipient = shown["recipients"][0]
        assert recipient["state"] == "bounced"
        assert recipient["status"] == "5.1.1"
        assert recipient["reason"] == "userunknown" and recipient["hard"] is True
        assert "unknown@mail.test" in world.suppressions.find(["Unknown@mail.test"])
        # The DSN goes back to owner@corp.test, through corp.test's MX, from the null sender.
        corp = world.sinks["127.0.0.4"]
        await world.until(lambda: corp.count() == 1)
        dsn = corp.messages[0]
        assert dsn.mail_from in ("", "<>") and dsn.rcpt_to == ("owner@corp.test",)
        assert (
            b"multipart/report" in dsn.data
            and b"Final-Recipient: rfc822; unknown@mail.test" in dsn.data
        )
        with pytest.raises(SubmissionError, match="suppression list"):
            world.submit(["unknown@mail.test"])


async def test_flaky_recipient_is_deferred_then_delivered(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path) as world:
        accepted = world.submit(["flaky2@corp.test"])
        shown = await world.settled(accepted.enqueued.message_id)
        recipient = shown["recipients"][0]
        assert recipient["state"] == "delivered" and recipient["attempts"] == 3
        deferrals = [r for r, _ in world.results if r.outcome == "deferred"]
        assert len(deferrals) == 2 and all(r.reply.startswith("451") for r in deferrals)


async def test_throttle_and_dropped_connections_defer_without_loss(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path, queue_lifetime_hours=0.0005) as world:  # 1.8 s
        throttled = world.submit(["throttle@corp.test"])
        dropped = world.submit(["drop@corp.test"])
        for accepted in (throttled, dropped):
            shown = await world.settled(accepted.enqueued.message_id)
            recipient = shown["recipients"][0]
            # Retried until the queue lifetime ran out, then bounced as expired (soft).
            assert recipient["state"] == "bounced" and recipient["reason"] == "expired"
            assert recipient["attempts"] >= 2 and recipient["hard"] is False
        replies = {r.reply[:3] for r, _ in world.results if r.outcome == "deferred"}
        assert "421" in replies and "451" in replies
        # The sender hears of both (the DSNs go to corp.test, where .4 accepts them).
        await world.until(lambda: world.sinks["127.0.0.4"].count() == 2)
        assert all(m.mail_from in ("", "<>") for m in world.sinks["127.0.0.4"].messages)


async def test_dns_verdicts_bounce_or_fall_back_as_rfc_5321_says(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path) as world:
        nullmx = world.submit(["a@nullmx.test"])
        missing = world.submit(["a@nowhere.test"])
        bare = world.submit(["a@bare.test"])
        assert (await world.settled(nullmx.enqueued.message_id))["recipients"][0]["status"] == (
            "5.1.10"
        )
        gone = (await world.settled(missing.enqueued.message_id))["recipients"][0]
        assert gone["status"] == "5.1.2" and gone["state"] == "bounced"
        implicit = (await world.settled(bare.enqueued.message_id))["recipients"][0]
        assert implicit["state"] == "delivered" and implicit["last_mx"] == "bare.test"


async def test_backup_mx_takes_over_when_the_primary_is_down(tmp_path: Path) -> None:
    ips = ("127.0.0.2", "127.0.0.3", "127.0.0.5")  # nothing listens on .4 (mx.corp.test)
    async with OutboundWorld(tmp_path, sink_ips=ips) as world:
        accepted = world.submit(["x@corp.test"])
        shown = await world.settled(accepted.enqueued.message_id)
        assert shown["recipients"][0]["state"] == "delivered"
        assert shown["recipients"][0]["last_mx"] == "backup.corp.test"
        assert world.sinks["127.0.0.5"].count() == 1


async def test_idempotency_key_makes_a_retried_submission_a_no_op(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path) as world:
        first = world.submit(["a@mail.test"], raw=message("same"), idempotency_key="order-42")
        again = world.submit(["a@mail.test"], raw=message("same"), idempotency_key="order-42")
        assert again.enqueued.duplicate and again.enqueued.message_id == first.enqueued.message_id
        await world.settled(first.enqueued.message_id)
        await world.until(lambda: world.received() >= 1)
        assert world.received() == 1


async def test_shaping_limits_connections_and_messages_per_connection(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path) as world:
        ids = [world.submit([f"user{i}@mail.test"]).enqueued.message_id for i in range(20)]
        for message_id in ids:
            await world.settled(message_id)
        sinks = [world.sinks["127.0.0.2"], world.sinks["127.0.0.3"]]
        assert sum(s.count() for s in sinks) == 20
        per_connection = [n for s in sinks for n in s.messages_per_connection()]
        assert max(per_connection) <= 3  # testmail: max_messages_per_connection = 3
        assert max(s.max_concurrent for s in sinks) <= 2  # testmail: max_connections = 2


async def test_rate_limit_replies_fire_the_automation_and_suspend_the_destination(
    tmp_path: Path,
) -> None:
    async with OutboundWorld(tmp_path, record_actions=True) as world:
        for sink in (world.sinks["127.0.0.2"], world.sinks["127.0.0.3"]):
            sink.set_mode(rcpt_reply="421 4.7.28 Our system has detected an unusual rate")
        ids = [world.submit([f"u{i}@mail.test"]).enqueued.message_id for i in range(6)]
        await world.until(
            lambda: any(a.rule == "testmail-rate-limited" for a in world.automation._active)
        )
        action = next(a for a in world.automation._active if a.rule == "testmail-rate-limited")
        assert action.action == "suspend_destination" and action.count == 3
        assert action.budget_key == "provider:testmail" and "4.7.28" in action.reason
        # Held mail waits for the suspension to end, without counting attempts.
        await world.until(lambda: any(not r.counted for r, _ in world.results), timeout=10)
        postponed = [r for r, _ in world.results if not r.counted]
        assert all(
            r.next_attempt_at and r.next_attempt_at > action.started_at.timestamp() + 3000
            for r in postponed
        )
        with world.engine.connect() as connection:
            fired = list(
                connection.execute(
                    select(EventRecord.payload).where(EventRecord.type == "shaping_action")
                ).scalars()
            )
        # One event, with the rule and the figures that fired it.
        assert [(f["rule"], f["action"], f["count"]) for f in fired] == [
            ("testmail-rate-limited", "suspend_destination", 3)
        ]
        # Nothing was delivered or given up on: every recipient waits in the queue.
        assert all(set(world.states(i).values()) == {"queued"} for i in ids)
        assert sum(sink.count() for sink in world.sinks.values()) == 0
