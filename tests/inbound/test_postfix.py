"""Postfix for real: Debian's Postfix (a private instance on loopback ports) sends through the
Postwise SMTP gateway and through the Postwise milter to an aiosmtpd sink.

Two setups, as docs/gateway.md describes them:

* before-queue proxy: Postfix's smtpd hands each session to the gateway
  (``smtpd_proxy_filter``); the gateway relays to a second Postfix smtpd, which queues and
  sends to the sink. Rejects reach the client in-session; XFORWARD carries its address.
* milter: Postfix's smtpd asks the milter (``smtpd_milters``); headers are added, rejects
  answered in-session, quarantined mail put on Postfix's hold queue.

The policy is overridden so that verdicts are deterministic: an executable attachment rejects,
a URL with an IP host quarantines, a plain note is delivered.
"""

from __future__ import annotations

import smtplib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from gateway_harness import RunningGateway, Sink, free_ports, gateway_settings
from postfix_harness import PrivatePostfix, ensure_postfix

from postwise.inbound.policy import load_policy
from postwise.inbound.scanner import Scanner

POLICY_OVERRIDE = """
[actions]
reject = 15.0
quarantine = 10.0
add_header = 6.0

[symbols.ATTACH_EXECUTABLE]
weight = 20.0

[symbols.URL_IP_HOST]
weight = 11.0
"""

CLIENT = "127.0.0.2"  # the "internet" client; Postfix and Postwise talk over 127.0.0.1


@pytest.fixture(scope="module")
def postfix_available() -> None:
    reason = ensure_postfix()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture
def deterministic_scanner(tmp_path: Path) -> Scanner:
    override = tmp_path / "policy.toml"
    override.write_text(POLICY_OVERRIDE)
    return Scanner(load_policy(override), None)


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink().start()
    yield server
    server.stop()


def wait_for(condition: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"condition not met within {timeout:.0f} s")


def send(port: int, raw: bytes, rcpt: str = "sam.lee@example.net") -> dict[str, Any]:
    with smtplib.SMTP("127.0.0.1", port, source_address=(CLIENT, 0), timeout=60) as client:
        return dict(client.sendmail("ann.baker@example.org", [rcpt], raw))


def ham(make_message: Callable[..., bytes], marker: str) -> bytes:
    return make_message(text=f"Hello Sam,\n\nthe minutes are below. {marker}\n")


def quarantinable(make_message: Callable[..., bytes], marker: str) -> bytes:
    return make_message(text=f"Please review http://192.0.2.10/report today. {marker}\n")


def rejectable(make_message: Callable[..., bytes], marker: str) -> bytes:
    return make_message(
        text=f"Invoice attached. {marker}\n",
        attachments=(("invoice.exe", b"MZ\x90\x00" + b"\x00" * 200, "application/octet-stream"),),
    )


def test_postfix_before_queue_proxy_through_the_gateway(
    postfix_available: None,
    postwise_env: Path,
    deterministic_scanner: Scanner,
    sink: Sink,
    make_message: Callable[..., bytes],
) -> None:
    front, reinject = free_ports(2)
    gateway = RunningGateway(
        gateway_settings(postwise_env, f"127.0.0.1:{reinject}"), deterministic_scanner
    ).start()
    postfix = PrivatePostfix(
        {
            front: {"smtpd_proxy_filter": f"127.0.0.1:{gateway.port}"},
            reinject: {"smtpd_proxy_filter": "", "smtpd_authorized_xforward_hosts": "127.0.0.0/8"},
        },
        relayhost=f"[127.0.0.1]:{sink.port}",
    ).start()
    try:
        assert send(front, ham(make_message, "proxy-ham-1")) == {}
        delivered = wait_for(lambda: [m for m in sink.messages if b"proxy-ham-1" in m.raw])
        raw = delivered[0].raw
        assert b"X-Postwise-Action: no_action" in raw
        assert b"X-Postwise-Score:" in raw and b"X-Postwise-Symbols:" in raw
        # XFORWARD told the gateway who the real client was.
        assert b"by postwise.test (Postwise)" in raw
        assert f"([{CLIENT}])".encode() in raw

        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(front, rejectable(make_message, "proxy-reject-1"))
        assert refused.value.smtp_code == 550
        assert b"5.7.1" in refused.value.smtp_error
        assert b"ATTACH_EXECUTABLE" in refused.value.smtp_error

        reply = send(front, quarantinable(make_message, "proxy-quarantine-1"))
        assert reply == {}
        entries = gateway.services.quarantine.list()
        assert len(entries) == 1 and entries[0].origin == "gateway"
        assert b"proxy-quarantine-1" in gateway.services.quarantine.raw(entries[0])

        time.sleep(1.0)  # give Postfix a moment: nothing else may arrive
        markers = [m.raw for m in sink.messages]
        assert not any(b"proxy-reject-1" in m or b"proxy-quarantine-1" in m for m in markers)
    except BaseException:
        print(postfix.log()[-4000:])
        raise
    finally:
        postfix.stop()
        gateway.stop()


def test_postfix_milter(
    postfix_available: None,
    postwise_env: Path,
    deterministic_scanner: Scanner,
    sink: Sink,
    make_message: Callable[..., bytes],
) -> None:
    (front,) = free_ports(1)
    services = RunningGateway(
        gateway_settings(postwise_env, sink.address), deterministic_scanner, milter=True
    ).start()
    postfix = PrivatePostfix(
        {front: {"smtpd_milters": f"inet:127.0.0.1:{services.milter_port}"}},
        relayhost=f"[127.0.0.1]:{sink.port}",
    ).start()
    try:
        assert send(front, ham(make_message, "milter-ham-1")) == {}
        delivered = wait_for(lambda: [m for m in sink.messages if b"milter-ham-1" in m.raw])
        raw = delivered[0].raw
        assert b"X-Postwise-Action: no_action" in raw
        assert b"X-Postwise-Symbols:" in raw

        with pytest.raises(smtplib.SMTPDataError) as refused:
            send(front, rejectable(make_message, "milter-reject-1"))
        assert refused.value.smtp_code == 550
        assert b"5.7.1" in refused.value.smtp_error

        assert send(front, quarantinable(make_message, "milter-quarantine-1")) == {}
        held = wait_for(lambda: [m for m in postfix.queue() if m.get("queue_name") == "hold"])
        assert len(held) == 1
        entries = services.services.quarantine.list()
        assert len(entries) == 1
        assert entries[0].origin == "milter"
        assert entries[0].mta_queue_id == held[0]["queue_id"]

        time.sleep(1.0)
        markers = [m.raw for m in sink.messages]
        assert not any(b"milter-reject-1" in m or b"milter-quarantine-1" in m for m in markers)
    except BaseException:
        print(postfix.log()[-4000:])
        raise
    finally:
        postfix.stop()
        services.stop()
