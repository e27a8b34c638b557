"""Rule checks, functional style: small hand-written messages in, expected symbols out.

Every rule symbol of the header, URL, attachment, content and MIME checks has a positive case
and a realistic negative one. Messages run through a model-less scanner, so only rule symbols
appear and the results do not depend on any trained model.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from postwise.inbound.scanner import Scanner
from postwise.mail.parse import ParseLimits

Build = Callable[..., bytes]

MZ = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 240
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<<>>\n%%EOF\n"
FILLER = (
    "Please find the agenda for next week below; the budget review moves to Thursday and the "
    "supplier call stays on Monday morning. "
)


def _html(body: str) -> str:
    return f"<html><body><p>{FILLER}</p>{body}</body></html>"


def _with_raw_header(raw: bytes, line: bytes) -> bytes:
    return line + b"\n" + raw


def _nested(depth: int) -> bytes:
    body = b"Content-Type: text/plain\n\nthe innermost part\n"
    for level in range(depth):
        boundary = f"level{level}".encode()
        body = (
            b"Content-Type: multipart/mixed; boundary=" + boundary + b"\n\n"
            b"--" + boundary + b"\n" + body + b"\n--" + boundary + b"--\n"
        )
    return (
        b"From: Ann Baker <ann.baker@example.org>\nTo: sam.lee@example.net\n"
        b"Subject: nested\nDate: Tue, 03 Mar 2026 10:00:00 +0000\n"
        b"Message-ID: <nested.1@example.org>\nMIME-Version: 1.0\n" + body
    )


def _many_parts(count: int) -> bytes:
    parts = b"".join(
        b"--many\nContent-Type: text/plain\n\npart " + str(i).encode() + b"\n" for i in range(count)
    )
    return (
        b"From: Ann Baker <ann.baker@example.org>\nTo: sam.lee@example.net\n"
        b"Subject: parts\nDate: Tue, 03 Mar 2026 10:00:00 +0000\n"
        b"Message-ID: <parts.1@example.org>\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/mixed; boundary="many"\n\n' + parts + b"--many--\n"
    )


# ------------------------------------------------------------------------------ positive cases
# (symbol, builder given make_message and make_zip, evidence fragment)

POSITIVE: list[tuple[str, Callable[[Build, Callable[[dict[str, bytes]], bytes]], bytes], str]] = [
    # headers
    ("MISSING_DATE", lambda mk, z: mk(headers={"Date": None}), "no Date"),
    (
        "INVALID_DATE",
        lambda mk, z: _with_raw_header(mk(headers={"Date": None}), b"Date: yesterday at noon"),
        "yesterday at noon",
    ),
    ("MISSING_MID", lambda mk, z: mk(headers={"Message-ID": None}), "no Message-ID"),
    ("INVALID_MID", lambda mk, z: mk(headers={"Message-ID": "no-angle-brackets"}), "no-angle"),
    ("MISSING_FROM", lambda mk, z: mk(headers={"From": None}), "no usable From"),
    ("MISSING_TO", lambda mk, z: mk(headers={"To": None}), "no To or Cc"),
    (
        "REPLYTO_DOMAIN_MISMATCH",
        lambda mk, z: mk(headers={"Reply-To": "billing@example-partner.com"}),
        "Reply-To example-partner.com",
    ),
    (
        "REPLYTO_FREEMAIL_MISMATCH",
        lambda mk, z: mk(
            headers={
                "From": "Ann Baker <ceo@example.org>",
                "Reply-To": "ceo.private.office@gmail.com",
            }
        ),
        "Reply-To gmail.com",
    ),
    (
        "RETURNPATH_MISMATCH",
        lambda mk, z: mk(headers={"Return-Path": "<bounce-77@bulk-mailer-service.net>"}),
        "Return-Path bulk-mailer-service.net",
    ),
    (
        "FROM_NAME_HAS_ADDRESS",
        lambda mk, z: mk(headers={"From": '"support@paypal.com" <help@evil-sender.net>'}),
        "support@paypal.com",
    ),
    (
        "FROM_NAME_IMPERSONATES_DOMAIN",
        lambda mk, z: mk(headers={"From": '"hmrc.gov.uk Refunds" <refund@tax-portal.net>'}),
        "hmrc.gov.uk",
    ),
    (
        "FROM_NAME_BRAND_MISMATCH",
        lambda mk, z: mk(headers={"From": "Netflix Billing <billing@nflx-account-help.com>"}),
        "netflix",
    ),
    # urls
    (
        "URL_IP_HOST",
        lambda mk, z: mk(html=_html('<a href="http://203.0.113.7/login.php">Sign in</a>')),
        "203.0.113.7",
    ),
    (
        "URL_IP_HOST",
        lambda mk, z: mk(text="Your parcel: http://3405803783/track?id=5531 (decimal IP)\n"),
        "3405803783",
    ),
    (
        "URL_ANCHOR_MISMATCH",
        lambda mk, z: mk(
            html=_html('<a href="https://secure-login-check.net/x">www.mybank.com/login</a>')
        ),
        "text shows mybank.com, link goes to secure-login-check.net",
    ),
    ("URL_SHORTENER", lambda mk, z: mk(text="Details: https://bit.ly/3xYzAbc\n"), "bit.ly"),
    (
        "URL_PUNYCODE",
        lambda mk, z: mk(text="Sign in: http://xn--pypal-4ve.com/signin\n"),
        "xn--pypal-4ve.com",
    ),
    (
        "URL_UNICODE_HOST",
        # the "a" of paypal is Cyrillic U+0430
        lambda mk, z: mk(text="Sign in: http://p\u0430ypal.com/signin\n"),
        "p\u0430ypal.com",
    ),
    (
        "URL_LOOKALIKE_DOMAIN",
        lambda mk, z: mk(text="Sign in: https://www.paypa1.com/signin\n"),
        "looks like paypal",
    ),
    (
        "URL_BRAND_IN_SUBDOMAIN",
        lambda mk, z: mk(text="Sign in: http://paypal.com.secure-account-check.net/signin\n"),
        "names paypal but is secure-account-check.net",
    ),
    (
        "URL_USERINFO",
        lambda mk, z: mk(text="Sign in: http://www.paypal.com@login-check.net/signin\n"),
        "www.paypal.com@login-check.net",
    ),
    (
        "URL_OBFUSCATED",
        lambda mk, z: mk(text="Get it from hxxp://malware-drop[.]net/payload now\n"),
        "malware-drop.net",
    ),
    (
        "URL_MANY_DOMAINS",
        lambda mk, z: mk(text="".join(f"https://www.site{i}-offers.com/deal\n" for i in range(12))),
        "12 distinct domains",
    ),
    (
        "HTML_FORM_ACTION",
        lambda mk, z: mk(
            html=_html(
                '<form action="https://collect.account-check.net/post" method="post">'
                '<input name="user"><input type="password" name="pw"></form>'
            )
        ),
        "collect.account-check.net",
    ),
    # attachments
    (
        "ATTACH_EXECUTABLE",
        lambda mk, z: mk(attachments=(("setup.exe", MZ, "application/octet-stream"),)),
        "setup.exe",
    ),
    (
        "ATTACH_EXECUTABLE",  # no telling name: recognised by its content
        lambda mk, z: mk(attachments=(("update.dat", MZ, "application/octet-stream"),)),
        "update.dat",
    ),
    (
        "ATTACH_DOUBLE_EXT",
        lambda mk, z: mk(attachments=(("invoice.pdf.exe", MZ, "application/octet-stream"),)),
        "invoice.pdf.exe",
    ),
    (
        "ATTACH_MACRO_DOC",
        lambda mk, z: mk(
            attachments=(
                (
                    "budget.docm",
                    z({"word/document.xml": b"<w/>", "word/vbaProject.bin": b"\x00"}),
                    "application/vnd.ms-word.document.macroEnabled.12",
                ),
            )
        ),
        "budget.docm",
    ),
    (
        "ATTACH_ARCHIVE_EXECUTABLE",
        lambda mk, z: mk(
            attachments=(
                (
                    "documents.zip",
                    z({"readme.txt": b"open me", "invoice.exe": MZ}),
                    "application/zip",
                ),
            )
        ),
        "documents.zip: invoice.exe",
    ),
    (
        "ATTACH_HTML",
        lambda mk, z: mk(
            attachments=(("statement.html", b"<html><body>Log in</body></html>", "text/html"),)
        ),
        "statement.html",
    ),
    (
        "ATTACH_TYPE_MISMATCH",
        lambda mk, z: mk(
            attachments=(("photo.jpg", z({"payload.js": b"WScript.Echo(1)"}), "image/jpeg"),)
        ),
        "photo.jpg is application/zip",
    ),
    # content
    (
        "HTML_ONLY",
        lambda mk, z: mk(text=None, html=_html("<p>Regards, Ann</p>")),
        "no text/plain",
    ),
    (
        "HTML_HIDDEN_TEXT",
        lambda mk, z: mk(
            html=_html(
                '<div style="display:none">'
                + "invoice statement meeting report family garden weather " * 6
                + "</div>"
            )
        ),
        "hidden of",
    ),
    ("EMPTY_BODY", lambda mk, z: mk(text=""), "no readable text"),
    (
        "HTML_IMAGE_ONLY",
        lambda mk, z: mk(
            text="offer",
            html='<p><a href="https://shop.example.com/"><img src="https://cdn.example.com/o.png">'
            "</a></p>",
        ),
        "images",
    ),
    # mime
    (
        "MIME_BAD_CHARSET",
        lambda mk, z: mk().replace(b'charset="utf-8"', b'charset="x-no-such"'),
        "MIME_UNKNOWN_CHARSET",
    ),
    (
        "HEADER_BAD_ENCODING",
        lambda mk, z: _with_raw_header(
            mk(headers={"Subject": None}), b"Subject: =?x-no-such-charset?B?SGVsbG8=?="
        ),
        "HEADER_BAD_ENCODING",
    ),
    (
        "MIME_BAD_TRANSFER_ENCODING",
        lambda mk, z: (
            b"From: Ann Baker <ann.baker@example.org>\nTo: sam.lee@example.net\n"
            b"Subject: b64\nDate: Tue, 03 Mar 2026 10:00:00 +0000\n"
            b"Message-ID: <b64.1@example.org>\nMIME-Version: 1.0\n"
            b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\nSGVsbG8gV29ybGQ\n"
        ),
        "MIME_INVALID_BASE64_PADDING",
    ),
    (
        "MIME_MALFORMED",
        lambda mk, z: (
            b"From: Ann Baker <ann.baker@example.org>\nTo: sam.lee@example.net\n"
            b"Subject: parts\nDate: Tue, 03 Mar 2026 10:00:00 +0000\n"
            b"Message-ID: <nob.1@example.org>\nMIME-Version: 1.0\n"
            b"Content-Type: multipart/mixed\n\nno boundary anywhere\n"
        ),
        "MIME_NO_BOUNDARY_IN_MULTIPART",
    ),
]


@pytest.mark.parametrize(
    ("symbol", "build", "evidence"),
    POSITIVE,
    ids=[f"{symbol}-{i}" for i, (symbol, _, _) in enumerate(POSITIVE)],
)
def test_symbol_fires(
    symbol: str,
    build: Callable[..., bytes],
    evidence: str,
    make_message: Build,
    make_zip: Callable[[dict[str, bytes]], bytes],
    symbols_of: Callable[[bytes], dict[str, str]],
) -> None:
    found = symbols_of(build(make_message, make_zip))
    assert symbol in found, f"{symbol} not in {sorted(found)}"
    assert evidence in found[symbol]


# Weak signals the ML model weighs on data; the policy gives them no points of their own.
MODEL_INPUT_ONLY = {
    "HTML_ONLY",
    "REPLYTO_DOMAIN_MISMATCH",
    "MISSING_TO",
    "MISSING_MID",
    "INVALID_MID",
    "URL_MANY_DOMAINS",
    "FROM_FREEMAIL",
    "FROM_LOCALPART_GENERATED",
}


def test_positive_cases_use_symbols_the_policy_weighs(policy: Any) -> None:
    for symbol, _, _ in POSITIVE:
        assert symbol in policy.symbols, symbol
        if symbol in MODEL_INPUT_ONLY:
            assert policy.symbols[symbol].weight == 0, symbol
        else:
            assert policy.symbols[symbol].weight > 0, symbol


def _risky(found: dict[str, str], policy: Any) -> set[str]:
    """The symbols that add to the score (new score-lowering symbols may come and go)."""
    return {name for name in found if name in policy.symbols and policy.symbols[name].weight > 0}


def test_baseline_message_has_no_rule_symbols(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]], policy: Any
) -> None:
    found = symbols_of(make_message())
    assert not _risky(found, policy), found
    assert set(found) <= set(policy.symbols)


# ------------------------------------------------------------------------------ headers: negatives


@pytest.mark.parametrize(
    "headers",
    [
        {"Reply-To": "Ann Baker <ann@support.example.org>"},  # same registered domain
        {"Return-Path": "<bounces+ann=example.net@bounces.example.org>"},
        {"From": "PayPal <service@paypal.com>"},  # the brand sending for itself
        {"From": "PayPal Deutschland <service@paypal.de>"},  # own label, other ccTLD
        {"From": "Ann at example.org <ann.baker@example.org>"},
        {"From": '"ann.baker@example.org" <ann.baker@example.org>'},
    ],
    ids=[
        "replyto-subdomain",
        "returnpath-subdomain",
        "brand-own-domain",
        "brand-own-label",
        "name-shows-own-domain",
        "name-shows-own-address",
    ],
)
def test_header_checks_accept_ordinary_senders(
    headers: dict[str, str],
    make_message: Build,
    symbols_of: Callable[[bytes], dict[str, str]],
    policy: Any,
) -> None:
    found = symbols_of(make_message(headers=headers))
    assert not _risky(found, policy), found


def test_freemail_to_freemail_reply_is_a_plain_domain_mismatch(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    found = symbols_of(
        make_message(headers={"From": "Ann <ann.b@gmail.com>", "Reply-To": "ann.b@yahoo.com"})
    )
    assert "REPLYTO_DOMAIN_MISMATCH" in found
    assert "REPLYTO_FREEMAIL_MISMATCH" not in found


def test_undisclosed_recipients_count_as_missing_to(
    fixture_bytes: Callable[[str], bytes], symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    found = symbols_of(fixture_bytes("corpus/spam/lottery.eml"))
    assert "MISSING_TO" in found
    assert found["REPLYTO_FREEMAIL_MISMATCH"] == "From lotto-winners-intl.info, Reply-To gmail.com"


# ------------------------------------------------------------------------------ urls: negatives

URL_RISK = {
    "URL_IP_HOST",
    "URL_ANCHOR_MISMATCH",
    "URL_SHORTENER",
    "URL_PUNYCODE",
    "URL_UNICODE_HOST",
    "URL_LOOKALIKE_DOMAIN",
    "URL_BRAND_IN_SUBDOMAIN",
    "URL_USERINFO",
    "URL_OBFUSCATED",
    "URL_MANY_DOMAINS",
    "HTML_FORM_ACTION",
}


def test_newsletter_with_many_links_to_its_own_domain_is_clean(
    fixture_bytes: Callable[[str], bytes], symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    found = symbols_of(fixture_bytes("corpus/ham/newsletter.eml"))
    assert not URL_RISK & found.keys(), found
    # its short hidden preheader and logo image are normal newsletter craft
    assert not {"HTML_HIDDEN_TEXT", "HTML_IMAGE_ONLY", "HTML_ONLY"} & found.keys(), found


@pytest.mark.parametrize(
    "html",
    [
        # anchor text names the same registered domain as the (tracking) link
        '<a href="https://click.example-shop.com/t/9?u=1">www.example-shop.com/orders</a>',
        '<a href="https://www.example-shop.com/orders">https://example-shop.com/orders</a>',
        '<a href="https://shop.example.co.uk/">example.co.uk</a>',
        # anchor text that is not a domain at all
        '<a href="https://www.example-shop.com/orders">View your order</a>',
        # a mail link showing its own address
        '<a href="mailto:help@example.org">help@example.org</a>',
        # a brand's own site, and the brand's name in an ordinary path
        '<a href="https://www.paypal.com/myaccount/summary">paypal.com</a>',
        '<a href="https://www.example.org/blog/paypal-fees-explained">our post on fees</a>',
        # an address in the query string after a path is not userinfo
        '<a href="https://lists.example.org/unsubscribe/?email=sam@example.net">Unsubscribe</a>',
    ],
    ids=[
        "tracking-subdomain",
        "scheme-in-anchor",
        "cctld",
        "plain-words",
        "mailto",
        "brand-own-site",
        "brand-in-path",
        "address-in-query",
    ],
)
def test_ordinary_links_raise_no_url_symbols(
    html: str, make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    found = symbols_of(make_message(html=_html(html)))
    assert not URL_RISK & found.keys(), found


def test_nine_link_domains_are_not_many(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    text = "".join(f"https://www.partner{i}.org/\n" for i in range(9))
    assert "URL_MANY_DOMAINS" not in symbols_of(make_message(text=text))


def test_image_hosts_do_not_count_towards_many_domains(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    images = "".join(f'<img src="https://cdn{i}.imagehost{i}.net/p.png">' for i in range(12))
    assert "URL_MANY_DOMAINS" not in symbols_of(make_message(html=_html(images)))


def test_url_symbols_appear_once_with_the_first_evidence(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    raw = make_message(text="http://203.0.113.7/a\nhttp://203.0.113.8/b\n")
    found = symbols_of(raw)
    assert found["URL_IP_HOST"] == "http://203.0.113.7/a"


def test_address_in_query_without_path_is_not_userinfo(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    raw = make_message(text="Unsubscribe: https://lists.example.org?email=sam@example.net\n")
    assert "URL_USERINFO" not in symbols_of(raw)


def test_brand_in_subdomain_on_unlisted_suffix(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    found = symbols_of(make_message(text="Sign in: http://paypal.com.evil.example/signin\n"))
    assert "URL_BRAND_IN_SUBDOMAIN" in found


def test_anchor_domain_over_ip_link_is_a_mismatch(
    fixture_bytes: Callable[[str], bytes], symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    found = symbols_of(fixture_bytes("corpus/phish/bank_login.eml"))
    assert "URL_IP_HOST" in found
    assert "URL_ANCHOR_MISMATCH" in found


# ------------------------------------------------------------ attachments: negatives

ATTACH_SYMBOLS = {
    "ATTACH_EXECUTABLE",
    "ATTACH_MACRO_DOC",
    "ATTACH_DOUBLE_EXT",
    "ATTACH_ARCHIVE_EXECUTABLE",
    "ATTACH_HTML",
    "ATTACH_TYPE_MISMATCH",
}


def test_ordinary_attachments_raise_no_symbols(
    make_message: Build,
    make_zip: Callable[[dict[str, bytes]], bytes],
    symbols_of: Callable[[bytes], dict[str, str]],
) -> None:
    jpeg = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\x00" * 64
    raw = make_message(
        attachments=(
            ("report.pdf", PDF, "application/pdf"),
            (
                "holiday.zip",
                make_zip({"beach.jpg": jpeg, "notes.txt": b"day one"}),
                "application/zip",
            ),
            (
                "budget.xlsx",
                make_zip({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"}),
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            ),
            ("notes.txt", b"shopping list: apples, bread", "text/plain"),
            ("beach.jpg", jpeg, "image/jpeg"),
        )
    )
    found = symbols_of(raw)
    assert not ATTACH_SYMBOLS & found.keys(), found


def test_dotted_name_that_is_still_a_document_is_not_a_double_extension(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    raw = make_message(attachments=(("minutes.2026.03.pdf", PDF, "application/pdf"),))
    assert not ATTACH_SYMBOLS & symbols_of(raw).keys()


def test_double_extension_executable_gets_both_symbols(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    raw = make_message(attachments=(("invoice.pdf.exe", MZ, "application/octet-stream"),))
    found = symbols_of(raw)
    assert {"ATTACH_EXECUTABLE", "ATTACH_DOUBLE_EXT"} <= found.keys()


def test_zip_holding_macro_document_is_flagged(
    make_message: Build,
    make_zip: Callable[[dict[str, bytes]], bytes],
    symbols_of: Callable[[bytes], dict[str, str]],
) -> None:
    raw = make_message(
        attachments=(("orders.zip", make_zip({"order-list.xlsm": b"PK"}), "application/zip"),)
    )
    assert symbols_of(raw)["ATTACH_ARCHIVE_EXECUTABLE"] == "orders.zip: order-list.xlsm"


# ------------------------------------------------------------------------------ content: negatives


def test_alternative_with_text_part_is_not_html_only(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    found = symbols_of(make_message(html=_html("<p>Regards, Ann</p>")))
    assert "HTML_ONLY" not in found


def test_short_hidden_preheader_is_not_hidden_text(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    html = _html('<span style="display:none;max-height:0">Your March statement</span>')
    assert "HTML_HIDDEN_TEXT" not in symbols_of(make_message(html=html))


def test_attachment_only_message_is_not_empty(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    raw = make_message(text="", attachments=(("scan.pdf", PDF, "application/pdf"),))
    assert "EMPTY_BODY" not in symbols_of(raw)


def test_image_with_real_text_is_not_image_only(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    html = _html('<img src="https://cdn.example.org/logo.png" alt="logo">')
    assert "HTML_IMAGE_ONLY" not in symbols_of(make_message(html=html))


# ------------------------------------------------------------------------------ mime


def test_clean_fixture_messages_have_no_mime_symbols(
    corpus_dir: Path, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    for path in sorted(corpus_dir.rglob("*.eml")):
        found = symbols_of(path.read_bytes())
        assert not [s for s in found if s.startswith("MIME_") or s == "HEADER_BAD_ENCODING"], (
            path.name,
            found,
        )


def test_mime_too_deep_through_the_default_scanner(
    symbols_of: Callable[[bytes], dict[str, str]],
) -> None:
    assert "MIME_TOO_DEEP" in symbols_of(_nested(25))  # default max_mime_depth is 20
    assert "MIME_TOO_DEEP" not in symbols_of(_nested(10))


def test_mime_too_deep_with_a_tight_limit_still_reads_headers(policy: Any) -> None:
    scanner = Scanner(policy, None, ParseLimits(max_depth=3))
    verdict = scanner.scan(_nested(5))
    names = {s.name for s in verdict.symbols}
    assert "MIME_TOO_DEEP" in names
    assert "MISSING_FROM" not in names  # the headers were still read
    assert verdict.id == "nested.1@example.org"


def test_extremely_deep_nesting_is_a_symbol_not_a_crash(
    symbols_of: Callable[[bytes], dict[str, str]],
) -> None:
    assert "MIME_TOO_DEEP" in symbols_of(_nested(1500))


def test_mime_too_many_parts(policy: Any) -> None:
    scanner = Scanner(policy, None, ParseLimits(max_parts=5))
    names = {s.name for s in scanner.scan(_many_parts(12)).symbols}
    assert "MIME_TOO_MANY_PARTS" in names
    assert "MIME_TOO_MANY_PARTS" not in {s.name for s in scanner.scan(_many_parts(3)).symbols}


def test_valid_base64_body_has_no_transfer_encoding_symbol(
    symbols_of: Callable[[bytes], dict[str, str]],
) -> None:
    raw = (
        b"From: Ann Baker <ann.baker@example.org>\nTo: sam.lee@example.net\n"
        b"Subject: b64\nDate: Tue, 03 Mar 2026 10:00:00 +0000\n"
        b"Message-ID: <b64.2@example.org>\nMIME-Version: 1.0\n"
        b"Content-Type: text/plain\nContent-Transfer-Encoding: base64\n\n"
        + base64.encodebytes(b"Hello World, the minutes are attached.")
    )
    assert "MIME_BAD_TRANSFER_ENCODING" not in symbols_of(raw)


def test_well_encoded_subject_is_not_a_bad_encoding(
    make_message: Build, symbols_of: Callable[[bytes], dict[str, str]]
) -> None:
    raw = _with_raw_header(
        make_message(headers={"Subject": None}), b"Subject: =?utf-8?B?R3LDvMOfZSBhdXMgS8O2bG4=?="
    )
    assert "HEADER_BAD_ENCODING" not in symbols_of(raw)
