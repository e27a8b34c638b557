"""Model inputs: what the classifier sees of a message."""

from __future__ import annotations

from collections.abc import Callable

from postwise.inbound.features import fold_accents, hash_tokens, message_tokens
from postwise.mail.parse import parse_message

RAW = (
    "From: Sam <sam.lee@gmail.com>\r\nTo: a@example.org\r\nSubject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\n"
    "Content-Type: text/plain; charset=utf-8\r\n\r\n"
    "I \u1e1feel s\u1eb7d to \u1e01lert you \u0105\u1e05out \u1eb5 couple o\u1e1f news, "
    "see https://example.com/x or write to bob@example.net 12345\r\n"
).encode()


def test_decorated_letters_fold_to_plain_words() -> None:
    assert fold_accents("I \u1e1feel s\u1eb7d") == "I feel sad"
    assert fold_accents("plain ascii") == "plain ascii"
    assert fold_accents("\u9ec4\u5c71") == "\u9ec4\u5c71"  # CJK is left alone


def test_tokens_fold_links_addresses_numbers_and_name_charsets() -> None:
    tokens = message_tokens(parse_message(RAW))
    assert "b:feel" in tokens and "b:sad" in tokens and "b:feel_sad" in tokens
    assert "b:urltoken" in tokens and "b:emailaddr" in tokens and "b:num5" in tokens
    assert "cs:utf-8" in tokens
    assert not any("example.com" in t for t in tokens if t.startswith("b:"))


def test_trace_headers_and_dates_are_not_features() -> None:
    traced = (
        b"Received: from mx.example.net by mail.example.org; Mon, 2 Mar 2026 10:00:00 +0000\r\n"
        b"X-Spam-Flag: YES\r\nDate: Mon, 02 Mar 2026 10:00:00 +0000\r\n" + RAW
    )
    assert message_tokens(parse_message(traced)) == message_tokens(parse_message(RAW))


def test_hashing_is_stable_and_counts_repeats() -> None:
    indices, counts = hash_tokens(["a", "b", "a"], 2**18)
    again, _ = hash_tokens(["a", "b", "a"], 2**18)
    assert list(indices) == list(again)
    assert sorted(counts.tolist()) == [1.0, 2.0]


def test_decorated_text_gets_a_symbol(symbols_of: Callable[[bytes], dict[str, str]]) -> None:
    decorated = "I \u1e1feel s\u1eb7d to \u1e01lert you \u1e05out \u1eb5 couple o\u1e1f news. "
    raw = b"From: x@example.net\r\nSubject: hi\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    assert "TEXT_DECORATED_LETTERS" in symbols_of(raw + (decorated * 3).encode())
    # Ordinary accented languages (German, Polish) are not decoration.
    assert "TEXT_DECORATED_LETTERS" not in symbols_of(
        raw + ("Za\u017c\u00f3\u0142\u0107 g\u0119\u015bl\u0105 ja\u017a\u0144. " * 5).encode()
    )
    assert "TEXT_DECORATED_LETTERS" not in symbols_of(
        b"From: Sam <sam.lee@gmail.com>\r\nTo: a@example.org\r\nSubject: hi\r\n\r\n"
        + "Gr\u00fc\u00dfe aus M\u00fcnchen, sch\u00f6ne Gr\u00fc\u00dfe!".encode()
    )
