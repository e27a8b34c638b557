"""The fast paths of message assembly give exactly what the slow, general ones give: the wire
bytes of ``message_bytes`` are the email generator's, plain addresses are written as the
address parser would, and tracked links carry the tokens ``Tracker.sign`` makes."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from email.message import EmailMessage, Message
from email.policy import SMTP, compat32
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from postwise.content import rendering
from postwise.content.rendering import build_message, message_bytes
from postwise.content.templates import contact_context, load_template, render
from postwise.engage.tracking import Tracker, TrackingClaims

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "templates" / "welcome.toml"


def generator_bytes(message: EmailMessage) -> bytes:
    return message.as_bytes(policy=rendering._WIRE)


@pytest.mark.parametrize(
    ("name", "recipient", "unsubscribe", "mailto", "headers", "fast"),
    [
        ("Zoë", "zoe@example.com", "https://t.example/u/abc", None, None, True),
        (None, "Søren Kierkegaard <soren@example.dk>", None, "unsub@example.com", None, True),
        # folded (multi-line) fields: the generator writes those
        ("A" * 90, "a.b+c@d.example.org", "https://t.example/u/" + "x" * 400, None, {}, False),
        ("Li", "li@example.com", None, None, {"X-Campaign": "Été " + "long " * 30}, False),
    ],
)
def test_built_messages_serialise_as_the_generator_does(
    name: str | None,
    recipient: str,
    unsubscribe: str | None,
    mailto: str | None,
    headers: dict[str, str] | None,
    fast: bool,
) -> None:
    attributes = {"first_name": name} if name else {}
    rendered = render(
        load_template(EXAMPLE),
        contact_context(attributes, extra={"unsubscribe_url": unsubscribe or "https://x.example"}),
    )
    message = build_message(
        rendered,
        None,
        recipient,
        unsubscribe,
        mailto,
        date=datetime(2026, 3, 1, 9, 30, tzinfo=UTC),
        headers=headers,
    )
    assert message_bytes(message) == generator_bytes(message)
    assert (rendering._plain_wire(message) is not None) is fast


_TEXT = st.text(
    alphabet=st.sampled_from(list("abcXYZ09 \t,;:=\"'()<>@.-\r\né\x0b")),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    fields=st.lists(st.tuples(st.sampled_from(["Subject", "X-A", "To"]), _TEXT), max_size=5),
    content_type=st.sampled_from(
        [
            'multipart/alternative; boundary="=_pw_1"',
            "multipart/mixed",
            "multipart/signed; boundary=b",
            "text/plain",
            "image/png",
        ]
    ),
    bodies=st.lists(_TEXT, max_size=3),
    preamble=st.none() | _TEXT,
    smtp_policy=st.booleans(),
)
def test_any_message_serialises_as_the_generator_does(
    fields: list[tuple[str, str]],
    content_type: str,
    bodies: list[str],
    preamble: str | None,
    smtp_policy: bool,
) -> None:
    message = EmailMessage(policy=compat32)
    for name, value in fields:
        message[name] = value
    message["Content-Type"] = content_type
    if content_type.startswith("multipart/"):
        parts: list[Message | str] = []
        for body in bodies:
            part = EmailMessage(policy=compat32)
            part["Content-Type"] = 'text/plain; charset="utf-8"'
            part.set_payload(body)
            parts.append(part)
        message.set_payload(parts)
        message.preamble = preamble
    elif bodies:
        message.set_payload(bodies[0])
    if smtp_policy:
        message.policy = SMTP
    try:
        expected: bytes | type[BaseException] = generator_bytes(message)
    except Exception as error:  # the generator refuses some of these; so must we
        expected = type(error)
    try:
        got: bytes | type[BaseException] = message_bytes(message)
    except Exception as error:
        got = type(error)
    assert got == expected


@pytest.mark.parametrize(
    "address",
    ["a@b.example", "first.last+x@mail.example.org", "a_b-c@x-y.example", "A1@B2.EXAMPLE"],
)
def test_plain_addresses_are_written_as_the_parser_would(address: str) -> None:
    assert rendering._PLAIN_ADDRESS.fullmatch(address)
    assert rendering._address_field("To", address) == rendering._parsed_address_field("To", address)


def test_rewritten_links_carry_the_tokens_sign_makes() -> None:
    tracker = Tracker(b"k" * 32, "https://t.example", clock=lambda: 1_700_000_000.5)
    contact = "a" * 64
    html = '<a href="https://x.example/é?a=1&amp;b=2">x</a><a href=https://y.example/>y</a>'
    rewritten = tracker.add_tracking(html, 'spring "26"', "m1", contact, "Été")
    tokens = [part.split('"')[0] for part in rewritten.split("/t/c/")[1:]]
    for link, (token, url) in enumerate(
        zip(tokens, ["https://x.example/é?a=1&b=2", "https://y.example/"], strict=True)
    ):
        claims = TrackingClaims(
            "click", 'spring "26"', "m1", "Été", contact, 1_700_000_000, link, url
        )
        assert token == tracker.sign(claims)
        assert tracker.verify(token, "click") == claims
        payload = token.split(".")[0]
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        assert (
            raw
            == json.dumps(
                [1, "c", 'spring "26"', "m1", "Été", contact, 1_700_000_000, link, url],
                separators=(",", ":"),
                ensure_ascii=False,
            ).encode()
        )
