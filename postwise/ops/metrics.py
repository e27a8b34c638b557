"""Prometheus metrics: counters the delivery worker increments as outcomes happen, and gauges
read from the queue and the worker's state when the metrics are scraped.

Each process has its own registry (:func:`outbound_registry`), so several servers in one test
process never share counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from postwise.outbound.delivery import DeliveryWorker
    from postwise.outbound.queue import OutboundQueue


class OutboundCounters:
    """Outcomes per destination provider (the shaping budget key) and per pool."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.results = Counter(
            "postwise_outbound_results",
            "Delivery outcomes per recipient attempt: delivered, deferred, bounced, postponed",
            ["outcome", "provider", "pool"],
            registry=registry,
        )

    def count(self, outcome: str, provider: str, pool: str) -> None:
        self.results.labels(outcome=outcome, provider=provider or "unknown", pool=pool).inc()


class _QueueCollector(Collector):
    def __init__(self, queue: OutboundQueue, worker: Callable[[], DeliveryWorker | None]) -> None:
        self.queue = queue
        self.worker = worker

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "postwise_queue_recipients",
            "Recipients in the outbound queue by state",
            labels=["state"],
        )
        for state, count in self.queue.depth().items():
            depth.add_metric([state], count)
        yield depth
        by_domain = GaugeMetricFamily(
            "postwise_queue_waiting",
            "Queued recipients per destination domain (the 50 largest)",
            labels=["domain"],
        )
        for domain, count in self.queue.queued_by_domain().most_common(50):
            by_domain.add_metric([domain], count)
        yield by_domain
        worker = self.worker()
        if worker is None:
            return
        snapshot = worker.snapshot()
        connections = GaugeMetricFamily(
            "postwise_outbound_connections", "Open SMTP connections per budget", labels=["budget"]
        )
        for budget, open_connections in snapshot["connections"].items():
            connections.add_metric([budget], open_connections)
        yield connections
        mx = GaugeMetricFamily(
            "postwise_mx_success_estimate",
            "Observed success estimate per MX host (what the MX choice uses)",
            labels=["host"],
        )
        latency = GaugeMetricFamily(
            "postwise_mx_latency_seconds", "Mean connection latency per MX host", labels=["host"]
        )
        for host, figures in snapshot["mx_hosts"].items():
            successes = float(figures.get("successes", 0.0))
            failures = float(figures.get("failures", 0.0))
            mx.add_metric([host], (successes + 1.0) / (successes + failures + 2.0))
            if figures.get("mean_latency") is not None:
                latency.add_metric([host], float(figures["mean_latency"]))
        yield mx
        yield latency
        actions = GaugeMetricFamily(
            "postwise_automation_actions",
            "Automation actions in force",
            labels=["rule", "action", "budget", "pool"],
        )
        for action in snapshot["actions"]:
            actions.add_metric(
                [action["rule"], action["action"], action["budget_key"], action["pool"]], 1
            )
        yield actions


def outbound_registry(
    queue: OutboundQueue, worker: Callable[[], DeliveryWorker | None] = lambda: None
) -> tuple[CollectorRegistry, OutboundCounters]:
    """A registry with the queue gauges, the figures of the delivery worker ``worker()``
    returns (when it returns one), and the outcome counters."""
    registry = CollectorRegistry()
    registry.register(_QueueCollector(queue, worker))
    return registry, OutboundCounters(registry)


def render(registry: CollectorRegistry) -> bytes:
    """The text exposition format."""
    return generate_latest(registry)
