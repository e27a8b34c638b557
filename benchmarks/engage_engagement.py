"""Open and click propensity on a synthetic engagement log (issue #6, item 3).

No public data set has e-mail opens and clicks, so these figures are on the seeded generator of
:mod:`postwise.testing.engagement_log` (planted signal: a latent, slowly drifting open
propensity and a habit that decays week by week). They show that the event-log path works end to
end and how the model compares with the recency-of-engagement ranking; they say nothing about a
real audience.

The log (``--weeks`` weekly campaigns to ``--contacts`` contacts) is written as the files
``postwise engage import events`` reads (CSV and gzipped JSON lines): all weeks in one folder for
the internal split, and the last two weeks apart as a test folder (cut-off = its first event).
For each target the protocols of ``postwise engage eval propensity`` run; prints a Markdown
table, ``--json`` one object.

    uv run python benchmarks/engage_engagement.py [--contacts 3000] [--weeks 26] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from postwise.engage.propensity import evaluate_folder
from postwise.testing.engagement_log import START, engagement_log, split_at, write_event_files

TEST_WEEKS = 2


def _row(result: dict[str, Any], seconds: float) -> dict[str, Any]:
    base = result["baseline"]
    return {
        "target": result["target"],
        "protocol": result["protocol"],
        "cutoff": result["cutoff"],
        "rows": result["rows"],
        "train_rows": result["train_rows"],
        "positive_rate": result["positive_rate"],
        "auc": result["auc"],
        "log_loss": result["log_loss"],
        "ece": result["ece"],
        "top_decile_lift": result["top_decile_lift"],
        "model": result["model"],
        "logistic_auc": base["logistic_regression"]["auc"],
        "logistic_log_loss": base["logistic_regression"]["log_loss"],
        "engagement_recency_auc": base["engagement_recency_only"]["auc"],
        "engagement_recency_lift": base["engagement_recency_only"]["top_decile_lift"],
        "seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--contacts", type=int, default=3000)
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--targets", default="open,click", help="comma-separated")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    events = engagement_log(args.contacts, args.weeks, args.seed)
    generated = time.perf_counter() - started
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_event_files(root / "all", events)
        train, test = split_at(events, START + timedelta(weeks=args.weeks - TEST_WEEKS))
        write_event_files(root / "train", train)
        write_event_files(root / "test", test, ("test.jsonl.gz",))
        for target in args.targets.split(","):
            for train_folder, test_folder in (
                (root / "all", None),
                (root / "train", root / "test"),
            ):
                started = time.perf_counter()
                result = evaluate_folder(train_folder, test_folder, args.seed, target)
                rows.append(_row(result, time.perf_counter() - started))
    report = {
        "data": "synthetic (postwise.testing.engagement_log)",
        "contacts": args.contacts,
        "weeks": args.weeks,
        "events": len(events),
        "seed": args.seed,
        "generate_seconds": round(generated, 1),
        "results": rows,
    }
    if args.json:
        print(json.dumps(report))
        return
    print(
        f"synthetic log: {args.contacts} contacts, {args.weeks} weeks, {len(events)} events, "
        f"seed {args.seed}\n"
    )
    print(
        "| target | protocol (cut-off) | rows scored (positive) | AUC | log loss | ECE | "
        "top-decile lift | logistic AUC | engagement-recency AUC | seconds |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['target']} | {r['protocol']} ({r['cutoff']}) | {r['rows']} "
            f"({r['positive_rate']:.1%}) | {r['auc']} | {r['log_loss']} | {r['ece']} | "
            f"{r['top_decile_lift']} | {r['logistic_auc']} | {r['engagement_recency_auc']} | "
            f"{r['seconds']} |"
        )


if __name__ == "__main__":
    main()
