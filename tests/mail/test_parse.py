"""parse_message: headers, bodies, links, attachments and the parse limits."""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from datetime import UTC, datetime, timedelta

import pytest
from fixture_messages import fixture_root

from postwise.mail.message import Address, ParsedMessage
from postwise.mail.parse import ParseLimits, decode_header_value, parse_message

FIXTURES = fixture_root() / "mail"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def simple(headers: str, body: bytes = b"body\r\n") -> bytes:
    return headers.replace("\n", "\r\n").encode("ascii") + b"\r\n\r\n" + body


def multipart(parts: list[bytes], boundary: str = "B0UNDARY", subtype: str = "mixed") -> bytes:
    head = (
        "From: sender@example.com\r\nTo: rcpt@example.org\r\nSubject: multipart\r\n"
        f'MIME-Version: 1.0\r\nContent-Type: multipart/{subtype}; boundary="{boundary}"\r\n\r\n'
    ).encode()
    body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
    return head + body + b"--" + boundary.encode() + b"--\r\n"


def attachment_part(
    data: bytes, content_type: str, disposition_params: str, extra: str = ""
) -> bytes:
    head = (
        f"Content-Type: {content_type}\r\n"
        f"Content-Disposition: attachment; {disposition_params}\r\n"
        f"{extra}Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return head + base64.encodebytes(data).replace(b"\n", b"\r\n")


def nested_multipart(levels: int) -> bytes:
    """A message whose only text part sits ``levels`` multiparts deep."""
    out = [b"From: deep@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"]
    for i in range(levels):
        out.append(f'Content-Type: multipart/mixed; boundary="lvl{i}"\r\n\r\n--lvl{i}\r\n'.encode())
    out.append(b"Content-Type: text/plain\r\n\r\ninnermost text\r\n")
    out.extend(f"--lvl{i}--\r\n".encode() for i in reversed(range(levels)))
    return b"".join(out)


def nested_rfc822(levels: int) -> bytes:
    out = [b"From: deep@example.com\r\nSubject: deep rfc822\r\nMIME-Version: 1.0\r\n"]
    out.extend(b"Content-Type: message/rfc822\r\n\r\nSubject: layer\r\n" for _ in range(levels))
    out.append(b"Content-Type: text/plain\r\n\r\ninnermost text\r\n")
    return b"".join(out)


# ----------------------------------------------------------------------------- headers


def test_identity_fields_hash_and_size() -> None:
    raw = fixture("alternative.eml")
    message = parse_message(raw)
    assert isinstance(message, ParsedMessage)
    assert message.sha256 == hashlib.sha256(raw).hexdigest()
    assert message.size == len(raw)


def test_headers_and_addresses() -> None:
    message = parse_message(fixture("alternative.eml"))
    assert message.subject == "Your account summary"
    assert message.from_ == Address("Alice Example", "alice@example.com")
    assert message.from_ is not None and message.from_.domain == "example.com"
    assert message.reply_to == Address("", "replies@other.example")
    assert message.sender == Address("", "sender@example.com")
    assert message.return_path == "bounce@example.com"
    assert message.to == [Address("", "bob@example.org"), Address("Carol C", "carol@example.net")]
    assert message.cc == [Address("", "dave@example.com")]
    assert message.message_id == "<alt-1@example.com>"
    assert message.date == datetime(2026, 3, 3, 9, 0, tzinfo=UTC)
    assert message.date is not None and message.date.utcoffset() == timedelta(hours=1)
    assert message.content_type == "multipart/alternative"
    assert message.header("SUBJECT") == "Your account summary"
    assert message.header("X-Absent") is None
    assert message.defects == []


def test_header_all_and_multiple_to_headers() -> None:
    raw = simple(
        "From: a@example.com\nTo: one@example.org\nTo: Two <TWO@Example.org>\n"
        "Received: first\nReceived: second"
    )
    message = parse_message(raw)
    assert message.header_all("received") == ["first", "second"]
    assert [a.address for a in message.to] == ["one@example.org", "two@example.org"]
    assert message.to[1].display_name == "Two"


def test_bad_date_is_a_defect() -> None:
    message = parse_message(simple("From: a@example.com\nDate: not a date at all"))
    assert message.date is None
    assert "HEADER_BAD_DATE" in message.defects


def test_missing_headers_give_empty_fields() -> None:
    message = parse_message(b"\r\njust a body\r\n")
    assert message.subject == ""
    assert message.from_ is None
    assert message.to == []
    assert message.content_type == "text/plain"
    assert "just a body" in message.text_plain


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        ("=?utf-8?B?SGVsbG8gV8O2cmxk?=", "Hello Wörld"),
        ("=?UTF-8?Q?Caf=C3=A9_au_lait?=", "Café au lait"),
        ("=?iso-8859-1?q?Gr=FC=DFe_aus_K=F6ln?=", "Grüße aus Köln"),
        ("Re: =?utf-8?B?w7w=?= plain", "Re: ü plain"),
        ("=?utf-8?Q?part_one?=\n =?utf-8?Q?_part_two?=", "part one part two"),
    ],
)
def test_rfc2047_subjects(encoded: str, expected: str) -> None:
    message = parse_message(simple(f"From: a@example.com\nSubject: {encoded}"))
    assert message.subject == expected
    assert "HEADER_BAD_ENCODING" not in message.defects


def test_encoded_display_name() -> None:
    raw = simple("From: =?utf-8?B?SsO8cmdlbg==?= <j@example.com>")
    message = parse_message(raw)
    assert message.from_ == Address("Jürgen", "j@example.com")


@pytest.mark.parametrize(
    ("encoded", "word"),
    [
        ("=?x-bogus-charset?Q?hello_there?=", "hello_there"),
        ("=?utf-8?B?!!!notb64?=", "notb64"),
        pytest.param("=?utf-8?B?abc-def?=", "abc-def"),
        pytest.param("=?utf-8?B?!!!not-base64?=", "not-base64"),
    ],
)
def test_invalid_encoded_word_is_a_defect_but_still_a_subject(encoded: str, word: str) -> None:
    raw = simple(f"From: a@example.com\nSubject: {encoded}\nTo: b@example.org")
    message = parse_message(raw)
    assert "HEADER_BAD_ENCODING" in message.defects
    assert "HEADER_UNPARSEABLE" not in message.defects
    assert word in message.subject
    assert "=?" not in message.subject
    assert message.from_ == Address("", "a@example.com")
    assert message.to == [Address("", "b@example.org")]


def test_decode_header_value_contract() -> None:
    assert decode_header_value("plain\x01text") == ("plaintext", True)
    assert decode_header_value("=?utf-8?Q?=C3=A9t=C3=A9?=") == ("été", True)
    text, ok = decode_header_value("=?nope?Q?abc?=")
    assert ok is False
    assert "abc" in text


def test_decode_header_value_never_raises_on_bad_base64() -> None:
    text, ok = decode_header_value("=?utf-8?B?abc-def?=")
    assert ok is False
    assert "abc-def" in text


def test_8bit_latin1_header_does_not_break_parsing() -> None:
    raw = b"From: J\xfcrgen <j@example.com>\r\nSubject: Gr\xfc\xdfe\r\n\r\nbody\r\n"
    message = parse_message(raw)
    assert message.from_ is not None and message.from_.address == "j@example.com"
    assert message.subject.startswith("Gr")
    assert message.text_plain.strip() == "body"


def test_8bit_utf8_header_is_decoded() -> None:
    raw = "From: Jürgen <j@example.com>\r\nSubject: Grüße\r\n\r\nbody\r\n".encode()
    message = parse_message(raw)
    assert message.subject == "Grüße"
    assert message.from_ == Address("Jürgen", "j@example.com")


# ----------------------------------------------------------------------------- bodies


def test_multipart_alternative_text_and_html() -> None:
    message = parse_message(fixture("alternative.eml"))
    assert message.part_count == 3
    assert message.max_depth == 1
    assert "Café summary." in message.text_plain
    assert "This is a multi-part message" not in message.text_plain  # the preamble
    assert message.html.lstrip().startswith("<html>")
    assert "Hello Bob" in message.html_text
    assert "here is your summary." in message.html_text
    assert message.body_text == message.text_plain


def test_html_to_text_drops_script_style_and_head() -> None:
    message = parse_message(fixture("alternative.eml"))
    assert "Review your account" in message.html_text
    assert "trackingSecret" not in message.html_text
    assert "s3cr3t" not in message.html_text
    assert "color: red" not in message.html_text
    assert "Head title" not in message.html_text
    assert "<p>" not in message.html_text


def test_hidden_html_text_is_collected() -> None:
    message = parse_message(fixture("alternative.eml"))
    assert message.hidden_html_text == "cheap pills bonus words"


def test_hidden_html_text_is_not_visible_text() -> None:
    message = parse_message(fixture("alternative.eml"))
    assert "cheap pills" not in message.html_text


def test_html_only_message_body_text_comes_from_html() -> None:
    raw = simple(
        "From: a@example.com\nContent-Type: text/html; charset=utf-8",
        b"<p>Only <i>html</i> here</p><script>alert(1)</script>",
    )
    message = parse_message(raw)
    assert message.text_plain == ""
    assert message.html_text == "Only html here"
    assert message.body_text == "Only html here"


def test_unknown_and_wrong_charsets_are_defects_but_text_is_decoded() -> None:
    message = parse_message(fixture("broken_charset.eml"))
    assert "MIME_UNKNOWN_CHARSET" in message.defects
    assert "MIME_BAD_CHARSET_DATA" in message.defects
    assert "Unknown charset: Café au lait" in message.text_plain
    assert "Declared ascii but 8-bit: naïve" in message.text_plain


def test_undecodable_bytes_fall_back_without_loss_of_the_part() -> None:
    raw = simple(
        "From: a@example.com\nContent-Type: text/plain; charset=utf-8",
        b"price \x80 100 \xff end",
    )
    message = parse_message(raw)
    assert "MIME_BAD_CHARSET_DATA" in message.defects
    assert message.text_plain.startswith("price ")
    assert message.text_plain.endswith(" end")


@pytest.mark.parametrize("charset", ["undefined", "utf-8\x00"])
def test_exotic_charset_does_not_abort_the_walk(charset: str) -> None:
    text_part = f'Content-Type: text/plain; charset="{charset}"\r\n\r\nhello text'.encode()
    exe = attachment_part(
        b"MZ\x90\x00" + b"\x00" * 60, "application/octet-stream", 'filename="evil.exe"'
    )
    message = parse_message(multipart([text_part, exe]))
    assert "MIME_UNPARSEABLE" not in message.defects
    assert "hello text" in message.text_plain
    assert [a.filename for a in message.attachments] == ["evil.exe"]


def test_base64_and_quoted_printable_text() -> None:
    b64 = base64.b64encode("grüezi https://b64.example.com/x".encode()).decode()
    raw = multipart(
        [
            f"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64"
            f"\r\n\r\n{b64}".encode(),
            b"Content-Type: text/plain; charset=iso-8859-1\r\n"
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\nK=F6ln =\r\nsoft-break",
        ]
    )
    message = parse_message(raw)
    assert "grüezi https://b64.example.com/x" in message.text_plain
    assert "Köln soft-break" in message.text_plain
    assert [u.host for u in message.urls if u.source == "text"] == ["b64.example.com"]


# ----------------------------------------------------------------------------- URLs


def test_urls_from_text_html_forms_and_obfuscation() -> None:
    message = parse_message(fixture("alternative.eml"))
    by_source: dict[str, list[tuple[str, str]]] = {}
    for url in message.urls:
        by_source.setdefault(url.source, []).append((url.url, url.host))
    assert by_source["text"] == [("https://www.example.com/account?id=7", "www.example.com")]
    assert by_source["href"] == [("https://login.example.net/account", "login.example.net")]
    assert by_source["form"] == [("https://collect.example.org/submit", "collect.example.org")]
    assert by_source["image"] == [("https://img.example.com/pixel.gif", "img.example.com")]
    assert set(by_source["obfuscated"]) == {
        ("http://bad.example/login", "bad.example"),
        ("http://evil.example.net", "evil.example.net"),
    }
    href = next(u for u in message.urls if u.source == "href")
    assert href.anchor_text == "Review your account"


def test_obfuscated_links_in_html_only_message() -> None:
    raw = simple(
        "From: a@example.com\nContent-Type: text/html",
        b"<p>Go to hxxps://pay.example.com/verify or shop[.]example[.]org now</p>",
    )
    message = parse_message(raw)
    obfuscated = {(u.url, u.host) for u in message.urls if u.source == "obfuscated"}
    assert ("https://pay.example.com/verify", "pay.example.com") in obfuscated
    assert ("http://shop.example.org", "shop.example.org") in obfuscated


# ----------------------------------------------------------------------------- attachments

PE_BYTES = (
    b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 48 + b"PE\x00\x00"
)
PDF_BYTES = b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< >>\n%%EOF\n"


def test_attachment_declared_vs_sniffed_type() -> None:
    raw = multipart(
        [
            b"Content-Type: text/plain\r\n\r\nplease see the invoice",
            attachment_part(
                PE_BYTES, 'application/pdf; name="invoice.pdf"', 'filename="invoice.pdf"'
            ),
            attachment_part(PDF_BYTES, "application/pdf", 'filename="real.pdf"'),
        ]
    )
    message = parse_message(raw)
    fake, real = message.attachments
    assert fake.filename == "invoice.pdf"
    assert fake.declared_type == "application/pdf"
    assert fake.sniffed_type in {
        "application/x-msdownload",
        "application/vnd.microsoft.portable-executable",
    }
    assert fake.size == len(PE_BYTES)
    assert fake.sha256 == hashlib.sha256(PE_BYTES).hexdigest()
    assert real.filename == "real.pdf"
    assert real.declared_type == real.sniffed_type == "application/pdf"
    assert real.size == len(PDF_BYTES)
    assert real.sha256 == hashlib.sha256(PDF_BYTES).hexdigest()
    assert real.archive_members == ()
    assert message.text_plain == "please see the invoice"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ('filename="=?utf-8?B?UmVjaG51bmdfw6Q=?= =?utf-8?Q?=2Epdf?="', "Rechnung_ä.pdf"),
        ("filename*=utf-8''r%C3%A9sum%C3%A9.pdf", "résumé.pdf"),
        ("filename*=iso-8859-1''Gr%FC%DFe.pdf", "Grüße.pdf"),
    ],
)
def test_encoded_attachment_filenames(params: str, expected: str) -> None:
    message = parse_message(multipart([attachment_part(PDF_BYTES, "application/pdf", params)]))
    assert [a.filename for a in message.attachments] == [expected]
    assert "HEADER_BAD_ENCODING" not in message.defects


def test_zip_attachment_lists_members() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("docs/readme.txt", "hello")
        archive.writestr("payload.exe", PE_BYTES)
        archive.writestr("invoice.pdf.js", "alert(1)")
    data = buffer.getvalue()
    raw = multipart([attachment_part(data, "application/octet-stream", 'filename="bundle.zip"')])
    message = parse_message(raw)
    (attachment,) = message.attachments
    assert attachment.filename == "bundle.zip"
    assert attachment.sniffed_type == "application/zip"
    assert attachment.archive_members == ("docs/readme.txt", "payload.exe", "invoice.pdf.js")
    assert attachment.size == len(data)
    assert attachment.sha256 == hashlib.sha256(data).hexdigest()
    assert "ATTACHMENT_BAD_ARCHIVE" not in message.defects


def test_broken_zip_is_a_defect() -> None:
    raw = multipart(
        [
            attachment_part(
                b"PK\x03\x04 but not really a zip", "application/zip", 'filename="broken.zip"'
            )
        ]
    )
    message = parse_message(raw)
    assert "ATTACHMENT_BAD_ARCHIVE" in message.defects
    assert [a.archive_members for a in message.attachments] == [()]


def test_text_part_with_attachment_disposition_is_an_attachment() -> None:
    raw = multipart(
        [
            b"Content-Type: text/plain\r\n\r\nvisible body",
            b'Content-Type: text/html\r\nContent-Disposition: attachment; filename="page.html"'
            b"\r\n\r\n<p>attached page</p>",
        ]
    )
    message = parse_message(raw)
    assert message.text_plain == "visible body"
    assert message.html == ""
    assert [(a.filename, a.declared_type) for a in message.attachments] == [
        ("page.html", "text/html")
    ]


# ----------------------------------------------------------------------------- structure


def test_mbox_from_line_is_skipped() -> None:
    raw = fixture("mbox_from.eml")
    assert raw.startswith(b"From sender@example.com ")
    message = parse_message(raw)
    assert message.sha256 == hashlib.sha256(raw).hexdigest()
    assert message.headers[0] == ("From", "Sender <sender@example.com>")
    assert message.from_ == Address("Sender", "sender@example.com")
    assert message.subject == "mbox envelope line first"
    assert message.text_plain.strip() == "Body after an mbox envelope line."
    assert message.defects == []


def test_message_rfc822_parts_are_walked() -> None:
    message = parse_message(fixture("nested_rfc822.eml"))
    assert message.subject == "Fwd: inner message"
    assert "See the forwarded message below." in message.text_plain
    assert "Inner plain text" in message.text_plain
    assert "inner anchor" in message.html_text
    hosts = {(u.host, u.source) for u in message.urls}
    assert ("inner.example.net", "text") in hosts
    assert ("inner-html.example.net", "href") in hosts
    assert message.attachments == []
    assert message.max_depth >= 3
    assert message.part_count >= 5


# ----------------------------------------------------------------------------- limits


def test_nesting_at_the_limit_is_fine() -> None:
    message = parse_message(nested_multipart(20))
    assert "MIME_TOO_DEEP" not in message.defects
    assert message.max_depth == 20
    assert message.text_plain.strip() == "innermost text"


@pytest.mark.parametrize("levels", [21, 50])
def test_nesting_past_the_limit_is_too_deep(levels: int) -> None:
    message = parse_message(nested_multipart(levels))
    assert "MIME_TOO_DEEP" in message.defects
    assert message.max_depth == ParseLimits().max_depth
    assert message.subject == "deep"
    assert message.from_ == Address("", "deep@example.com")
    assert "innermost text" not in message.text_plain


def test_custom_max_depth() -> None:
    message = parse_message(nested_multipart(5), ParseLimits(max_depth=3))
    assert "MIME_TOO_DEEP" in message.defects
    assert message.max_depth == 3
    relaxed = parse_message(nested_multipart(5), ParseLimits(max_depth=5))
    assert "MIME_TOO_DEEP" not in relaxed.defects


def test_rfc822_nesting_past_the_limit_is_too_deep() -> None:
    message = parse_message(nested_rfc822(50))
    assert "MIME_TOO_DEEP" in message.defects
    assert message.subject == "deep rfc822"
    assert message.max_depth <= ParseLimits().max_depth


@pytest.mark.parametrize("builder", [nested_multipart, nested_rfc822])
def test_extreme_nesting_does_not_crash(builder) -> None:  # type: ignore[no-untyped-def]
    raw = builder(1000)
    message = parse_message(raw)  # must not raise RecursionError
    assert message.sha256 == hashlib.sha256(raw).hexdigest()
    assert {"MIME_TOO_DEEP", "MIME_UNPARSEABLE"} & set(message.defects)
    assert message.max_depth <= ParseLimits().max_depth


@pytest.mark.parametrize("builder", [nested_multipart, nested_rfc822])
def test_extreme_nesting_is_too_deep_and_keeps_headers(builder) -> None:  # type: ignore[no-untyped-def]
    message = parse_message(builder(1000))
    assert "MIME_TOO_DEEP" in message.defects
    assert message.from_ == Address("", "deep@example.com")
    assert message.subject.startswith("deep")


def test_too_many_parts() -> None:
    parts = [f"Content-Type: text/plain\r\n\r\npart {i}".encode() for i in range(600)]
    message = parse_message(multipart(parts))
    assert "MIME_TOO_MANY_PARTS" in message.defects
    assert message.part_count == ParseLimits().max_parts
    small = parse_message(multipart(parts[:5]), ParseLimits(max_parts=3))
    assert "MIME_TOO_MANY_PARTS" in small.defects
    assert small.part_count == 3
    assert small.text_plain == "part 0\npart 1"
    fine = parse_message(multipart(parts[:5]))
    assert "MIME_TOO_MANY_PARTS" not in fine.defects
    assert fine.part_count == 6


def test_max_text_chars_truncates() -> None:
    limits = ParseLimits(max_text_chars=100)
    plain = parse_message(simple("From: a@example.com", b"x" * 5000), limits)
    assert plain.text_plain == "x" * 100
    html = parse_message(
        simple("From: a@example.com\nContent-Type: text/html", b"<p>" + b"y" * 5000 + b"</p>"),
        limits,
    )
    assert len(html.html) == 100
    assert 0 < len(html.html_text) <= 100
    joined = parse_message(multipart([b"Content-Type: text/plain\r\n\r\n" + b"z" * 80] * 3), limits)
    assert len(joined.text_plain) == 100
    assert joined.text_plain.startswith("z" * 80 + "\n")


def test_raw_8bit_headers_take_the_body_charset() -> None:
    raw = (
        "Subject: 黄山旅游\r\nFrom: 张三 <z@example.cn>\r\n"
        "Content-Type: text/plain; charset=gb2312\r\n\r\n黄山旅游天天发\r\n"
    ).encode("gb2312")
    message = parse_message(raw)
    assert message.subject == "黄山旅游"
    assert message.from_ is not None and message.from_.display_name == "张三"
    assert message.text_plain.strip() == "黄山旅游天天发"
