"""Single-core scan throughput of Postwise on the shared corpus (sender view), no network.

Measures the Python API (`Scanner.scan`) on every message of the corpus, and the CLI end to end
(`postwise scan --json --workers 1` over a folder of the same messages, process start and model
load included). Prints a Markdown table; `--json` for machines.

    uv run python benchmarks/scan_speed.py [--data ../shared/data/mail] [--limit N]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from postwise.inbound.corpus import read_corpus, sender_view
from postwise.inbound.scanner import Scanner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/mail"))
    parser.add_argument("--limit", type=int, default=0, help="every k-th message to keep N")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    messages = [sender_view(m.raw) for m in read_corpus(args.data)]
    if args.limit and args.limit < len(messages):
        step = len(messages) // args.limit
        messages = messages[::step][: args.limit]
    scanner = Scanner.from_settings()
    for raw in messages[:20]:  # warm caches the way a running server has them
        scanner.scan(raw)
    cpu_start = time.process_time()
    wall_start = time.perf_counter()
    for raw in messages:
        scanner.scan(raw)
    wall = time.perf_counter() - wall_start
    cpu = time.process_time() - cpu_start
    api_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    with tempfile.TemporaryDirectory() as folder:
        for index, raw in enumerate(messages):
            (Path(folder) / f"{index:06d}.eml").write_bytes(raw)
        cli_start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "postwise.cli", "scan", "--json", "--workers", "1", folder],
            check=False,
            stdout=subprocess.DEVNULL,
        )
        cli_wall = time.perf_counter() - cli_start
    result = {
        "messages": len(messages),
        "mean_bytes": round(sum(map(len, messages)) / len(messages)),
        "api_messages_per_second_wall": round(len(messages) / wall, 1),
        "api_messages_per_cpu_second": round(len(messages) / cpu, 1),
        "api_peak_rss_mb": round(api_rss, 1),
        "cli_messages_per_second": round(len(messages) / cli_wall, 1),
        "model_version": scanner.model_version,
    }
    if args.json:
        print(json.dumps(result))
        return
    print("| measure | value |\n|---|---:|")
    for key, value in result.items():
        print(f"| {key} | {value} |")


if __name__ == "__main__":
    main()
