"""Rendering throughput: personalised messages per second on one core, and peak memory.

Renders N messages (default 100,000) of ``examples/templates/welcome.toml`` for synthetic
contacts (names, cities, segments, scores, so every block variant is used) into the bytes of a
complete ``EmailMessage`` (Jinja render, CSS inlining, text part, MIME with RFC 8058 headers).
Rendering only: no queueing, signing or delivery. One process, so the figure is per core.

    uv run python benchmarks/render_throughput.py --count 20000
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import time
from pathlib import Path

from postwise.content.rendering import build_message, message_bytes
from postwise.content.templates import contact_context, load_template, render

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "templates" / "welcome.toml"
_NAMES = ["Ada", "Zoë", "Li", "Omar", "Søren", "María", "Kwame", "Yuki", None]
_CITIES = ["Paris", "Lyon", "Berlin", "Kraków", "Lagos", None]


def synthetic_contact(rng: random.Random, index: int) -> tuple[dict[str, object], str]:
    attributes: dict[str, object] = {}
    name = rng.choice(_NAMES)
    if name:
        attributes["first_name"] = name
    city = rng.choice(_CITIES)
    if city:
        attributes["city"] = city
    attributes["segments"] = ["vip"] if rng.random() < 0.1 else []
    attributes["scores"] = {"propensity:online_retail": round(rng.random(), 3)}
    return attributes, f"contact{index}@example.com"


def run(count: int, seed: int) -> dict[str, object]:
    template = load_template(EXAMPLE)  # compiled once
    rng = random.Random(seed)
    contacts = [synthetic_contact(rng, index) for index in range(min(count, 10_000))]
    total_bytes = 0
    started = time.perf_counter()
    for index in range(count):
        attributes, address = contacts[index % len(contacts)]
        unsubscribe = f"https://mail.postwise.example/u/{index:08d}"
        rendered = render(
            template, contact_context(attributes, extra={"unsubscribe_url": unsubscribe})
        )
        message = build_message(
            rendered,
            None,
            address,
            unsubscribe_url=unsubscribe,
            unsubscribe_mailto="unsubscribe@mail.postwise.example",
        )
        total_bytes += len(message_bytes(message))
    elapsed = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return {
        "messages": count,
        "seconds": round(elapsed, 3),
        "messages_per_second_per_core": round(count / elapsed, 1),
        "mean_message_bytes": round(total_bytes / count),
        "peak_rss_mib": round(peak_kib / 1024, 1),
        "python": sys.version.split()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000, help="messages to render")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(run(args.count, args.seed)))


if __name__ == "__main__":
    main()
