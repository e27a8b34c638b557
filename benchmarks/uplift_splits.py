"""How much the uplift figures move with the split (issue #6): the full protocol of
``engage eval uplift`` (model chosen by 3-fold Qini on the training rows, scored on the test
rows) repeated over several seeded 70/30 splits of the Hillstrom dev file, for one arm and
outcome. The single dev split in docs/benchmarks.md is one draw of this distribution; the hidden
holdout is another.

    uv run python benchmarks/uplift_splits.py [--data DIR] [--arm Womens] [--outcome visit]
        [--splits 10] [--json]
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np

from postwise.engage.hillstrom import BASELINE_UPLIFT_AT_30, read_hillstrom
from postwise.engage.uplift_evaluation import evaluate_uplift, split_rows

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "personalization" / "hillstrom"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--arm", default="Womens")
    parser.add_argument("--outcome", default="visit")
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    data = read_hillstrom(args.data)
    rows = []
    for split_seed in range(args.splits):
        train, test = split_rows(data, 0.3, split_seed)
        report = evaluate_uplift(train, test, arms=(args.arm,), outcomes=(args.outcome,))
        cell = report["arms"][args.arm][args.outcome]
        rows.append((split_seed, cell["model"], cell["uplift_at_30"], cell["qini"], cell["ate"]))
        if not args.json:
            print(
                f"split {split_seed}: {cell['model']:28s} uplift@30 {cell['uplift_at_30']:.4f}"
                f"  qini {cell['qini']:.5f}  ate {cell['ate']:.4f}",
                flush=True,
            )
    uplift = np.array([row[2] for row in rows])
    summary = {
        "arm": args.arm,
        "outcome": args.outcome,
        "splits": args.splits,
        "uplift_at_30_mean": float(uplift.mean()),
        "uplift_at_30_min": float(uplift.min()),
        "uplift_at_30_max": float(uplift.max()),
        "splits_above_baseline": int((uplift > BASELINE_UPLIFT_AT_30).sum()),
        "qini_mean": float(np.mean([row[3] for row in rows])),
        "ate_mean": float(np.mean([row[4] for row in rows])),
        "models": dict(Counter(row[1] for row in rows)),
    }
    print(json.dumps(summary) if args.json else json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
