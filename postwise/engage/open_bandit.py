"""Reader of the Open Bandit Dataset layout (ZOZOTOWN logged bandit feedback).

A folder holds ``{random,bts}/{campaign}/*.csv[.gz]`` (the campaign folder's ``item_context.csv``
is not read): one row per (impression, position) with ``timestamp``, ``item_id`` (the arm),
``position`` (1-3), ``click``, ``propensity_score`` (the logging policy's probability of that
item at that position), ``user_feature_0..3`` (hashed categories) and
``user-item_affinity_<k>`` per item. Every problem raises
:class:`~postwise.engage.datasets.DatasetError` naming the file, the line and the column.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from postwise.engage.datasets import DatasetError, parse_number, read_text

POLICIES = ("random", "bts")
USER_FEATURES = tuple(f"user_feature_{k}" for k in range(4))
REQUIRED = ("timestamp", "item_id", "position", "click", "propensity_score", *USER_FEATURES)
AFFINITY_PREFIX = "user-item_affinity_"
POSITIONS = 3


@dataclass(frozen=True)
class BanditLog:
    """One policy's log of one campaign, rows in time order."""

    policy: str
    campaign: str
    time: NDArray[np.float64]  # Unix seconds
    item: NDArray[np.int64]  # 0..items-1
    position: NDArray[np.int64]  # 0..2 (the file's 1..3)
    click: NDArray[np.float64]  # 0/1
    pscore: NDArray[np.float64]
    user: NDArray[np.str_]  # (rows, 4) hashed categories
    affinity: NDArray[np.float64]  # (rows, items)
    files: tuple[str, ...]

    @property
    def items(self) -> int:
        return int(self.affinity.shape[1])

    def __len__(self) -> int:
        return int(self.item.shape[0])

    def take(self, rows: NDArray[np.intp] | slice) -> BanditLog:
        return BanditLog(
            self.policy,
            self.campaign,
            self.time[rows],
            self.item[rows],
            self.position[rows],
            self.click[rows],
            self.pscore[rows],
            self.user[rows],
            self.affinity[rows],
            self.files,
        )

    def split_by_time(self, later_share: float) -> tuple[BanditLog, BanditLog]:
        """The earliest rows and the latest ``later_share`` of rows by timestamp (the
        data set's hidden-holdout design)."""
        order = np.argsort(self.time, kind="stable")
        cut = len(self) - round(later_share * len(self))
        return self.take(order[:cut]), self.take(order[cut:])


def _seconds(path: Path, line: int, text: str) -> float:
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise DatasetError(
            f"{path} line {line}: column 'timestamp' holds {text[:40]!r}, not an ISO timestamp"
        ) from None
    if moment.tzinfo is None:
        raise DatasetError(
            f"{path} line {line}: column 'timestamp' holds {text[:40]!r} without a UTC offset"
        )
    return moment.timestamp()


def read_log_file(path: Path, policy: str, campaign: str) -> BanditLog:
    """One campaign file of one logging policy. Raises DatasetError on any malformed value."""
    reader = csv.reader(io.StringIO(read_text(path)))
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise DatasetError(f"{path}: empty file (no header line)")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise DatasetError(f"{path}: not an open_bandit log, lacks column(s) {', '.join(missing)}")
    at = {name: header.index(name) for name in REQUIRED}
    affinity_at = sorted(
        (int(name.removeprefix(AFFINITY_PREFIX)), i)
        for i, name in enumerate(header)
        if name.startswith(AFFINITY_PREFIX) and name.removeprefix(AFFINITY_PREFIX).isdigit()
    )
    items = len(affinity_at)
    if items == 0 or [k for k, _ in affinity_at] != list(range(items)):
        raise DatasetError(
            f"{path}: expected columns {AFFINITY_PREFIX}0 .. {AFFINITY_PREFIX}<items-1>"
        )
    columns = [i for _, i in affinity_at]
    times: list[float] = []
    item: list[int] = []
    position: list[int] = []
    click: list[float] = []
    pscore: list[float] = []
    user: list[list[str]] = []
    affinity: list[list[float]] = []
    for line, row in enumerate(reader, start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DatasetError(f"{path} line {line}: {len(row)} fields, expected {len(header)}")
        times.append(_seconds(path, line, row[at["timestamp"]]))
        arm = parse_number(path, line, "item_id", row[at["item_id"]])
        if arm != int(arm) or not 0 <= arm < items:
            raise DatasetError(
                f"{path} line {line}: column 'item_id' holds {row[at['item_id']]!r}, "
                f"expected an item 0..{items - 1}"
            )
        slot = parse_number(path, line, "position", row[at["position"]])
        if slot not in (1.0, 2.0, 3.0):
            raise DatasetError(
                f"{path} line {line}: column 'position' holds {row[at['position']]!r}, "
                "expected 1, 2 or 3"
            )
        reward = parse_number(path, line, "click", row[at["click"]])
        if reward not in (0.0, 1.0):
            raise DatasetError(
                f"{path} line {line}: column 'click' holds {row[at['click']]!r}, expected 0 or 1"
            )
        probability = parse_number(path, line, "propensity_score", row[at["propensity_score"]])
        if not 0.0 < probability <= 1.0:
            raise DatasetError(
                f"{path} line {line}: column 'propensity_score' holds "
                f"{row[at['propensity_score']]!r}, expected a probability in (0, 1]"
            )
        item.append(int(arm))
        position.append(int(slot) - 1)
        click.append(reward)
        pscore.append(probability)
        user.append([row[at[c]].strip() for c in USER_FEATURES])
        values = []
        for k, i in enumerate(columns):
            values.append(parse_number(path, line, f"{AFFINITY_PREFIX}{k}", row[i]))
        affinity.append(values)
    if not item:
        raise DatasetError(f"{path}: no rows")
    return BanditLog(
        policy=policy,
        campaign=campaign,
        time=np.asarray(times, dtype=np.float64),
        item=np.asarray(item, dtype=np.int64),
        position=np.asarray(position, dtype=np.int64),
        click=np.asarray(click, dtype=np.float64),
        pscore=np.asarray(pscore, dtype=np.float64),
        user=np.asarray(user, dtype=np.str_).reshape(-1, len(USER_FEATURES)),
        affinity=np.asarray(affinity, dtype=np.float64).reshape(-1, items),
        files=(str(path),),
    )


def _concat(logs: list[BanditLog]) -> BanditLog:
    first = logs[0]
    if any(log.items != first.items for log in logs):
        raise DatasetError(
            f"{first.policy}/{first.campaign}: files disagree on the number of items "
            f"({sorted({log.items for log in logs})})"
        )
    joined = BanditLog(
        first.policy,
        first.campaign,
        np.concatenate([log.time for log in logs]),
        np.concatenate([log.item for log in logs]),
        np.concatenate([log.position for log in logs]),
        np.concatenate([log.click for log in logs]),
        np.concatenate([log.pscore for log in logs]),
        np.concatenate([log.user for log in logs]),
        np.concatenate([log.affinity for log in logs]),
        tuple(f for log in logs for f in log.files),
    )
    return joined.take(np.argsort(joined.time, kind="stable"))


def read_open_bandit(folder: Path) -> dict[str, dict[str, BanditLog]]:
    """Every campaign log of the folder, as ``{campaign: {policy: log}}`` (policies
    ``random`` and ``bts``; a campaign may lack one). Raises DatasetError when the folder has
    no ``random/<campaign>/`` or ``bts/<campaign>/`` log."""
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such folder; expected {{random,bts}}/<campaign>/*.csv.gz")
    campaigns: dict[str, dict[str, BanditLog]] = {}
    for policy in POLICIES:
        root = folder / policy
        if not root.is_dir():
            continue
        for campaign_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            files = sorted(
                p
                for p in campaign_dir.iterdir()
                if p.is_file()
                and p.name.endswith((".csv", ".csv.gz"))
                and not p.name.startswith("item_context")
            )
            if not files:
                continue
            logs = [read_log_file(p, policy, campaign_dir.name) for p in files]
            campaigns.setdefault(campaign_dir.name, {})[policy] = _concat(logs)
    if not campaigns:
        raise DatasetError(
            f"{folder}: no open_bandit logs; expected random/<campaign>/*.csv.gz and "
            "bts/<campaign>/*.csv.gz (campaigns all, men, women)"
        )
    return campaigns
