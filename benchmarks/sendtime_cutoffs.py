"""How the send-time figures move with the cut-off (issue #7): the full internal protocol of
``engage eval sendtime`` (model chosen on the history before the cut-off only, next invoice
within 70 days scored) repeated at several cut-offs of the dev log. One cut-off scores a few
hundred customers and the hidden Oct-Dec holdout is one more cut-off: this is the spread to
expect. Scored windows of neighbouring cut-offs overlap (70 days, two weeks apart), so the rows
are not independent draws.

    uv run python benchmarks/sendtime_cutoffs.py [--data DIR] [--first 2011-05-07]
        [--last 2011-07-23] [--step-days 14] [--json]
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from postwise.engage.sendtime_evaluation import evaluate_sendtime

SHARED = (
    Path(__file__).resolve().parents[2] / "shared" / "data" / "personalization" / "online_retail"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--first", type=datetime.fromisoformat, default=datetime(2011, 5, 7))
    parser.add_argument("--last", type=datetime.fromisoformat, default=datetime(2011, 7, 23))
    parser.add_argument("--step-days", type=int, default=14)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    at = args.last
    while at >= args.first:
        result = evaluate_sendtime(args.data, cutoff_at=at)
        gain = result["hit_rate_gain"]["over_mode"]
        row = {
            "cutoff": result["cutoff"][:10],
            "customers": result["customers"],
            "postwise": result["hit_rate_1h"],
            "baseline_mode": result["baseline_mode"]["hit_rate_1h"],
            "baseline_global": result["baseline_global"]["hit_rate_1h"],
            "gain_over_mode_ci95": gain["ci95"],
            "log_likelihood": result["log_likelihood"],
            "log_likelihood_global": result["baseline_global"]["log_likelihood"],
            "log_likelihood_mode": result["baseline_mode"]["log_likelihood"],
            "rate_multiplier": result["params"]["rate_multiplier"],
            "rolling_postwise": result["rolling_origin"]["hit_rate_1h"],
            "rolling_mode": result["rolling_origin"]["baseline_mode"],
        }
        rows.append(row)
        if not args.json:
            low, high = gain["ci95"]
            print(
                f"{row['cutoff']}: {row['customers']:4d} customers  postwise {row['postwise']:.4f}"
                f"  own mode {row['baseline_mode']:.4f} ({low:+.4f} to {high:+.4f})"
                f"  global {row['baseline_global']:.4f}  multiplier {row['rate_multiplier']:g}"
                f"  rolling {row['rolling_postwise']:.4f} vs {row['rolling_mode']:.4f}"
                f"  log-likelihood {row['log_likelihood']:.4f} (global "
                f"{row['log_likelihood_global']:.4f}, own {row['log_likelihood_mode']:.4f})",
                flush=True,
            )
        at -= timedelta(days=args.step_days)
    weights = np.array([r["customers"] for r in rows], dtype=np.float64)

    def pooled(key: str) -> float:
        return float(np.dot([r[key] for r in rows], weights) / weights.sum())

    summary = {
        "cutoffs": len(rows),
        "postwise": pooled("postwise"),
        "baseline_mode": pooled("baseline_mode"),
        "baseline_global": pooled("baseline_global"),
        "cutoffs_above_mode": sum(r["postwise"] > r["baseline_mode"] for r in rows),
        "cutoffs_above_global": sum(r["postwise"] > r["baseline_global"] for r in rows),
        "log_likelihood": pooled("log_likelihood"),
        "log_likelihood_global": pooled("log_likelihood_global"),
        "log_likelihood_mode": pooled("log_likelihood_mode"),
        "cutoffs_likelihood_above_both": sum(
            r["log_likelihood"] > max(r["log_likelihood_global"], r["log_likelihood_mode"])
            for r in rows
        ),
        "rows": rows,
    }
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
