"""Rendering: the text part, MIME assembly, RFC 8058 headers, non-ASCII subjects and the
tracking hooks."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from postwise.content.rendering import (
    audit_html,
    build_message,
    finish_html,
    html_to_text,
    message_bytes,
)
from postwise.content.templates import RenderedMessage, contact_context, load_template, render
from postwise.core.errors import TemplateError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "templates" / "welcome.toml"
UNSUB = "https://mail.example/u/tok123"


@pytest.fixture(scope="module")
def rendered() -> RenderedMessage:
    context = contact_context({"first_name": "Zoë"}, extra={"unsubscribe_url": UNSUB})
    return render(load_template(EXAMPLE), context)


def reparse(message: EmailMessage) -> EmailMessage:
    parsed = message_from_bytes(message_bytes(message), policy=policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_message_is_multipart_alternative_text_then_html(rendered: RenderedMessage) -> None:
    parsed = reparse(build_message(rendered, None, "zoe@example.com", UNSUB))
    assert parsed.get_content_type() == "multipart/alternative"
    parts = [part.get_content_type() for part in parsed.iter_parts()]
    assert parts == ["text/plain", "text/html"]
    body = parsed.get_body(("html",))
    assert body is not None and "Welcome, Zoë!" in body.get_content()
    text = parsed.get_body(("plain",))
    assert text is not None and "WELCOME, ZOË!" in text.get_content()


def test_headers_and_rfc8058_one_click(rendered: RenderedMessage) -> None:
    message = build_message(
        rendered,
        None,
        "zoe@example.com",
        unsubscribe_url=UNSUB,
        unsubscribe_mailto="unsubscribe@mail.example",
        message_id="<fixed@postwise.example>",
        date=datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC),
    )
    parsed = reparse(message)
    assert parsed["From"] == "Postwise <hello@postwise.example>"
    assert parsed["Reply-To"] == "support@postwise.example"
    assert parsed["Message-ID"] == "<fixed@postwise.example>"
    assert parsed["Date"] == "Thu, 02 Jan 2025 03:04:05 +0000"
    # folded to fit 78 columns; unfolding leaves leading white space, which is not significant
    assert parsed["List-Unsubscribe"].strip() == f"<{UNSUB}>, <mailto:unsubscribe@mail.example>"
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_generated_message_id_uses_the_sender_domain(rendered: RenderedMessage) -> None:
    parsed = reparse(build_message(rendered, "News <news@shop.example>", "a@example.com"))
    assert parsed["Message-ID"].endswith("@shop.example>")
    assert parsed["From"] == "News <news@shop.example>"
    assert "List-Unsubscribe" not in parsed and "List-Unsubscribe-Post" not in parsed


def test_mailto_only_has_no_one_click_post(rendered: RenderedMessage) -> None:
    parsed = reparse(
        build_message(rendered, None, "a@example.com", unsubscribe_mailto="u@mail.example")
    )
    assert parsed["List-Unsubscribe"] == "<mailto:u@mail.example>"
    assert "List-Unsubscribe-Post" not in parsed


@pytest.mark.parametrize("url", ["http://mail.example/u/1", "/u/1", "https://a.example/<x>"])
def test_one_click_needs_an_absolute_https_url(rendered: RenderedMessage, url: str) -> None:
    with pytest.raises(TemplateError, match="RFC 8058"):
        build_message(rendered, None, "a@example.com", unsubscribe_url=url)


def test_non_ascii_subject_is_rfc2047_encoded(rendered: RenderedMessage) -> None:
    raw = message_bytes(build_message(rendered, None, "zoe@example.com"))
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    header_block.decode("ascii")  # every header line is 7-bit
    assert b"=?utf-8?" in header_block
    assert reparse(build_message(rendered, None, "z@example.com"))["Subject"] == (
        "Welcome to Postwise, Zoë!"
    )


def test_body_parts_are_seven_bit(rendered: RenderedMessage) -> None:
    raw = message_bytes(build_message(rendered, None, "zoe@example.com"))
    raw.decode("ascii")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998


def test_link_rewriter_maps_links_but_not_unsubscribe(rendered: RenderedMessage) -> None:
    seen: list[str] = []

    def track(url: str) -> str:
        seen.append(url)
        return "https://t.example/c?u=" + url.replace(":", "%3A").replace("/", "%2F")

    parsed = reparse(build_message(rendered, None, "a@example.com", UNSUB, link_rewriter=track))
    html_part = parsed.get_body(("html",))
    text_part = parsed.get_body(("plain",))
    assert html_part is not None and text_part is not None
    html, text = html_part.get_content(), text_part.get_content()
    assert "https://postwise.example/start" in seen and UNSUB not in seen
    assert 'href="https://t.example/c?u=https%3A%2F%2Fpostwise.example%2Fstart"' in html
    assert f'href="{UNSUB}"' in html
    assert "Get started (https://t.example/c?u=https%3A%2F%2Fpostwise.example%2Fstart)" in text


def test_pixel_is_added_last_in_body(rendered: RenderedMessage) -> None:
    parsed = reparse(
        build_message(rendered, None, "a@example.com", pixel_url="https://t.example/o/1.gif")
    )
    part = parsed.get_body(("html",))
    assert part is not None
    html = part.get_content()
    pixel = html.index('<img src="https://t.example/o/1.gif" width="1" height="1" alt=""')
    assert pixel < html.lower().rindex("</body>")
    assert html.lower().rindex("<table") < pixel


def test_header_injection_in_recipient_is_refused(rendered: RenderedMessage) -> None:
    with pytest.raises(TemplateError, match="headers"):
        build_message(rendered, None, "a@example.com\r\nBcc: b@example.com")


def test_html_to_text_lists_images_and_links() -> None:
    html = (
        "<html><head><style>p{}</style><title>T</title></head><body>"
        "<h2>Deals</h2><ul><li>One</li><li>Two</li></ul>"
        '<p>See <a href="https://a.example/x">our shop</a> or '
        '<a href="https://a.example/y">https://a.example/y</a>.</p>'
        '<img src="x.png" alt="Big sale"><img src="spacer.gif" alt="">'
        '<div style="display: none">hidden</div><p>line<br>break</p></body></html>'
    )
    text = html_to_text(html)
    assert "DEALS" in text
    assert "- One\n" in text and "- Two" in text
    assert "our shop (https://a.example/x)" in text
    assert "https://a.example/y (https://a.example/y)" not in text
    assert "Big sale" in text and "hidden" not in text and "T\n" not in text
    assert "line\nbreak" in text


def test_finish_html_inlines_and_keeps_media_queries() -> None:
    page = "<html><head></head><body><p class='a'>x</p></body></html>"
    css = ".a { color: red } @media (max-width: 600px) { .a { color: blue !important } }"
    html = finish_html(page, css, "Preview text")
    assert '<p class="a" style="color: red;">x</p>' in html
    assert "@media (max-width: 600px)" in html
    assert html.index("Preview text") < html.index("<p class")


def test_audit_flags_only_problems() -> None:
    html = (
        '<a href="https://ok.example/">ok</a><a href="">empty</a><a>none</a>'
        '<img src="a.png" alt="A"><img src="b.png">'
    )
    found = [(code, snippet) for code, _, snippet in audit_html(html)]
    assert found == [("broken-link", "empty"), ("broken-link", "none"), ("missing-alt", "b.png")]
