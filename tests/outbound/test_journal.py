"""The outcome journal: outcomes written before the batch commit are replayed after a crash,
for the recipients still claimed, and only for them."""

from __future__ import annotations

import os
from pathlib import Path

from postwise.core.db import open_database
from postwise.outbound.journal import OutcomeJournal
from postwise.outbound.queue import OutboundQueue, Prepared, RecipientResult


def _queue(tmp_path: Path) -> OutboundQueue:
    engine = open_database(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    return OutboundQueue(engine, tmp_path / "outbound")


def _submit(queue: OutboundQueue, recipients: tuple[str, ...]) -> None:
    queue.submit(
        Prepared(
            mail_from="a@sender.test",
            recipients=recipients,
            raw=b"From: a@sender.test\r\nSubject: j\r\n\r\nbody\r\n",
            sending_domain="sender.test",
            subject="j",
            header_message_id="<j@sender.test>",
            source="api",
            submitted_by="tests",
        )
    )


def test_segments_rotate_and_leftovers_survive_a_new_process(tmp_path: Path) -> None:
    folder = tmp_path / "journal"
    journal = OutcomeJournal(folder)
    journal.append(RecipientResult(1, "delivered", "250 ok"), {"recipient": "x@d.test"})
    closed = journal.rotate()
    journal.append(RecipientResult(2, "deferred", "451 later", next_attempt_at=5.0), {})
    journal.committed(closed)  # segment 1 reached the database
    # The process dies with segment 2 unflushed to the database; a torn line follows it.
    with open(journal.segments()[-1], "ab") as segment:
        segment.write(b'{"result": {"row_id": 3, "outco')
    os.close(journal._fd)
    again = OutcomeJournal(folder)
    leftovers = again.leftovers()
    assert [(r.row_id, r.outcome, r.next_attempt_at) for r, _ in leftovers] == [
        (2, "deferred", 5.0)
    ]
    again.forget_leftovers()
    assert again.leftovers() == [] and len(again.segments()) == 1


def test_replay_records_only_outcomes_of_still_claimed_recipients(tmp_path: Path) -> None:
    queue = _queue(tmp_path)
    _submit(queue, ("x@d.test", "y@d.test"))
    [job] = queue.claim("dead-worker", 10)
    (x_row, _), (y_row, _) = job.recipients
    # y's outcome was committed before the kill; x's was only journaled.
    queue.record([RecipientResult(y_row, "delivered", "250 ok")])
    assert queue.claimed([x_row, y_row]) == {x_row}

    from postwise.core.settings import Settings
    from postwise.outbound.delivery import DeliveryWorker
    from postwise.outbound.shaping import load_shaping

    journal = OutcomeJournal(tmp_path / "journal")
    journal.append(RecipientResult(x_row, "delivered", "250 ok", mx="mx.d.test"), {})
    journal.append(RecipientResult(y_row, "bounced", "550 no"), {})  # stale: must not apply
    os.close(journal._fd)
    settings = Settings(data_dir=tmp_path / "data")
    worker = DeliveryWorker(
        settings,
        queue,
        load_shaping(None),
        resolver=None,  # type: ignore[arg-type]  # replay needs no DNS
        journal=OutcomeJournal(tmp_path / "journal"),
    )
    assert worker._replay_journal() == 2
    states = {r["recipient"]: r["state"] for r in queue.show(job.message_id)["recipients"]}
    assert states == {"x@d.test": "delivered", "y@d.test": "delivered"}
    assert queue.claimed([x_row, y_row]) == set()
