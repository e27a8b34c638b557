"""The suppression list: addresses submission refuses, because they bounced hard, complained,
or an operator said so. Keys are addresses as :func:`normalise_address` writes them.

Entries are written inside the caller's transaction when a delivery result or a complaint puts
them there (:func:`suppress_in`), so the result and the suppression are stored together.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine

from postwise.core.db import SuppressionRecord

SUPPRESSION_SOURCES = ("bounce", "complaint", "operator")


def normalise_address(address: str) -> str:
    """Addresses compare case-insensitively here: mailbox providers treat local parts that
    way, and suppressing ``Bob@x`` must also stop ``bob@x``."""
    return address.strip().strip("<>").lower()


@dataclass(frozen=True, slots=True)
class Suppression:
    address: str
    reason: str
    source: str
    detail: dict[str, Any]
    created_at: float

    def to_json(self) -> dict[str, Any]:
        return {
            "address": self.address,
            "reason": self.reason,
            "source": self.source,
            "detail": self.detail,
            "created_at": self.created_at,
        }


def suppress_in(
    connection: Connection,
    address: str,
    reason: str,
    source: str,
    detail: dict[str, Any] | None = None,
    now: float | None = None,
) -> None:
    """Add ``address`` within ``connection``'s transaction; an existing entry is kept (the
    first cause stays on record)."""
    if source not in SUPPRESSION_SOURCES:
        raise ValueError(f"suppression source must be one of {SUPPRESSION_SOURCES}, not {source!r}")
    values = {
        "address": normalise_address(address),
        "reason": reason[:64],
        "source": source,
        "detail": detail or {},
        "created_at": time.time() if now is None else now,
    }
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    connection.execute(
        insert(SuppressionRecord)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["address"])
    )


class SuppressionList:
    """The list in the database."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(
        self,
        address: str,
        reason: str,
        source: str = "operator",
        detail: dict[str, Any] | None = None,
    ) -> None:
        with self.engine.begin() as connection:
            suppress_in(connection, address, reason, source, detail)

    def remove(self, address: str) -> bool:
        """Forget ``address``; False when it was not listed."""
        with self.engine.begin() as connection:
            result = connection.execute(
                delete(SuppressionRecord).where(
                    SuppressionRecord.address == normalise_address(address)
                )
            )
        return bool(result.rowcount)

    def find(self, addresses: list[str]) -> dict[str, Suppression]:
        """The listed ones among ``addresses``, keyed by normalised address."""
        wanted = sorted({normalise_address(a) for a in addresses})
        found: dict[str, Suppression] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(wanted), 500):
                rows = connection.execute(
                    select(SuppressionRecord).where(
                        SuppressionRecord.address.in_(wanted[start : start + 500])
                    )
                )
                for row in rows:
                    found[row.address] = Suppression(
                        row.address, row.reason, row.source, row.detail, row.created_at
                    )
        return found

    def entries(self, limit: int = 100, source: str | None = None) -> list[Suppression]:
        statement = select(SuppressionRecord).order_by(SuppressionRecord.created_at.desc())
        if source:
            statement = statement.where(SuppressionRecord.source == source)
        with self.engine.connect() as connection:
            return [
                Suppression(row.address, row.reason, row.source, row.detail, row.created_at)
                for row in connection.execute(statement.limit(limit))
            ]
