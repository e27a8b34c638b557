"""SIGKILL during delivery: `postwise serve` is killed mid-run and restarted; every queued
message still reaches the sinks, none is lost, none is left queued."""

from __future__ import annotations

from postwise.testing.durability import run_durability


def test_sigkill_mid_delivery_loses_nothing_and_finishes_the_queue() -> None:
    result = run_durability(400, 1, sinks=2, concurrency=4, timeout=120, seed=3)
    assert result["kills"][0]["delivered_when_killed"] < 400  # killed mid-run, not after
    assert result["lost"] == 0
    assert result["still_queued"] == 0 and result["bounced"] == 0
    assert result["delivered_unique"] == 400
    # Duplicates can only come from outcomes not yet committed when the process died (the
    # RFC 1047 window): at most what the writer held, far below the number delivered.
    assert result["duplicates"] < result["kills"][0]["delivered_when_killed"] / 4
