"""Durability of outbound delivery: ``postwise serve`` is SIGKILLed while it delivers, then
started again, ``--kills`` times; afterwards every queued message must have reached the sinks
(or bounced) exactly once. Counts losses and duplicates per Message-ID (the run itself is
:func:`postwise.testing.durability.run_durability`).

    uv run python benchmarks/outbound_durability.py                  # 5,000 messages, 3 kills
    uv run python benchmarks/outbound_durability.py --messages 500 --kills 1 --json out.json
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from postwise.testing.durability import run_durability


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--kills", type=int, default=3)
    parser.add_argument("--sinks", type=int, default=2)
    parser.add_argument("--concurrency", type=int, default=10, help="connections per domain")
    parser.add_argument("--timeout", type=float, default=600.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    result = {
        "command": "uv run python benchmarks/outbound_durability.py " + shlex.join(sys.argv[1:]),
        **run_durability(
            args.messages,
            args.kills,
            sinks=args.sinks,
            concurrency=args.concurrency,
            timeout=args.timeout,
            seed=args.seed,
        ),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    sys.exit(0 if result["lost"] == 0 and result["still_queued"] == 0 else 1)


if __name__ == "__main__":
    main()
