"""The STARTTLS probe: an SMTP connection to each MX host, STARTTLS, and the certificate it
presents (reported, not validated)."""

from __future__ import annotations

import contextlib
import datetime
import socket
import ssl
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import BinaryIO

from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.mx import MxHost

_MX_PROBE_LIMIT = 10


@dataclass(frozen=True, slots=True)
class _TlsProbe:
    host: str
    target: str  # address:port tried last
    reachable: bool
    starttls: bool = False  # advertised in the EHLO reply
    handshake: bool = False
    detail: str = ""  # the reply or error behind the outcome
    tls_version: str = ""
    certificate: bytes = b""


def audit_starttls(
    audit: Audit, hosts: Sequence[MxHost], port: int, timeout: float, ehlo_name: str
) -> None:
    audit.records["starttls_checked"] = True
    probed = list(hosts)[:_MX_PROBE_LIMIT]
    with ThreadPoolExecutor(max_workers=min(8, len(probed))) as pool:
        probes = list(
            pool.map(
                lambda h: _probe_starttls(h.host, h.addresses, port, timeout, ehlo_name), probed
            )
        )
    for host, probe in zip(probed, probes, strict=True):
        host.starttls = {"reachable": probe.reachable, "advertised": probe.starttls}
        for item in audit.records["mx"]:
            if item["host"] == host.host:
                item["starttls"] = host.starttls
        if not probe.reachable:
            audit.add(
                "MX_UNREACHABLE",
                f"the MX host {host.host} could not be reached on port {port} from here, so "
                "STARTTLS was not checked (many networks block outbound port 25)",
                f"{probe.target}: {probe.detail}",
                "Nothing to do if it answers from elsewhere; otherwise audit from a host that "
                f"can reach port {port}, or check that {host.host} accepts connections.",
            )
        elif not probe.starttls:
            audit.add(
                "MX_NO_STARTTLS",
                f"the MX host {host.host} does not offer STARTTLS: mail to {audit.domain} "
                "crosses the internet in plaintext",
                f"{probe.target}: {probe.detail}",
                f"Enable STARTTLS on {host.host} with a certificate for its name (Postfix: "
                "smtpd_tls_cert_file, smtpd_tls_key_file, smtpd_tls_security_level = may).",
            )
        elif not probe.handshake:
            audit.add(
                "MX_STARTTLS_FAILED",
                f"the MX host {host.host} offers STARTTLS but the TLS handshake failed: senders "
                "fall back to plaintext or defer",
                f"{probe.target}: {probe.detail}",
                f"Check the certificate, key and TLS protocol settings of {host.host} "
                f"(`openssl s_client -starttls smtp -connect {host.host}:{port}`).",
            )
        else:
            _report_certificate(audit, host, probe)


def _report_certificate(audit: Audit, host: MxHost, probe: _TlsProbe) -> None:
    from cryptography import x509

    try:
        certificate = x509.load_der_x509_certificate(probe.certificate)
    except ValueError as error:
        audit.add(
            "MX_STARTTLS_FAILED",
            f"the MX host {host.host} sent a certificate that does not parse",
            f"{probe.target}: {error}",
            f"Install a valid certificate for {host.host}.",
        )
        return
    try:
        san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        names = [str(n) for n in san.value.get_values_for_type(x509.DNSName)]
    except x509.ExtensionNotFound:
        names = [
            str(a.value)
            for a in certificate.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
        ]
    expires = certificate.not_valid_after_utc
    self_signed = certificate.issuer == certificate.subject
    subject = certificate.subject.rfc4514_string()
    facts = {
        "tls_version": probe.tls_version,
        "subject": subject,
        "issuer": certificate.issuer.rfc4514_string(),
        "names": names,
        "not_after": expires.isoformat(),
        "self_signed": self_signed,
    }
    assert host.starttls is not None
    host.starttls.update(facts)
    evidence = (
        f"{probe.target}: {probe.tls_version}, subject {subject}, "
        f"{'self-signed' if self_signed else 'issuer ' + certificate.issuer.rfc4514_string()}, "
        f"names {', '.join(names) or 'none'}, expires {expires:%Y-%m-%d}"
    )
    audit.add(
        "MX_TLS_CERTIFICATE",
        f"{host.host} offers STARTTLS ({probe.tls_version}); its certificate was not validated",
        evidence,
        "Nothing to do; MTA-STS in enforce mode (or DANE) needs the certificate to be valid "
        "for the MX name and issued by a public CA.",
    )
    if expires < datetime.datetime.now(datetime.UTC):
        audit.add(
            "MX_CERTIFICATE_EXPIRED",
            f"the certificate of {host.host} expired on {expires:%Y-%m-%d}: senders that "
            "validate (MTA-STS, DANE) will not deliver",
            evidence,
            f"Renew the certificate of {host.host} (and automate renewal, e.g. ACME).",
        )
    if not any(_certificate_name_matches(n.lower(), host.host) for n in names):
        audit.add(
            "MX_CERTIFICATE_NAME_MISMATCH",
            f"the certificate of {host.host} is not issued for that name: senders that "
            "validate (MTA-STS) will not deliver",
            evidence,
            f"Install a certificate whose subjectAltName includes {host.host}.",
        )


def _certificate_name_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and host.count(".") == pattern.count(".")
    return pattern.rstrip(".") == host


def _read_reply(stream: BinaryIO) -> tuple[int, list[str]]:
    """One SMTP reply: (code, lines without the code)."""
    lines: list[str] = []
    while len(lines) < 100:
        raw = stream.readline(2048)
        if not raw:
            raise ConnectionError("the server closed the connection")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if len(text) < 3 or not text[:3].isdigit():
            raise ConnectionError(f"not an SMTP reply: {text[:80]!r}")
        lines.append(text[4:])
        if text[3:4] != "-":
            return int(text[:3]), lines
    raise ConnectionError("an SMTP reply of more than 100 lines")


def _probe_starttls(
    host: str, addresses: Sequence[str], port: int, timeout: float, ehlo_name: str
) -> _TlsProbe:
    """Connect to ``host`` (its first reachable address), EHLO, STARTTLS and complete the
    handshake without validating the certificate (the probe reports it; it does not trust it)."""
    target, detail = f"{host} port {port}", "no address"
    for address in list(addresses)[:2]:
        target = f"{host} ({address} port {port})"
        try:
            sock = socket.create_connection((address, port), timeout=timeout)
        except OSError as error:
            detail = f"connect: {error}"
            continue
        try:
            return _starttls_dialogue(sock, host, target, ehlo_name)
        except (OSError, ValueError) as error:
            detail = f"{error}"
        finally:
            sock.close()
    return _TlsProbe(host, target, reachable=False, detail=detail)


def _starttls_dialogue(sock: socket.socket, host: str, target: str, ehlo_name: str) -> _TlsProbe:
    stream = sock.makefile("rb")
    code, banner = _read_reply(stream)
    if code != 220:
        raise ConnectionError(f"the greeting was {code} {' '.join(banner)[:120]}")
    sock.sendall(f"EHLO {ehlo_name}\r\n".encode("ascii"))
    code, lines = _read_reply(stream)
    ehlo = f"EHLO reply {code} " + " / ".join(lines)[:200]
    if code != 250 or not any(line.split(" ")[0].upper() == "STARTTLS" for line in lines[1:]):
        return _TlsProbe(host, target, True, detail=f"{ehlo} (no STARTTLS)")
    sock.sendall(b"STARTTLS\r\n")
    code, lines = _read_reply(stream)
    if code != 220:
        return _TlsProbe(host, target, True, True, detail=f"STARTTLS answered {code} {lines}")
    stream.close()
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        tls = context.wrap_socket(sock, server_hostname=host)
    except (ssl.SSLError, OSError) as error:
        return _TlsProbe(host, target, True, True, detail=f"TLS handshake: {error}")
    try:
        certificate = tls.getpeercert(binary_form=True) or b""
        version = tls.version() or ""
        with contextlib.suppress(OSError):  # the probe is over either way
            tls.sendall(b"QUIT\r\n")
    finally:
        tls.close()
    return _TlsProbe(host, target, True, True, True, ehlo, version, certificate)
