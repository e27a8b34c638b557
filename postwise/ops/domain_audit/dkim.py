"""The DKIM check: the key record of each selector given (syntax, revoked, weak, testing)."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Sequence
from typing import Any

from postwise.auth.dns import DnsTemporaryError
from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.records import RecordError, parse_tag_list, shorten, with_tag


def audit_dkim(audit: Audit, selectors: Sequence[str]) -> None:
    domain = audit.domain
    audit.records["dkim"] = {}
    if not selectors:
        audit.add(
            "DKIM_NOT_CHECKED",
            "no DKIM selectors were given and DNS cannot list them, so no DKIM key was checked",
            f"<selector>._domainkey.{domain}: not queried",
            "Audit again with --selector for each selector the domain signs with (the s= tag "
            "of the DKIM-Signature header of a message it sent).",
        )
        return
    for selector in dict.fromkeys(s.lower() for s in selectors):
        name = f"{selector}._domainkey.{domain}"
        try:
            lookup = audit.resolver.txt(name)
        except DnsTemporaryError as error:
            audit.lookup_failed("DKIM_LOOKUP_FAILED", name, "TXT", error, "this DKIM key")
            continue
        if not lookup.records:
            audit.add(
                "DKIM_MISSING",
                f"the DKIM selector {selector} of {domain} has no key: signatures made with it "
                "fail",
                f"{name} TXT: {'NXDOMAIN' if lookup.nxdomain else 'no records'}",
                f'Publish the public key: `{name}. TXT "v=DKIM1; k=rsa; p=<base64 key>"`, or '
                "stop signing with this selector.",
            )
            continue
        record = lookup.records[0]
        facts = _audit_dkim_record(audit, name, record, selector)
        if len(lookup.records) > 1:
            facts["records"] = list(lookup.records)
            audit.add(
                "DKIM_SYNTAX",
                f"{name} holds {len(lookup.records)} TXT records: which key a verifier uses is "
                "undefined",
                " | ".join(f'{name} TXT "{r}"' for r in lookup.records),
                f"Keep one key record at {name}.",
            )
        audit.records["dkim"][selector] = facts


def _audit_dkim_record(audit: Audit, name: str, record: str, selector: str) -> dict[str, Any]:
    evidence = f'{name} TXT "{shorten(record)}"'
    facts: dict[str, Any] = {"record": record}
    try:
        pairs = parse_tag_list(record)
        tags = dict(pairs)
        if "v" in tags and pairs[0] != ("v", "DKIM1"):
            raise RecordError("v=DKIM1 must be the first tag when present")
        if "p" not in tags:
            raise RecordError("the required p= tag (the public key) is missing")
        key_type = tags.get("k", "rsa").lower()
        if key_type not in ("rsa", "ed25519"):
            raise RecordError(f"k={key_type} is not rsa or ed25519")
        key_text = re.sub(r"\s+", "", tags["p"])
        key_bits = _dkim_key_bits(key_type, key_text) if key_text else None
    except RecordError as error:
        audit.add(
            "DKIM_SYNTAX",
            f"the DKIM key record at {name} is invalid: {error}; signatures with selector "
            f"{selector} fail (permerror)",
            evidence,
            f'Publish a well-formed key: `{name}. TXT "v=DKIM1; k=rsa; p=<base64 key>"` ({error}).',
        )
        return facts
    flags = [f.strip().lower() for f in tags.get("t", "").split(":") if f.strip()]
    facts.update({"key_type": key_type, "key_bits": key_bits, "flags": flags})
    if not key_text:
        audit.add(
            "DKIM_REVOKED",
            f"the DKIM key of selector {selector} is revoked (empty p=): signatures with it fail",
            evidence,
            "Nothing to do if the selector is retired; otherwise publish its key again or "
            "sign with a current selector.",
        )
        return facts
    if key_type == "rsa" and key_bits is not None and key_bits < 2048:
        weak = key_bits < 1024
        audit.add(
            "DKIM_KEY_WEAK",
            f"the DKIM key of selector {selector} is RSA {key_bits} bits: "
            + (
                "verifiers ignore signatures with keys under 1024 bits (RFC 8301)"
                if weak
                else "within reach of factoring; RFC 8301 asks for 2048"
            ),
            evidence,
            "Make a 2048-bit key under a new selector (`postwise dkim keygen "
            f"{audit.domain} <new selector>`), publish its record, switch signing to it, then "
            f"revoke {selector} with an empty p=.",
            "high" if weak else "medium",
        )
    if "y" in flags:
        audit.add(
            "DKIM_TESTING",
            f"the DKIM key of selector {selector} is in testing mode (t=y): verifiers may treat "
            "its signatures as absent",
            evidence,
            f"Once signing works, remove t=y from the record at {name} and keep the rest "
            f'(`{name}. TXT "{shorten(with_tag(pairs, "t", None), 60)}"`).',
        )
    return facts


def _dkim_key_bits(key_type: str, key_text: str) -> int:
    try:
        der = base64.b64decode(key_text, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError("p= is not valid base64") from None
    if key_type == "ed25519":
        if len(der) != 32:
            raise RecordError(f"an ed25519 key is 32 bytes, p= holds {len(der)}")
        return 256
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_der_public_key

    try:
        key = load_der_public_key(der)
    except (ValueError, TypeError):
        raise RecordError("p= is not a DER-encoded public key") from None
    if not isinstance(key, rsa.RSAPublicKey):
        raise RecordError("k=rsa but p= holds a key of another kind")
    return int(key.key_size)
