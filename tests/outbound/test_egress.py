"""Egress pools over real sockets: the delivery worker binds its connections to the pool's source
addresses (127.0.0.10 and up on loopback), and the sinks see them as the peer address."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from postwise.core.db import EgressDailyRecord
from tests.outbound.delivery_harness import SHAPING, OutboundWorld

# corp.test takes one message per connection so that every message is a fresh egress choice.
POOLS = (
    SHAPING
    + """
[domain."corp.test"]
max_connections = 4
max_messages_per_connection = 1

[[domain."corp.test".automation]]
name = "corp-busy-move"
regex = '4\\.2\\.1'
threshold = "2/h"
action = "move_pool"
to_pool = "rescue"
duration = "1h"

[warmup.tiny]
days = [2]

[pool.marketing]
addresses = [{ ip = "127.0.0.10", weight = 1, warmup = "tiny" }, { ip = "127.0.0.11", weight = 3 }]

[pool.weighted]
addresses = [{ ip = "127.0.0.12", weight = 1 }, { ip = "127.0.0.13", weight = 3 }]

[pool.warm]
addresses = [{ ip = "127.0.0.10", warmup = "tiny" }]

[pool.primary]
addresses = [{ ip = "127.0.0.12" }]

[pool.rescue]
addresses = [{ ip = "127.0.0.13" }]

[pool.empty]
addresses = []
"""
)


def peers(world: OutboundWorld, ip: str = "127.0.0.4") -> Counter[str]:
    return Counter(m.peer[0] for m in world.sinks[ip].messages)


def egress_daily(world: OutboundWorld) -> dict[str, int]:
    with world.engine.connect() as connection:
        rows = connection.execute(select(EgressDailyRecord.ip, EgressDailyRecord.sent)).all()
    return {ip: sent for ip, sent in rows}


async def test_a_pool_sends_from_its_addresses_by_weight(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path, shaping=POOLS) as world:
        ids = [world.submit([f"m{i}@corp.test"], pool="marketing") for i in range(12)]
        ids += [world.submit([f"w{i}@corp.test"], pool="weighted") for i in range(40)]
        for accepted in ids:
            shown = await world.settled(accepted.enqueued.message_id)
            assert shown["recipients"][0]["state"] == "delivered"
        seen = peers(world)
        marketing = seen["127.0.0.10"] + seen["127.0.0.11"]
        weighted = seen["127.0.0.12"] + seen["127.0.0.13"]
        assert (marketing, weighted) == (12, 40) and sum(seen.values()) == 52
        # .10 is warming up (2 a day); .11 takes the rest.
        assert 1 <= seen["127.0.0.10"] <= 2
        # weight 3 against 1: .13 carries about three quarters.
        assert 0.55 <= seen["127.0.0.13"] / weighted <= 0.92, seen
        contexts = {c["ip"] for r, c in world.results if r.outcome == "delivered"}
        assert contexts == {"127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13"}
        await world.stop_worker()  # flushes the day's counters
        assert egress_daily(world) == {
            ip: seen[ip] for ip in ("127.0.0.10", "127.0.0.11", "127.0.0.12", "127.0.0.13")
        }


async def test_an_exhausted_warm_up_postpones_to_the_next_utc_midnight(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path, shaping=POOLS) as world:
        # mail.test carries up to three messages per connection: the cap must hold anyway.
        ids = [world.submit([f"u{i}@mail.test"], pool="warm").enqueued.message_id for i in range(3)]
        expected = ["delivered", "delivered", "queued"]

        def outcomes() -> list[str]:
            return sorted(s for i in ids for s in world.states(i).values())

        await world.until(lambda: any(not r.counted for r, _ in world.results))
        await world.until(lambda: outcomes() == expected)
        await world.until(lambda: sum(world.sinks[ip].count() for ip in SINK_PAIR) == 2)
        states = [world.states(i) for i in ids]
        waiting = next(
            i for i, state in zip(ids, states, strict=True) if "queued" in state.values()
        )
        recipient = world.queue.show(waiting)["recipients"][0]
        assert recipient["attempts"] == 0  # a postponement is no attempt
        today = datetime.now(UTC).date()
        midnight = datetime(today.year, today.month, today.day, tzinfo=UTC).timestamp() + 86400
        assert recipient["next_attempt_at"] == midnight
        postponed = [r for r, _ in world.results if not r.counted]
        assert all(r.next_attempt_at == midnight for r in postponed)
        assert "warm-up" in postponed[0].reply
        peers_seen = {m.peer[0] for ip in SINK_PAIR for m in world.sinks[ip].messages}
        assert peers_seen == {"127.0.0.10"}
        await world.stop_worker()
        assert egress_daily(world) == {"127.0.0.10": 2}
        assert world.worker.egress.snapshot(datetime.now(UTC).timestamp())["127.0.0.10"] == {
            "sent_today": 2,
            "allowance_left": 0,
        }


SINK_PAIR = ("127.0.0.2", "127.0.0.3")


async def test_move_pool_automation_reroutes_after_its_threshold(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path, shaping=POOLS) as world:
        first = world.submit(["before@corp.test"], pool="primary")
        await world.settled(first.enqueued.message_id)
        assert peers(world) == {"127.0.0.12": 1}
        world.submit(["defer1@corp.test"], pool="primary")
        world.submit(["defer2@corp.test"], pool="primary")
        await world.until(lambda: any(a.rule == "corp-busy-move" for a in world.automation._active))
        action = next(a for a in world.automation._active if a.rule == "corp-busy-move")
        assert action.action == "move_pool" and action.to_pool == "rescue"
        assert action.budget_key == "domain:corp.test" and action.pool == "primary"
        assert action.count == 2 and "4.2.1" in action.reason
        after = world.submit(["after@corp.test"], pool="primary")
        shown = await world.settled(after.enqueued.message_id)
        assert shown["recipients"][0]["state"] == "delivered"
        assert peers(world) == {"127.0.0.12": 1, "127.0.0.13": 1}
        last = [c for r, c in world.results if r.outcome == "delivered"][-1]
        assert last["pool"] == "rescue" and last["ip"] == "127.0.0.13"


async def test_a_pool_without_addresses_sends_from_the_default_source(tmp_path: Path) -> None:
    async with OutboundWorld(tmp_path, shaping=POOLS) as world:
        ids = [
            world.submit(["e@corp.test"], pool="empty"),
            world.submit(["u@corp.test"], pool="undeclared"),
            world.submit(["d@corp.test"]),
        ]
        for accepted in ids:
            assert (await world.settled(accepted.enqueued.message_id))["recipients"][0][
                "state"
            ] == "delivered"
        assert peers(world) == {"127.0.0.1": 3}  # the kernel's choice on loopback
        assert {c["ip"] for r, c in world.results} == {None}
        await world.stop_worker()
        assert egress_daily(world) == {}
