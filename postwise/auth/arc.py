"""ARC (RFC 8617): validating the chain of a received message, and sealing mail we forward.

dkimpy does the canonicalisation and cryptography, as for DKIM (:mod:`postwise.auth.dkim`,
whose clock and key lookups this module shares): keys come through the one Resolver, and no
malformed header field, key record or DNS failure escapes as an exception.

Validation (RFC 8617 5.2) gives ``pass``, ``fail`` or ``none`` (no ARC header field at all):

* ``fail`` covers every broken chain: a missing or duplicated header field in a set, a gap in
  the instances, more than 50 sets, an ARC-Seal or the newest ARC-Message-Signature that does
  not verify, a seal saying ``cv=fail`` (the chain was declared broken by an earlier hop), a
  ``cv`` that contradicts its position, a key that cannot be had. ARC has no ``temperror``, so a
  DNS failure is a ``fail`` whose reason says so.
* Algorithms: ``rsa-sha256`` as RFC 8617 defines, and also ``ed25519-sha256`` (RFC 8463) — an
  interoperability choice: some sealers use it, and accepting it cannot make a forged chain pass.
  Postwise itself seals with rsa-sha256 only, which every validator accepts.

Sealing (RFC 8617 5.1) adds ARC-Authentication-Results, ARC-Message-Signature and ARC-Seal with
the next instance number. The chain status written into the seal (``cv``) is the ``arc=`` result
of the Authentication-Results the caller passes (what the sealer's own validation found):
``none`` at the first hop; later hops must say ``arc=pass`` or ``arc=fail``. A chain whose newest
seal already says ``cv=fail`` is not extended (nothing is added).
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import dkim
from dkim.canonicalization import CanonicalizationPolicy
from dkim.crypto import HASH_ALGORITHMS, parse_pem_private_key
from dkim.util import parse_tag_value

from postwise.auth.dkim import (
    DEFAULT_SIGNED_HEADERS,
    DKIMPY_LOGGER,
    MIN_RSA_BITS,
    OVERSIGNED_HEADERS,
    DkimSigningError,
    DnsfuncAdapter,
    clock_fixed_at,
    header_names,
    line_separator,
    load_signing_key,
)
from postwise.auth.dns import Resolver
from postwise.auth.results import ArcResult

MAX_INSTANCES = 50  # RFC 8617 4.2.1
_QUIET = logging.getLogger(DKIMPY_LOGGER)  # silenced by postwise.auth.dkim
_ARC_FIELD = re.compile(
    rb"^(arc-seal|arc-message-signature|arc-authentication-results)[ \t]*:", re.I | re.M
)

# dkimpy accepts only rsa-sha256 in ARC sets; see the module docstring for why we take ed25519
# too. (dkimpy reads this module global at each validation.)
dkim.ARC_HASH_ALGORITHMS = {  # type: ignore[attr-defined]
    **dkim.ARC_HASH_ALGORITHMS,  # type: ignore[attr-defined]
    b"ed25519-sha256": hashlib.sha256,
}


class ArcSealError(DkimSigningError):
    """A message cannot be sealed as asked (wrong key type, missing chain status, too many
    sets)."""


# --- validation ------------------------------------------------------------------------------


def verify_arc(raw: bytes, resolver: Resolver, now: float | None = None) -> ArcResult:
    """The message's ARC chain validation status, the number of ARC sets, and why it is not
    ``pass``. ``now`` fixes the time for ``t=`` checks (default: the clock). Never raises."""
    if not _ARC_FIELD.search(raw[: _header_end(raw)]):
        return ArcResult("none")
    adapter = DnsfuncAdapter(resolver)
    instances = 0
    try:
        with clock_fixed_at(now):
            validator = dkim.ARC(raw, logger=_QUIET, minkey=MIN_RSA_BITS, timeout=resolver.timeout)
            instances, sets = validator.sorted_arc_headers()
            if not sets:
                return ArcResult("fail", 0, "ARC header fields without a valid instance (i=)")
            if instances > MAX_INSTANCES:
                return ArcResult("fail", instances, f"more than {MAX_INSTANCES} ARC sets")
            cv, _, reason = validator.verify(dnsfunc=adapter)
    except Exception as error:  # dkimpy on input it did not foresee: still a result
        return ArcResult("fail", instances, f"unverifiable: {type(error).__name__}: {error}"[:300])
    text = _readable(reason)
    if len(text.strip()) < 8:  # dkimpy's tag-list errors carry only the offending fragment
        text = f"malformed ARC header field (tag {text.strip() or 'empty'!r})"
    if adapter.problems:
        text = "; ".join([text, *(p.reason for p in adapter.problems)])
    if cv == dkim.CV_Pass:
        return ArcResult("pass", instances)
    if cv == dkim.CV_None:
        return ArcResult("none", instances, text)
    return ArcResult("fail", instances, text)  # dkimpy's None: a seal said cv=fail


def _readable(reason: Any) -> str:
    text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
    return re.sub(r"""\bb(['"])(.*?)\1""", r"\2", text)[:300]


def _header_end(raw: bytes) -> int:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end >= 0:
            return end
    return len(raw)


# --- sealing ---------------------------------------------------------------------------------


def default_sealed_headers(raw: bytes) -> list[str]:
    """The h= of our ARC-Message-Signature: the DKIM default list plus every DKIM-Signature."""
    present = header_names(raw)
    chosen = [n for n in present if n in DEFAULT_SIGNED_HEADERS or n == "dkim-signature"]
    return chosen + [name for name in OVERSIGNED_HEADERS if name in present]


def arc_set(
    raw: bytes,
    domain: str,
    selector: str,
    key_pem: bytes,
    authserv_id: str,
    authentication_results: str,
    *,
    now: float | None = None,
    headers: Sequence[str] | None = None,
    standardize: bool = False,
) -> list[bytes]:
    """The next ARC set for the message: ARC-Seal, ARC-Message-Signature and
    ARC-Authentication-Results header fields, in that order (each ending with the message's
    line separator), or [] when the newest seal already says ``cv=fail``.

    ``authentication_results`` is what this hop found: the value of its Authentication-Results
    header field (with or without ``authserv_id`` in front); its ``arc=`` result becomes the
    seal's ``cv``. ``headers`` is the h= of the message signature (default
    :func:`default_sealed_headers`), ``now`` the t= (default the clock), and ``standardize``
    writes the tags unfolded and sorted (the layout of the ARC test suite's signing cases).
    Raises DkimSigningError for an unusable key, ArcSealError when the chain status is missing
    or the key is not RSA."""
    key = load_signing_key(key_pem)
    if key.algorithm != "rsa-sha256":
        raise ArcSealError(
            f"ARC seals are rsa-sha256 (RFC 8617): the key for {selector}._domainkey.{domain} "
            "is Ed25519; configure an RSA key for sealing"
        )
    linesep = line_separator(raw)
    sealer = _Sealer(raw, logger=_QUIET, signature_algorithm=b"rsa-sha256", linesep=linesep)
    newest, sets = sealer.sorted_arc_headers()
    instance = newest + 1 if sets else 1
    if instance > MAX_INSTANCES:
        raise ArcSealError(f"the message already has {newest} ARC sets (at most {MAX_INSTANCES})")
    if sets and _newest_seal_cv(sets, newest) == b"fail":
        return []
    results = _results(authserv_id, authentication_results)
    cv = _chain_status(results) if instance > 1 else b"none"
    include = [h.lower() for h in (headers or default_sealed_headers(raw))]
    if "from" not in include:
        raise ArcSealError("the ARC-Message-Signature must sign From (RFC 8617 4.1.2)")
    if "arc-seal" in include:
        raise ArcSealError("the ARC-Message-Signature must not sign ARC-Seal (RFC 8617 4.1.2)")
    separator = linesep.decode("ascii")
    aar = f"i={instance}; {authserv_id};{separator}\t" + f";{separator}\t".join(results)
    try:
        pk = parse_pem_private_key(key.dkimpy_key)
        with clock_fixed_at(now):
            timestamp = int(now if now is not None else time.time())
            return sealer.seal(
                selector=selector.encode("ascii"),
                domain=domain.encode("ascii"),
                pk=pk,
                aar_value=aar.encode("utf-8"),
                cv=cv,
                instance=instance,
                include_headers=[h.encode("ascii") for h in include],
                timestamp=timestamp,
                standardize=standardize,
                previous=[value for _, value in sets],
            )
    except (dkim.DKIMException, UnicodeError, ValueError) as error:
        raise ArcSealError(f"cannot seal for {selector}._domainkey.{domain}: {error}") from None


def seal_arc(
    raw: bytes,
    domain: str,
    selector: str,
    key_pem: bytes,
    authserv_id: str,
    authentication_results: str,
    now: float | None = None,
    headers: Sequence[str] | None = None,
) -> bytes:
    """The message with its next ARC set prepended (see :func:`arc_set`; unchanged when the
    chain already failed). Raises DkimSigningError or ArcSealError as arc_set does."""
    new_set = arc_set(
        raw,
        domain,
        selector,
        key_pem,
        authserv_id,
        authentication_results,
        now=now,
        headers=headers,
    )
    return b"".join(new_set) + raw


def _results(authserv_id: str, authentication_results: str) -> list[str]:
    """The results of an Authentication-Results value, one string each, without the
    authserv-id (RFC 8601 2.2; comments may hold ';' only in theory, so none is split)."""
    parts = [" ".join(p.split()) for p in _split_results(authentication_results)]
    parts = [p for p in parts if p]
    if parts and parts[0].split()[0].lower() == authserv_id.lower():
        rest = parts[0][len(authserv_id) :].strip()  # "id" or "id 1" (a version) then results
        parts = parts[1:] if not rest or rest.isdigit() else parts
    return parts or ["none"]


def _split_results(text: str) -> list[str]:
    """``text`` split at the semicolons outside comments and quoted strings."""
    parts: list[str] = []
    current: list[str] = []
    depth, quoted = 0, False
    for char in text:
        if char == '"' and depth == 0:
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")" and depth:
            depth -= 1
        elif char == ";" and depth == 0 and not quoted:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _chain_status(results: list[str]) -> bytes:
    found = [m[1].lower() for r in results if (m := re.match(r"arc\s*=\s*(\w+)", r, re.I))]
    if not found:
        raise ArcSealError(
            "the message has an ARC chain: authentication_results must say what it validated "
            "to (arc=pass or arc=fail)"
        )
    if len(found) > 1 or found[0] not in ("pass", "fail"):
        return b"fail"
    return found[0].encode("ascii")


def _newest_seal_cv(sets: list[tuple[int, tuple[bytes, bytes]]], newest: int) -> bytes | None:
    for instance, (name, value) in sets:
        if instance == newest and name.lower() == b"arc-seal":
            try:
                return bytes(parse_tag_value(value).get(b"cv", b"")).lower()
            except Exception:  # an unreadable seal: the chain is not one we can extend
                return b"fail"
    return None


class _Sealer(dkim.ARC):  # type: ignore[misc]
    """dkimpy's ARC signer, given the ARC-Authentication-Results and chain status directly
    (dkimpy's own ``sign`` rebuilds them from the message's Authentication-Results through a
    parser that drops comments and re-serialises the results)."""

    headers: list[Any]  # dkimpy's parsed header fields, top first, as [name, value]

    def seal(
        self,
        *,
        selector: bytes,
        domain: bytes,
        pk: Any,
        aar_value: bytes,
        cv: bytes,
        instance: int,
        include_headers: list[bytes],
        timestamp: int,
        standardize: bool,
        previous: list[tuple[bytes, bytes]],
    ) -> list[bytes]:
        canon = CanonicalizationPolicy.from_c_value(b"relaxed/relaxed")
        # A failed chain is not carried on: the new seal covers its own set only (RFC 8617
        # 5.1.2), which dkimpy's header selection achieves by reading the headers top down.
        arc_headers = list(previous) if cv != b"fail" else []
        aar = aar_value + self.linesep
        arc_headers.insert(0, (b"ARC-Authentication-Results", aar))
        self.headers = canon.canonicalize_headers(arc_headers[:1]) + self.headers

        self.hasher = HASH_ALGORITHMS[self.signature_algorithm]
        body_hash = self.hasher(canon.canonicalize_body(self.body)).digest()
        stamp = str(timestamp).encode("ascii")
        ams_fields = [
            (b"i", str(instance).encode("ascii")),
            (b"a", self.signature_algorithm),
            (b"c", b"relaxed/relaxed"),
            (b"d", domain),
            (b"s", selector),
            (b"t", stamp),
            (b"h", b" : ".join(include_headers)),
            (b"bh", base64.b64encode(body_hash)),
            (b"b", b"0" * 60),  # b= on a line of its own, so re-folding cannot move it
        ]
        ams = self.gen_header(
            ams_fields, include_headers, canon, b"ARC-Message-Signature", pk, standardize
        )
        arc_headers.insert(0, (b"ARC-Message-Signature", ams))
        self.headers = canon.canonicalize_headers(arc_headers[:1]) + self.headers

        as_fields = [
            (b"i", str(instance).encode("ascii")),
            (b"cv", cv),
            (b"a", self.signature_algorithm),
            (b"d", domain),
            (b"s", selector),
            (b"t", stamp),
            (b"b", b"0" * 60),
        ]
        as_include = [name.lower() for name, _ in arc_headers][::-1]
        if cv == b"fail":
            self.headers = self.headers[::-1]
        seal = self.gen_header(as_fields, as_include, canon, b"ARC-Seal", pk, standardize)
        return [
            b"ARC-Seal: " + seal,
            b"ARC-Message-Signature: " + ams,
            b"ARC-Authentication-Results: " + aar,
        ]
