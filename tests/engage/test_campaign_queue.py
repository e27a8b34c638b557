"""What campaigns added to the outbound queue, on a real SQLite queue and spool: a not-before
time keeps a message from delivery until then, and a batch submission is as durable and as
idempotent as one at a time, with refused items answered one by one."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from postwise.core.db import open_database
from postwise.core.settings import Settings
from postwise.outbound.queue import OutboundQueue
from postwise.outbound.submission import Accepted, Submission, SubmissionError, Submitter
from postwise.outbound.suppression import SuppressionList

NOW = 1_800_000_000.0


def _message(n: int) -> bytes:
    return (
        f"From: News <news@shop.example>\r\nTo: r{n}@mail.example\r\nSubject: n{n}\r\n"
        f"Message-ID: <{n}@shop.example>\r\n\r\nHello {n}.\r\n"
    ).encode()


@pytest.fixture
def submitter(tmp_path: Path) -> Submitter:
    settings = Settings(environment="test", data_dir=tmp_path / "data")
    engine = open_database(settings.resolved_database_url)
    queue = OutboundQueue(engine, settings.outbound_spool_dir, 3600)
    return Submitter(settings, queue, SuppressionList(engine))


def test_not_before_holds_delivery_until_then(submitter: Submitter) -> None:
    queue = submitter.queue
    slot = time.time() + 600
    later = submitter.submit(
        "news@shop.example",
        ["late@mail.example"],
        _message(1),
        source="api",
        submitted_by="tests",
        not_before=slot,
    )
    due = submitter.submit(
        "news@shop.example", ["now@mail.example"], _message(2), source="api", submitted_by="t"
    )
    claimed = queue.claim("w1", 10, now=time.time())
    assert [job.message_id for job in claimed] == [due.enqueued.message_id]
    queue.release_claims()
    shown = queue.message(later.enqueued.message_id)
    at_time = queue.claim("w2", 10, now=shown.created_at + 601)
    assert later.enqueued.message_id in {job.message_id for job in at_time}
    assert shown.expires_at == pytest.approx(slot + 3600)  # the lifetime counts from the slot


def test_a_past_not_before_changes_nothing(submitter: Submitter) -> None:
    accepted = submitter.submit(
        "news@shop.example",
        ["r@mail.example"],
        _message(3),
        source="api",
        submitted_by="t",
        not_before=1.0,
    )
    jobs = submitter.queue.claim("w", 10, now=time.time())
    assert [job.message_id for job in jobs] == [accepted.enqueued.message_id]


def test_submit_many_answers_each_item_and_queues_durably(submitter: Submitter) -> None:
    queue = submitter.queue
    submitter.suppressions.add("blocked@mail.example", "listed by a test", "operator")
    first = submitter.submit(
        "news@shop.example",
        ["r0@mail.example"],
        _message(0),
        source="api",
        submitted_by="t",
        idempotency_key="k0",
    )
    items = [
        Submission("news@shop.example", ("r0@mail.example",), _message(0), "api", "t", "k0"),
        Submission("news@shop.example", ("r1@mail.example",), _message(1), "api", "t", "k1"),
        Submission("news@shop.example", ("r1@mail.example",), _message(1), "api", "t", "k1"),
        Submission("news@shop.example", ("blocked@mail.example",), _message(2), "api", "t", "k2"),
        Submission(
            "news@shop.example", ("r3@mail.example",), _message(3), "api", "t", None,
            not_before=NOW * 2,
        ),
    ]  # fmt: skip
    answers = submitter.submit_many(items)
    assert len(answers) == 5
    assert isinstance(answers[0], Accepted) and answers[0].enqueued.duplicate
    assert answers[0].enqueued.message_id == first.enqueued.message_id
    assert isinstance(answers[1], Accepted) and not answers[1].enqueued.duplicate
    assert isinstance(answers[2], Accepted) and answers[2].enqueued.duplicate
    assert answers[2].enqueued.message_id == answers[1].enqueued.message_id
    assert isinstance(answers[3], SubmissionError) and "suppression list" in str(answers[3])
    assert isinstance(answers[4], Accepted)
    for answer in (answers[1], answers[4]):
        assert isinstance(answer, Accepted)
        stored = queue.load(answer.enqueued.message_id)
        assert b"Received: from t by" in stored and stored.endswith(b"\r\n")
    due = {job.message_id for job in queue.claim("w", 10, now=time.time())}
    assert due == {first.enqueued.message_id, answers[1].enqueued.message_id}
    assert queue.depth()["queued"] == 3
    assert not list(queue.staging.iterdir())  # nothing left half-written


def test_submit_many_with_nothing_to_queue(submitter: Submitter) -> None:
    assert submitter.submit_many([]) == []
    assert submitter.queue.submit_many([]) == []


def test_submit_many_refuses_only_the_suppressed_recipients_of_an_item(
    submitter: Submitter,
) -> None:
    submitter.suppressions.add("Blocked@Mail.example", "listed by a test", "operator")
    item = Submission(
        "news@shop.example", ("ok@mail.example", "blocked@mail.example"), _message(4), "api", "t"
    )
    [answer] = submitter.submit_many([item])
    assert isinstance(answer, Accepted)
    assert answer.refused == {"blocked@mail.example": "suppressed (operator: listed by a test)"}
    assert answer.enqueued.recipients == ("ok@mail.example",)


def test_a_concurrent_submission_with_the_same_key_wins(
    submitter: Submitter, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = submitter.queue
    prepared = submitter.prepare(
        "news@shop.example", ["r@mail.example"], _message(5), "api", "t", "k5"
    )
    first = queue.submit(prepared)
    # The second submitter looked for the key before the first one committed.
    real = queue.find_idempotent_many
    looked: list[int] = []

    def blind_once(keys: list[str]) -> dict[str, object]:
        looked.append(len(keys))
        return {} if len(looked) == 1 else dict(real(keys))

    monkeypatch.setattr(queue, "find_idempotent_many", blind_once)
    again = queue.submit(prepared)
    assert looked == [1, 1]
    assert again.duplicate and again.message_id == first.message_id
    assert queue.depth()["queued"] == 1
    assert [p.stem for p in queue.messages_dir.iterdir()] == [first.message_id]
    assert not list(queue.staging.iterdir())
