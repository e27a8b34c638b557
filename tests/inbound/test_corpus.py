"""Corpus helpers: the sender view, the two corpus layouts and the validation split."""

from __future__ import annotations

import csv
import hashlib
import io
import random
import re
import tarfile
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.core.errors import CorpusError
from postwise.inbound.corpus import CorpusMessage, is_validation, read_corpus, sender_view

BODY = (
    b"Body line one\r\n"
    b"Received: this is body text, not a header\r\n"
    b"X-Not-A-Header: stays too\r\n"
    b"\r\n"
    b"Second paragraph.\r\n"
)

COLLECTED = (
    b"From MAILER-DAEMON Thu Mar  5 10:00:00 2026\n"
    b"Return-Path: <bounce@example.com>\r\n"
    b"Received: from mx.example.com (mx.example.com [192.0.2.1])\r\n"
    b"\tby mail.example.org with ESMTP; Tue, 1 Jan 2019 00:00:00 +0000\r\n"
    b"Delivered-To: phishing@pot\r\n"
    b"X-Spam-Status: No, score=-1.0\r\n"
    b"  tests=NONE\r\n"
    b"x-lowercase-trace: yes\r\n"
    b"ARC-Seal: i=1; a=rsa-sha256; t=1;\r\n"
    b" b=abcdef\r\n"
    b"ARC-Message-Signature: i=1; a=rsa-sha256\r\n"
    b"Authentication-Results: mx.example.org; spf=pass\r\n"
    b"Received-SPF: pass (mx.example.org: domain of example.com)\r\n"
    b"DKIM-Signature: v=1; a=rsa-sha256; d=example.com;\r\n"
    b"\tb=xyz123\r\n"
    b"DomainKey-Signature: a=rsa-sha1; q=dns;\r\n"
    b" b=olderscheme\r\n"
    b"From: Alice <alice@example.com>\r\n"
    b"To: Phishing@Pot\r\n"
    b"Subject: Hello\r\n"
    b"  folded subject\r\n"
    b"Date: Tue, 1 Jan 2019 00:00:00 +0000\r\n"
    b"Message-ID: <m1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"\r\n" + BODY
)

REMOVED_FIELDS = (
    "return-path",
    "received",
    "delivered-to",
    "x-spam-status",
    "x-lowercase-trace",
    "arc-seal",
    "arc-message-signature",
    "authentication-results",
    "received-spf",
    "dkim-signature",
    "domainkey-signature",
)


def split_view(view: bytes) -> tuple[bytes, bytes]:
    head, sep, body = view.partition(b"\r\n\r\n")
    assert sep, "the sender view lost the header/body separator"
    return head, body


def field_names(head: bytes) -> list[str]:
    return [
        line.split(b":", 1)[0].decode().lower()
        for line in head.split(b"\r\n")
        if line and line[:1] not in (b" ", b"\t")
    ]


def test_sender_view_removes_collection_fields() -> None:
    head, _ = split_view(sender_view(COLLECTED))
    names = field_names(head)
    for name in REMOVED_FIELDS:
        assert name not in names
    # continuation lines of removed fields go with them
    for leftover in (b"tests=NONE", b"b=abcdef", b"b=xyz123", b"olderscheme", b"by mail.example"):
        assert leftover not in head
    assert names == ["from", "to", "subject", "date", "message-id", "mime-version"]


def test_sender_view_removes_mbox_from_line() -> None:
    view = sender_view(COLLECTED)
    assert not view.startswith(b"From ")
    assert b"MAILER-DAEMON" not in view


def test_sender_view_keeps_author_headers_and_body() -> None:
    view = sender_view(COLLECTED)
    head, body = split_view(view)
    assert b"From: Alice <alice@example.com>\r\n" in head + b"\r\n"
    assert b"Subject: Hello\r\n  folded subject\r\n" in head + b"\r\n"
    assert b"Message-ID: <m1@example.com>" in head
    assert b"MIME-Version: 1.0" in head
    assert body == BODY


def test_sender_view_replaces_date_with_march_2026() -> None:
    head, _ = split_view(sender_view(COLLECTED))
    dates = [line for line in head.split(b"\r\n") if line.lower().startswith(b"date:")]
    assert len(dates) == 1
    assert b"2019" not in head
    value = dates[0].split(b":", 1)[1].strip().decode()
    when = parsedate_to_datetime(value)
    assert (when.year, when.month) == (2026, 3)
    assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0
    assert value.startswith(when.strftime("%a") + ",")  # the weekday is the real one


def test_sender_view_replaces_folded_date() -> None:
    raw = b"From: a@example.com\r\nDate: Tue,\r\n 1 Jan 2019 00:00:00 +0000\r\nSubject: s\r\n\r\nb"
    head, body = split_view(sender_view(raw))
    assert b"2019" not in head
    assert b"Subject: s" in head
    assert body == b"b"
    when = parsedate_to_datetime(re.search(rb"Date: (.*)", head).group(1).decode())
    assert (when.year, when.month) == (2026, 3)


def test_sender_view_adds_a_date_when_missing() -> None:
    raw = b"From: a@example.com\nSubject: no date\n\nbody\n"
    view = sender_view(raw)
    head, _, body = view.partition(b"\n\n")
    assert body == b"body\n"
    dates = [line for line in head.split(b"\n") if line.startswith(b"Date: ")]
    assert len(dates) == 1
    assert parsedate_to_datetime(dates[0][6:].decode()).year == 2026


def test_sender_view_replaces_honeypot_address() -> None:
    raw = (
        b"From: a@example.com\r\nTo: PHISHING@pot\r\n\r\n"
        b"reply to phishing@pot or Phishing@Pot please\r\n"
    )
    view = sender_view(raw)
    assert b"phishing@pot" not in view.lower()
    head, body = split_view(view)
    to = re.search(rb"To: (\S+)", head).group(1)
    assert re.fullmatch(rb"[a-z.]+@example\.(com|net|org)", to)
    assert body.startswith(b"reply to " + to + b" or ")


def test_sender_view_is_deterministic_and_varies_by_message() -> None:
    assert sender_view(COLLECTED) == sender_view(COLLECTED)
    dates = set()
    for i in range(40):
        raw = b"From: a@example.com\r\nSubject: %d\r\n\r\nbody %d\r\n" % (i, i)
        view = sender_view(raw)
        assert view == sender_view(raw)
        dates.add(re.search(rb"Date: (.*)\r\n", view).group(1))
    assert len(dates) > 20  # derived from the message hash, not a constant


def test_sender_view_keeps_crlf_endings() -> None:
    view = sender_view(COLLECTED)
    assert b"\n" not in view.replace(b"\r\n", b"")
    assert b"\r" not in view.replace(b"\r\n", b"")
    no_body = sender_view(b"Received: x\r\nFrom: a@example.com\r\nSubject: s")
    assert no_body.endswith(b"\r\n")
    assert b"\n" not in no_body.replace(b"\r\n", b"")


def test_sender_view_keeps_lf_endings() -> None:
    raw = b"From x@y Thu Mar  5 10:00:00 2026\nReceived: x\n y\nFrom: a@example.com\n\nbody\n"
    view = sender_view(raw)
    assert b"\r" not in view
    assert view.endswith(b"\n\nbody\n")


def test_sender_view_of_empty_input() -> None:
    assert sender_view(b"") == b""


@settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(st.binary(max_size=4_000))
def test_sender_view_never_raises(raw: bytes) -> None:
    view = sender_view(raw)
    assert view == sender_view(raw)
    assert b"phishing@pot" not in view.lower()


# ----------------------------------------------------------------------------- read_corpus


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def test_read_corpus_folder_layout(tmp_path: Path) -> None:
    files = {
        "ham/b.eml": b"Subject: ham b\r\n\r\nb",
        "ham/a.eml": b"Subject: ham a\r\n\r\na",
        "spam/sub/c.eml": b"Subject: spam c\r\n\r\nc",
        "phish/d.eml": b"Subject: phish d\r\n\r\nd",
    }
    for name, data in files.items():
        write(tmp_path / name, data)
    (tmp_path / "notes").mkdir()
    write(tmp_path / "notes" / "ignored.eml", b"Subject: not labelled\r\n\r\n")
    messages = list(read_corpus(tmp_path))
    assert all(isinstance(m, CorpusMessage) for m in messages)
    assert [(m.id, m.label) for m in messages] == [
        ("ham/a.eml", "ham"),
        ("ham/b.eml", "ham"),
        ("spam/sub/c.eml", "spam"),
        ("phish/d.eml", "phish"),
    ]
    for message in messages:
        assert message.raw == files[message.id]
        assert message.group == hashlib.sha256(message.raw).hexdigest()
    assert [m.id for m in read_corpus(tmp_path)] == [m.id for m in messages]


def test_read_corpus_with_only_some_label_folders(tmp_path: Path) -> None:
    write(tmp_path / "spam" / "x.eml", b"Subject: x\r\n\r\n")
    assert [(m.id, m.label) for m in read_corpus(tmp_path)] == [("spam/x.eml", "spam")]


def test_identical_files_share_a_group(tmp_path: Path) -> None:
    write(tmp_path / "ham" / "one.eml", b"same bytes")
    write(tmp_path / "ham" / "two.eml", b"same bytes")
    groups = {m.group for m in read_corpus(tmp_path)}
    assert len(groups) == 1


def test_read_corpus_on_empty_folder_raises(tmp_path: Path) -> None:
    with pytest.raises(CorpusError):
        read_corpus(tmp_path)


def test_read_corpus_on_unknown_layout_raises(tmp_path: Path) -> None:
    write(tmp_path / "mail" / "a.eml", b"Subject: a\r\n\r\n")
    with pytest.raises(CorpusError, match="ham/ spam/ phish/"):
        read_corpus(tmp_path)


def make_archive(path: Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def write_manifest(root: Path, rows: list[dict[str, str]]) -> None:
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["id", "label", "archive", "member", "text_sha256", "subset"]
        )
        writer.writeheader()
        writer.writerows(rows)


def test_read_corpus_shared_layout(tmp_path: Path) -> None:
    make_archive(tmp_path / "part1.tar.gz", {"m1.eml": b"one", "m2.eml": b"two", "extra": b"x"})
    write_manifest(
        tmp_path,
        [
            {
                "id": "m1",
                "label": "ham",
                "archive": "part1.tar.gz",
                "member": "m1.eml",
                "text_sha256": "g1",
                "subset": "s",
            },
            {
                "id": "m2",
                "label": "phish",
                "archive": "part1.tar.gz",
                "member": "m2.eml",
                "text_sha256": "",
                "subset": "",
            },
        ],
    )
    messages = list(read_corpus(tmp_path))
    assert [(m.id, m.label, m.raw, m.group, m.subset) for m in messages] == [
        ("m1", "ham", b"one", "g1", "s"),
        ("m2", "phish", b"two", "m2", ""),
    ]


def test_shared_layout_unknown_label_raises(tmp_path: Path) -> None:
    make_archive(tmp_path / "p.tar.gz", {"m.eml": b"x"})
    write_manifest(
        tmp_path,
        [
            {
                "id": "m",
                "label": "newsletter",
                "archive": "p.tar.gz",
                "member": "m.eml",
                "text_sha256": "",
                "subset": "",
            }
        ],
    )
    with pytest.raises(CorpusError):
        list(read_corpus(tmp_path))


def test_shared_layout_missing_archive_raises(tmp_path: Path) -> None:
    write_manifest(
        tmp_path,
        [
            {
                "id": "m",
                "label": "ham",
                "archive": "gone.tar.gz",
                "member": "m.eml",
                "text_sha256": "",
                "subset": "",
            }
        ],
    )
    with pytest.raises(CorpusError, match=r"gone\.tar\.gz"):
        list(read_corpus(tmp_path))


# ----------------------------------------------------------------------------- split


def test_is_validation_is_deterministic() -> None:
    groups = [f"group-{i}" for i in range(300)]
    first = [is_validation(g) for g in groups]
    assert first == [is_validation(g) for g in groups]
    assert first == [is_validation(g, seed=0, share=0.2) for g in groups]
    assert any(first) and not all(first)


def test_is_validation_depends_on_seed() -> None:
    groups = [f"group-{i}" for i in range(300)]
    assert [is_validation(g, seed=1) for g in groups] != [is_validation(g, seed=2) for g in groups]


def test_is_validation_share() -> None:
    rng = random.Random(1234)
    groups = [f"{rng.getrandbits(64):016x}" for _ in range(2000)]
    fraction = sum(is_validation(g, share=0.2) for g in groups) / len(groups)
    assert 0.15 <= fraction <= 0.25
    half = sum(is_validation(g, seed=7, share=0.5) for g in groups) / len(groups)
    assert 0.44 <= half <= 0.56


def test_is_validation_extremes_and_monotone() -> None:
    groups = [f"g{i}" for i in range(500)]
    assert not any(is_validation(g, share=0.0) for g in groups)
    assert all(is_validation(g, share=1.0) for g in groups)
    small = {g for g in groups if is_validation(g, share=0.1)}
    large = {g for g in groups if is_validation(g, share=0.3)}
    assert small <= large
