"""What Postwise signs and seals verifies with implementations that share no code with it:

* OpenDKIM's ``opendkim-testmsg`` (Debian ``opendkim-tools``; C, libopendkim) for DKIM
  signatures, rsa-sha256 and ed25519-sha256. It reads the system resolver configuration and
  asks port 53, so it runs in a private mount namespace whose ``/etc/resolv.conf`` names a
  loopback address where a dnslib server answers from the zone-file lines that
  :func:`~postwise.auth.dkim.dns_record` prints (which checks those lines too);
* Perl's Mail::DKIM (Debian ``libmail-dkim-perl``) for DKIM rsa-sha256 and for ARC chains,
  its resolver pointed at the loopback ZoneServer. (Debian 12's Mail::DKIM predates its
  ed25519 support, hence OpenDKIM for ed25519.)

Missing packages are installed with apt-get when running as root (as CI does); otherwise, or
when a namespace cannot be made, the tests are skipped with the reason.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dnslib.server import DNSLogger, DNSServer
from dnslib.zoneresolver import ZoneResolver
from typer.testing import CliRunner

from postwise.auth.arc import seal_arc
from postwise.auth.dkim import dns_record, generate_key, sign_dkim
from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.cli import app

MESSAGE = (
    b"From: Ann Baker <ann@example.com>\r\n"
    b"To: Sam Lee <sam@example.org>\r\n"
    b"Subject: Independent check\r\n"
    b"Date: Mon, 01 Jan 2024 09:00:00 +0000\r\n"
    b"Message-ID: <ind1@example.com>\r\n"
    b"MIME-Version: 1.0\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n"
    b"\r\n"
    b"Signed by Postwise,  checked   by others.\r\n"
    b"\r\n"
)
RSA_KEY, RSA_TXT = generate_key("rsa", 2048)
ED_KEY, ED_TXT = generate_key("ed25519")

MAIL_DKIM_VERIFY = r"""
use strict; use warnings;
use Net::DNS::Resolver; use Mail::DKIM::Verifier; use Mail::DKIM::ARC::Verifier;
my ($port, $mode) = @ARGV;
Mail::DKIM::DNS::resolver(Net::DNS::Resolver->new(
    nameservers => ['127.0.0.1'], port => $port, udp_timeout => 5, tcp_timeout => 5));
my $v = $mode eq 'arc' ? Mail::DKIM::ARC::Verifier->new() : Mail::DKIM::Verifier->new();
binmode STDIN; local $/; my $message = <STDIN>; $message =~ s/\r?\n/\r\n/g;
$v->PRINT($message); $v->CLOSE;
if ($mode eq 'arc') { print "arc ", $v->result, " (", ($v->result_detail // ''), ")\n"; }
else { print "dkim ", $_->result, " ", $_->algorithm, "\n" for $v->signatures; }
"""


def _ensure_packages(probe: str, packages: list[str]) -> str | None:
    """None when ``probe`` runs here (installing ``packages`` with apt-get if needed), else
    why not."""
    if subprocess.run(["sh", "-c", probe], capture_output=True).returncode == 0:
        return None
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return f"{' '.join(packages)} not installed, and no root apt-get to install them"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
    ):
        result = subprocess.run(command, env=env, capture_output=True, timeout=600, check=False)
        if result.returncode != 0:
            return f"installing {packages} failed: {result.stderr.decode(errors='replace')[-300:]}"
    if subprocess.run(["sh", "-c", probe], capture_output=True).returncode != 0:
        return f"{packages} installed but `{probe}` still fails"
    return None


@pytest.fixture(scope="module")
def mail_dkim() -> None:
    why = _ensure_packages("perl -MMail::DKIM::ARC::Verifier -e1", ["libmail-dkim-perl"])
    if why:
        pytest.skip(why)


class _Quiet(DNSLogger):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__(log="-request,-reply,-truncated,-error,-recv,-send,-data")


@dataclass(frozen=True)
class OpenDkim:
    resolv_conf: Path  # names the loopback DNS server holding the test keys
    cli_key: Path  # the key `postwise dkim keygen` wrote, published at cli._domainkey


def _cli_keygen(folder: Path) -> tuple[Path, str]:
    """Run `postwise dkim keygen`: the key file and the TXT value its record line carries."""
    result = CliRunner().invoke(
        app,
        ["dkim", "keygen", "example.com", "cli", "--algorithm", "ed25519", "--out", str(folder)],
    )
    assert result.exit_code == 0, result.output
    record = next(line for line in result.stdout.splitlines() if " IN TXT " in line)
    return folder / "example.com.cli.key", "".join(record.split(" IN TXT ", 1)[1].split('"')[1::2])


@pytest.fixture(scope="module")
def opendkim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OpenDkim]:
    """A resolv.conf naming a loopback address where a port-53 server answers the keys'
    zone-file lines; skips when OpenDKIM or a mount namespace is missing."""
    why = _ensure_packages("command -v opendkim-testmsg", ["opendkim-tools"])
    if why:
        pytest.skip(why)
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot make a mount namespace: {probe.stderr.decode(errors='replace')}")
    folder = tmp_path_factory.mktemp("opendkim")
    cli_key, cli_txt = _cli_keygen(folder)
    zone = "\n".join(
        [
            dns_record("example.com", "rsa", RSA_TXT),
            dns_record("example.com", "ed", ED_TXT),
            dns_record("example.com", "cli", cli_txt),
        ]
    )
    servers: list[DNSServer] = []
    address, last_error = "", ""
    for _ in range(10):
        address = f"127.0.53.{random.randint(2, 250)}"
        try:
            servers = [
                DNSServer(ZoneResolver(zone), address=address, port=53, tcp=tcp, logger=_Quiet())
                for tcp in (False, True)
            ]
            break
        except OSError as error:
            last_error = str(error)
    else:
        pytest.skip(f"cannot serve DNS on a loopback port 53: {last_error}")
    for server in servers:
        server.start_thread()
    resolv_conf = folder / "resolv.conf"
    resolv_conf.write_text(f"nameserver {address}\noptions timeout:2 attempts:2\n")
    try:
        yield OpenDkim(resolv_conf, cli_key)
    finally:
        for server in servers:
            server.stop()
            server.server.server_close()


def _opendkim_verify(resolv_conf: Path, message: bytes) -> subprocess.CompletedProcess[bytes]:
    script = f"mount --bind {resolv_conf} /etc/resolv.conf && exec opendkim-testmsg"
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        input=message,
        capture_output=True,
        timeout=60,
    )


@pytest.mark.parametrize(("selector", "key"), [("rsa", RSA_KEY), ("ed", ED_KEY)])
def test_opendkim_verifies_our_signatures(opendkim: OpenDkim, selector: str, key: bytes) -> None:
    signed = sign_dkim(MESSAGE, "example.com", selector, key)
    result = _opendkim_verify(opendkim.resolv_conf, signed)
    assert result.returncode == 0, result.stderr.decode()
    tampered = _opendkim_verify(opendkim.resolv_conf, signed.replace(b"checked", b"changed"))
    assert tampered.returncode != 0
    assert b"signature" in tampered.stderr.lower() or b"body" in tampered.stderr.lower()


def test_opendkim_verifies_what_the_cli_signs(opendkim: OpenDkim, tmp_path: Path) -> None:
    message_file = tmp_path / "message.eml"
    message_file.write_bytes(MESSAGE)
    result = CliRunner().invoke(
        app,
        ["dkim", "sign", "--domain", "example.com", "--selector", "cli", "--key",
         str(opendkim.cli_key), str(message_file)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    signed = result.stdout_bytes
    assert signed.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;")
    check = _opendkim_verify(opendkim.resolv_conf, signed)
    assert check.returncode == 0, check.stderr.decode()


@pytest.fixture(scope="module")
def zone() -> Iterator[ZoneServer]:
    records = [
        ZoneRecord("rsa._domainkey.example.com", "TXT", RSA_TXT),
        ZoneRecord("arc._domainkey.lists.example.org", "TXT", RSA_TXT),
        ZoneRecord("arc._domainkey.relay.example.net", "TXT", RSA_TXT),
    ]
    with ZoneServer(records) as server:
        yield server


def _mail_dkim(zone: ZoneServer, mode: str, message: bytes) -> str:
    result = subprocess.run(
        ["perl", "-e", MAIL_DKIM_VERIFY, str(zone.port), mode],
        input=message,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout.decode()


def test_mail_dkim_verifies_our_rsa_signature(mail_dkim: None, zone: ZoneServer) -> None:
    signed = sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY)
    assert _mail_dkim(zone, "dkim", signed) == "dkim pass rsa-sha256\n"
    tampered = _mail_dkim(zone, "dkim", signed.replace(b"Independent", b"Dependent"))
    assert tampered.startswith("dkim fail")


def test_mail_dkim_validates_our_arc_chain(mail_dkim: None, zone: ZoneServer) -> None:
    signed = sign_dkim(MESSAGE, "example.com", "rsa", RSA_KEY)
    hop1 = seal_arc(signed, "lists.example.org", "arc", RSA_KEY, "lists.example.org", "dkim=pass")
    assert _mail_dkim(zone, "arc", hop1).startswith("arc pass")
    hop2 = seal_arc(
        hop1, "relay.example.net", "arc", RSA_KEY, "relay.example.net", "arc=pass; dkim=pass"
    )
    verdict = _mail_dkim(zone, "arc", hop2)
    assert verdict.startswith("arc pass"), verdict
    assert "as.2.relay.example.net=pass" in verdict and "as.1.lists.example.org=pass" in verdict
    assert _mail_dkim(zone, "arc", hop2.replace(b"Independent", b"Dependent")).startswith(
        "arc fail"
    )
