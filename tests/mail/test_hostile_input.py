"""parse_message on hostile and broken input: it must never raise and must stay in bounds."""

from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from postwise.mail.message import ParsedMessage
from postwise.mail.parse import ParseLimits, parse_message

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

TIGHT = ParseLimits(max_depth=4, max_parts=12, max_text_chars=2_000)

TEMPLATES: tuple[bytes, ...] = (
    b"From: Alice <alice@example.com>\r\nTo: bob@example.org\r\n"
    b"Subject: =?utf-8?B?SGVsbG8gV8O2cmxk?=\r\nDate: Tue, 03 Mar 2026 10:00:00 +0000\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\n"
    b"Hello, see https://www.example.com/a and hxxp://evil[.]example/x\r\n",
    b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/alternative; boundary="alt"\r\n\r\n'
    b"--alt\r\nContent-Type: text/plain; charset=iso-8859-1\r\n"
    b"Content-Transfer-Encoding: quoted-printable\r\n\r\nK=F6ln =\r\nnext\r\n"
    b"--alt\r\nContent-Type: text/html\r\n\r\n<p>Hi <a href='https://x.example.com/'>x</a>"
    b"<div style='display:none'>hidden</div></p>\r\n--alt--\r\n",
    b"From: a@example.com\r\nMIME-Version: 1.0\r\n"
    b'Content-Type: multipart/mixed; boundary="mix"\r\n\r\n'
    b"--mix\r\nContent-Type: text/plain\r\n\r\nsee attachment\r\n"
    b'--mix\r\nContent-Type: application/zip\r\nContent-Disposition: attachment; filename="a.zip"'
    b"\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    + base64.encodebytes(
        b"PK\x03\x04\x14\x00\x00\x00\x00\x00" + b"\x00" * 16 + b"\x05\x00\x00\x00a.exe"
    )
    + b"--mix\r\nContent-Type: message/rfc822\r\n\r\n"
    b"Subject: inner\r\nContent-Type: multipart/mixed; boundary=in\r\n\r\n"
    b"--in\r\nContent-Type: text/html\r\n\r\n<form action='https://f.example.org/'>\r\n--in--\r\n"
    b"--mix--\r\n",
    b"From sender@example.com Thu Mar  5 10:00:00 2026\n"
    b"From: s@example.com\nSubject: =?iso-8859-1?q?Gr=FC=DFe?=\n"
    b"Content-Type: text/plain; charset=x-unknown\n\nplain body\n",
)

SOUP_TOKENS = [
    b"\r\n",
    b"\n",
    b"\r",
    b"\r\n\r\n",
    b": ",
    b";",
    b"=",
    b'"',
    b" ",
    b"\t",
    b"\x00",
    b"\xff",
    b"From: ",
    b"To: ",
    b"Subject: ",
    b"Date: ",
    b"Reply-To: ",
    b"Content-Type: ",
    b"Content-Transfer-Encoding: base64",
    b"Content-Transfer-Encoding: quoted-printable",
    b"Content-Disposition: attachment; filename=",
    b"filename*=utf-8''%ff",
    b"multipart/mixed",
    b"multipart/alternative",
    b"message/rfc822",
    b"text/html",
    b"text/plain",
    b"boundary=",
    b'boundary="b"',
    b"--b",
    b"--b--",
    b"--",
    b"charset=",
    b"utf-8",
    b"x-bogus",
    b"undefined",
    b"=?utf-8?B?",
    b"=?utf-8?Q?",
    b"?=",
    b"=?",
    b"w7w=",
    b"<a href=",
    b"https://x.example.com/",
    b"hxxp://",
    b"[.]",
    b"PK\x03\x04",
    b"MZ",
    b"%PDF-",
    b"<",
    b">",
    b"@",
    b",",
    b"a@b.example",
]


def check_invariants(raw: bytes, message: object, limits: ParseLimits) -> None:
    assert isinstance(message, ParsedMessage)
    assert message.sha256 == hashlib.sha256(raw).hexdigest()
    assert message.size == len(raw)
    assert len(message.defects) == len(set(message.defects))
    assert all(d and d == d.upper() for d in message.defects)
    assert message.part_count <= limits.max_parts
    assert message.max_depth <= limits.max_depth
    assert len(message.text_plain) <= limits.max_text_chars
    assert len(message.html) <= limits.max_text_chars
    assert len(message.html_text) <= limits.max_text_chars
    assert len(message.urls) <= 1000
    assert isinstance(message.subject, str)
    assert isinstance(message.body_text, str)
    for attachment in message.attachments:
        assert attachment.size >= 0
        assert len(attachment.sha256) == 64


def parse_both(raw: bytes) -> None:
    check_invariants(raw, parse_message(raw), ParseLimits())
    check_invariants(raw, parse_message(raw, TIGHT), TIGHT)


@FUZZ
@given(st.binary(max_size=20_000))
def test_random_bytes(raw: bytes) -> None:
    parse_both(raw)


@FUZZ
@given(st.binary(max_size=2_000).map(lambda b: b"From: a@example.com\r\n" + b))
def test_random_bytes_after_a_header(raw: bytes) -> None:
    parse_both(raw)


Mutation = tuple[int, float, bytes]


def mutate(template: bytes, mutations: list[Mutation]) -> bytes:
    data = bytearray(template)
    for kind, where, payload in mutations:
        at = int(where * len(data))
        if kind == 0 and data:  # flip bits of one byte
            index = min(at, len(data) - 1)
            data[index] ^= payload[0] if payload else 0xFF
        elif kind == 1:  # insert bytes
            data[at:at] = payload
        else:  # delete a run
            del data[at : at + 1 + len(payload)]
    return bytes(data)


mutations = st.lists(
    st.tuples(
        st.integers(0, 2),
        st.floats(0, 1, allow_nan=False),
        st.binary(min_size=1, max_size=12) | st.sampled_from(SOUP_TOKENS),
    ),
    min_size=1,
    max_size=12,
)


@FUZZ
@given(st.sampled_from(TEMPLATES), mutations)
def test_mutated_messages(template: bytes, changes: list[Mutation]) -> None:
    parse_both(mutate(template, changes))


@FUZZ
@given(st.lists(st.sampled_from(SOUP_TOKENS) | st.binary(max_size=6), max_size=150))
def test_header_and_boundary_soup(pieces: list[bytes]) -> None:
    parse_both(b"".join(pieces))


@FUZZ
@given(st.integers(1, 60), st.sampled_from([b"multipart/mixed", b"message/rfc822"]), st.data())
def test_random_nesting(levels: int, kind: bytes, data: st.DataObject) -> None:
    closers = data.draw(st.booleans())
    out = [b"From: a@example.com\r\n"]
    for i in range(levels):
        if kind == b"message/rfc822":
            out.append(b"Content-Type: message/rfc822\r\n\r\n")
        else:
            out.append(b"Content-Type: multipart/mixed; boundary=L%d\r\n\r\n--L%d\r\n" % (i, i))
    out.append(b"Content-Type: text/plain\r\n\r\ndeep\r\n")
    if closers and kind != b"message/rfc822":
        out.extend(b"--L%d--\r\n" % i for i in reversed(range(levels)))
    parse_both(b"".join(out))


# ----------------------------------------------------------------------------- fixed cases


def test_templates_parse_cleanly() -> None:
    for template in TEMPLATES:
        message = parse_message(template)
        check_invariants(template, message, ParseLimits())
        assert message.from_ is not None
        assert "MIME_UNPARSEABLE" not in message.defects


def test_nul_bytes() -> None:
    raw = (
        b"From: a@example.com\x00\r\nSubject: nu\x00ll\r\n\r\n"
        b"bo\x00dy https://x.example.com/page\r\n"
    )
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
    assert message.subject == "null"  # control characters are dropped from headers
    assert message.from_ is not None and message.from_.address == "a@example.com"
    assert "bo\x00dy" in message.text_plain
    assert [u.host for u in message.urls] == ["x.example.com"]


def test_cr_only_line_endings() -> None:
    raw = (
        b"From: a@example.com\rSubject: cr only\rContent-Type: text/plain\r\r"
        b"body line\rhttps://cr.example.com/\r"
    )
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
    assert message.subject == "cr only"
    assert message.from_ is not None and message.from_.address == "a@example.com"
    assert "body line" in message.text_plain
    assert [u.url for u in message.urls] == ["https://cr.example.com/"]


def test_8bit_header() -> None:
    raw = b"From: J\xfcrgen <j@example.com>\r\nSubject: Gr\xfc\xdfe \xe4\xf6\r\n\r\nbody\r\n"
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
    assert message.from_ is not None and message.from_.address == "j@example.com"
    assert message.subject.startswith("Gr")
    assert message.text_plain.strip() == "body"


def test_boundary_never_closed() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n"
        b"--XX\r\nContent-Type: text/plain\r\n\r\nopen part text\r\n"
        b"--XX\r\nContent-Type: text/html\r\n\r\n<p>second <a href='https://o.example.com/'>o</a>"
    )
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
    assert "MIME_CLOSE_BOUNDARY_NOT_FOUND" in message.defects
    assert "open part text" in message.text_plain
    assert "second" in message.html_text
    assert [u.host for u in message.urls if u.source == "href"] == ["o.example.com"]


def test_multipart_without_boundary() -> None:
    raw = b"From: a@example.com\r\nContent-Type: multipart/mixed\r\n\r\nno boundary at all\r\n"
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
    assert "MIME_NO_BOUNDARY_IN_MULTIPART" in message.defects


@pytest.mark.parametrize(
    ("body", "defect"),
    [
        (b"!!!***$$$ not base64 @@@=\r\nQUJD=\r\n", "MIME_INVALID_BASE64_LENGTH"),
        (b"%%%%\r\n", "MIME_INVALID_BASE64_CHARACTERS"),
    ],
)
def test_base64_garbage_in_text(body: bytes, defect: str) -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: text/plain\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + body
    )
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
    assert defect in message.defects


def test_base64_garbage_in_attachment() -> None:
    raw = (
        b"From: a@example.com\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename=x.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n%%%% \xff\xfe ###\r\n"
    )
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
    assert "MIME_INVALID_BASE64_CHARACTERS" in message.defects
    assert [a.filename for a in message.attachments] == ["x.pdf"]


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\r\n\r\n",
        b"\x00" * 1000,
        b"\xff" * 5000,
        b"From ",
        b"From \n",
        b"garbage line without colon\r\nFrom: a@example.com\r\n\r\nbody",
        b'From: <<<@@@>>>\r\nTo: ,,,,"\r\nCc: "unterminated <x@\r\n\r\nbody',
        b"From: a@example.com\r\nDate: Mon, 99 Foo 99999 99:99:99 +9999\r\n\r\nbody",
        b'Content-Type: ;;;==="\r\n\r\nbody',
        b'Content-Type: text/plain; charset=""\r\n\r\nbody',
        b"Content-Transfer-Encoding: x-uuencode\r\n\r\nbegin 644 f\r\n!!!\r\nend\r\n",
        b"Subject: " + b"=?utf-8?B?w7w=?= " * 2000 + b"\r\n\r\nx",
        b"To: " + b"a@b.example, " * 5000 + b"\r\n\r\nx",
        b"X-Long: " + b"a" * 200_000 + b"\r\n\r\nbody",
        b"Content-Type: text/html\r\n\r\n" + b"<div>" * 20_000,
        b"Content-Type: multipart/mixed; boundary=B\r\n\r\n" + b"--B\r\n\r\nx\r\n" * 2000,
        b"\r\n\r\n" + b"ab[.]" * 20_000,
    ],
    ids=lambda raw: repr(raw[:24]),
)
def test_fixed_hostile_inputs(raw: bytes) -> None:
    message = parse_message(raw)
    check_invariants(raw, message, ParseLimits())
