"""Header work shared by the gateway and the milter: folding, prepending, and removing
Authentication-Results forged in our name."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from postwise.inbound.decision import fold_header, without_forged_results

MESSAGE = (
    b"Received: from a by b; Tue, 03 Mar 2026 10:00:00 +0000\r\n"
    b"Authentication-Results: MX.Example.NET 1; spf=pass smtp.mailfrom=x.example;\r\n"
    b" dkim=pass header.d=x.example\r\n"
    b"Authentication-Results: other.example; dmarc=fail header.from=x.example\r\n"
    b"Subject: hi\r\n"
    b"\r\n"
    b"Authentication-Results: mx.example.net; this line is body text\r\n"
)


def test_only_fields_claiming_our_authserv_id_go() -> None:
    cleaned = without_forged_results(MESSAGE, "mx.example.net")
    assert b"spf=pass" not in cleaned and b"dkim=pass" not in cleaned
    assert b"Authentication-Results: other.example; dmarc=fail" in cleaned
    assert cleaned.startswith(b"Received: from a by b;")
    assert cleaned.endswith(
        b"\r\n\r\nAuthentication-Results: mx.example.net; this line is body text\r\n"
    )


def test_a_message_without_such_fields_is_returned_unchanged() -> None:
    assert without_forged_results(MESSAGE, "postwise.test") is MESSAGE
    assert without_forged_results(b"", "postwise.test") == b""


@given(st.binary(max_size=2000), st.sampled_from(["mx.example.net", "postwise.test"]))
def test_any_input_keeps_its_body_and_never_grows(raw: bytes, authserv_id: str) -> None:
    cleaned = without_forged_results(raw, authserv_id)
    assert len(cleaned) <= len(raw)
    if b"\r\n\r\n" in raw:
        assert cleaned.endswith(raw[raw.find(b"\r\n\r\n") + 2 :])


def test_fold_header_keeps_lines_short() -> None:
    folded = fold_header("X-Postwise-Symbols", ", ".join(f"SYMBOL_{n}=1.00" for n in range(40)))
    assert all(len(line) <= 78 for line in folded.split(b"\r\n"))
    assert folded.endswith(b"\r\n")
