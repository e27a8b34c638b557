"""DKIM (RFC 6376, with ed25519-sha256 from RFC 8463): verifying every signature of a message,
signing outgoing mail, and making keys.

dkimpy does the canonicalisation and the cryptography; this module owns everything around it,
so that one bad signature or key record never crashes a scan:

* every key lookup goes through the one :class:`~postwise.auth.dns.Resolver` (a ``dnsfunc``
  adapter hands dkimpy the TXT strings of the record joined, RFC 6376 3.6.2.2);
* every failure becomes a result word (RFC 8601 2.7.1) with a reason, never an exception:

  ========== ==========================================================================
  pass       the signature verifies
  fail       it does not: the signed header fields or the body (``body hash mismatch``)
             were changed, or the key does not match
  permerror  it cannot ever verify: a malformed signature (tag list, missing tags, bad
             base64, d=/i= mismatch, unsupported a=, From not signed, t= in the future,
             x= past, l= longer than the body), no key record (``no key``), a revoked key
             (empty p=, RFC 6376 3.6.1), a malformed key record, a key of the wrong type
             for a=, an RSA key under 1024 bits or rsa-sha1 (RFC 8301)
  temperror  the key lookup failed (timeout, SERVFAIL): try again later
  ========== ==========================================================================

The clock dkimpy reads for ``t=`` and ``x=`` can be fixed per call (``now``), which is how the
conformance runs reproduce the suites' moment in time; outside such a call it is the real clock.

Errors raised on purpose (signing only; verification never raises)::

    PostwiseError
    └── DkimSigningError      a signing key cannot be read or used, or the message cannot be signed
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from dkim.canonicalization import CanonicalizationPolicy
from dkim.util import InvalidTagValueList, parse_tag_value

from postwise.auth.dns import DnsTemporaryError, Resolver
from postwise.auth.results import DkimResult, DkimWord
from postwise.core.errors import PostwiseError
from postwise.core.settings import DkimKey, Settings

# At most this many signatures of one message are verified: each costs a DNS lookup and a
# hash of the body, and a message carrying dozens is an attack, not mail.
MAX_SIGNATURES = 10
DKIMPY_LOGGER = "postwise.auth.dkimpy"
MIN_RSA_BITS = 1024  # RFC 8301 3.2: verifiers MUST NOT accept smaller keys
MAX_RSA_BITS = 4096

# Header fields signed by default when present (RFC 6376 5.4.1's list, trimmed to what
# mail still carries), each as many times as it occurs; From is signed once more than it
# occurs, so that no second From can be added without breaking the signature.
DEFAULT_SIGNED_HEADERS = (
    "from",
    "sender",
    "reply-to",
    "to",
    "cc",
    "subject",
    "date",
    "message-id",
    "in-reply-to",
    "references",
    "mime-version",
    "content-type",
    "content-transfer-encoding",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "feedback-id",
)
OVERSIGNED_HEADERS = ("from",)

Algorithm = Literal["rsa", "ed25519"]


class DkimSigningError(PostwiseError):
    """A signing key cannot be read or used, or the message cannot be signed with it."""


# dkimpy logs every verification failure at ERROR through the root logger; the reasons are
# in our results instead. (arc.py hands dkimpy the same logger, by name.)
_QUIET = logging.getLogger(DKIMPY_LOGGER)
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


# --- dkimpy's clock --------------------------------------------------------------------------

_FIXED_NOW: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "postwise_dkim_now", default=None
)


class _DkimpyClock:
    """Stands in for the ``time`` module inside dkimpy, which reads ``time.time()`` for its
    ``t=``/``x=`` checks and for the ``t=`` it signs: the real clock, unless a call of
    :func:`clock_fixed_at` in this thread (or task) says otherwise."""

    def time(self) -> float:
        fixed = _FIXED_NOW.get()
        return time.time() if fixed is None else fixed

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


dkim.time = _DkimpyClock()  # type: ignore[attr-defined]


@contextlib.contextmanager
def clock_fixed_at(now: float | None) -> Iterator[None]:
    """Within the block, dkimpy (DKIM and ARC) sees ``now`` as the time (None: the real
    clock). Per thread and per asyncio task."""
    token = _FIXED_NOW.set(now)
    try:
        yield
    finally:
        _FIXED_NOW.reset(token)


# --- key lookups -----------------------------------------------------------------------------


class KeyLookupProblem(Exception):
    """Why a key record could not be had: ``word`` is the result it leads to."""

    def __init__(self, word: DkimWord, reason: str) -> None:
        super().__init__(reason)
        self.word: DkimWord = word
        self.reason = reason


def fetch_key_record(resolver: Resolver, name: str) -> bytes:
    """The key record at ``name`` (``selector._domainkey.domain``), its strings joined. When
    the name holds several TXT records, the first that looks like a DKIM key (RFC 6376 3.6.2.2
    lets a verifier choose). Raises KeyLookupProblem: temperror when DNS failed, permerror
    when there is no record."""
    try:
        lookup = resolver.txt(name)
    except DnsTemporaryError as error:
        raise KeyLookupProblem("temperror", f"key lookup failed: {error}") from None
    if not lookup.records:
        where = "no such name" if lookup.nxdomain else "no TXT record"
        raise KeyLookupProblem("permerror", f"no key for signature at {name} ({where})")
    records = [r.encode("utf-8", "surrogateescape") for r in lookup.records]
    for record in records:
        if re.match(rb"\s*(v\s*=\s*DKIM1\b|[a-z]\s*=)", record):
            return record
    return records[0]


class DnsfuncAdapter:
    """dkimpy's ``dnsfunc`` hook over our Resolver. Failures are remembered (dkimpy turns them
    into a bare False): a temporary one as dkimpy's own DnsTimeoutError, a missing record as
    None, which dkimpy reports as a missing key."""

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.problems: list[KeyLookupProblem] = []

    def __call__(self, name: bytes | str, timeout: float = 5.0) -> bytes | None:
        text = name.decode("ascii", "replace") if isinstance(name, bytes) else name
        try:
            return fetch_key_record(self.resolver, text.rstrip("."))
        except KeyLookupProblem as problem:
            self.problems.append(problem)
            if problem.word == "temperror":
                raise dkim.DnsTimeoutError(problem.reason) from None
            return None


def check_key_record(name: str, record: bytes, algorithm: bytes) -> None:
    """Raise KeyLookupProblem (permerror) unless ``record`` is a usable key for a signature of
    ``algorithm`` (a=): parseable, not revoked, of the matching type, at least 1024 bits."""
    try:
        tags = parse_tag_value(record)
    except InvalidTagValueList as error:
        raise KeyLookupProblem(
            "permerror", f"malformed key record at {name}: {_describe(error)}"
        ) from None
    if tags.get(b"v", b"DKIM1") != b"DKIM1":
        raise KeyLookupProblem("permerror", f"key record at {name} is not v=DKIM1")
    if b"p" not in tags:
        raise KeyLookupProblem("permerror", f"key record at {name} has no p= tag")
    if not re.sub(rb"\s+", b"", tags[b"p"]):
        raise KeyLookupProblem("permerror", f"key revoked (empty p= at {name})")
    key_type = tags.get(b"k", b"rsa")
    sig_type, _, sig_hash = algorithm.partition(b"-")
    if key_type in (b"rsa", b"ed25519") and key_type != sig_type:
        raise KeyLookupProblem(
            "permerror",
            f"key at {name} is k={_text(key_type)} but the signature is a={_text(algorithm)}",
        )
    if b"h" in tags and sig_hash not in _tag_list(tags[b"h"]):
        raise KeyLookupProblem(
            "permerror", f"key at {name} allows h={_text(tags[b'h'])} only, not {_text(sig_hash)}"
        )
    services = _tag_list(tags.get(b"s", b"*"))
    if b"*" not in services and b"email" not in services:
        raise KeyLookupProblem(
            "permerror", f"key at {name} is not for email (s={_text(tags[b's'])})"
        )
    try:
        _, bits, _, _ = dkim.evaluate_pk(name.encode("ascii", "replace"), _compact_key(record))
    except (dkim.DKIMException, ValueError, TypeError, IndexError) as error:
        raise KeyLookupProblem("permerror", f"bad key at {name}: {_describe(error)}") from None
    if key_type == b"rsa" and bits is not None and bits < MIN_RSA_BITS:
        raise KeyLookupProblem(
            "permerror", f"key at {name} has {bits} bits, under {MIN_RSA_BITS} (RFC 8301)"
        )


def _tag_list(value: bytes) -> list[bytes]:
    """A colon-separated tag value (RFC 6376 3.6.1 h= and s=), lower-cased."""
    return [part.strip().lower() for part in value.split(b":")]


# --- verification ----------------------------------------------------------------------------


def verify_dkim(raw: bytes, resolver: Resolver, now: float | None = None) -> list[DkimResult]:
    """One result per DKIM-Signature header field, top first (at most MAX_SIGNATURES); [] for
    a message without one. ``now`` fixes the time for ``t=``/``x=`` (default: the clock).
    Never raises: every problem is a result (see the module docstring)."""
    if b"dkim-signature" not in raw[: _header_end(raw)].lower():
        return []
    try:
        with clock_fixed_at(now):
            verifier = dkim.DKIM(raw, logger=_QUIET, minkey=MIN_RSA_BITS, timeout=resolver.timeout)
    except Exception as error:  # dkimpy's parser raises several kinds on malformed headers
        return [DkimResult("permerror", reason=f"message headers unparseable: {_describe(error)}")]
    count = sum(1 for name, _ in verifier.headers if name.lower() == b"dkim-signature")
    results = []
    for index in range(min(count, MAX_SIGNATURES)):
        with clock_fixed_at(now):
            results.append(_verify_one(verifier, index, resolver))
    return results


def _verify_one(verifier: Any, index: int, resolver: Resolver) -> DkimResult:
    signature = [v for n, v in verifier.headers if n.lower() == b"dkim-signature"][index]
    fields = _fields(signature)
    domain, selector, algorithm = (_text(fields.get(t, b"")) for t in (b"d", b"s", b"a"))

    def result(word: DkimWord, reason: str = "") -> DkimResult:
        return DkimResult(word, domain, selector, algorithm, reason)

    try:
        prepared = verifier.verify_headerprep(index)
        if not prepared:
            return result("permerror", "signature not found")
        sig, include_headers, headers = prepared
        if b"from" not in include_headers:
            return result("permerror", "From is not signed (h= lacks from)")
        if sig[b"a"] == b"rsa-sha1":
            return result("permerror", "rsa-sha1 signatures are not accepted (RFC 8301)")
        if b"l" in sig:
            problem = _body_length_problem(verifier, sig)
            if problem:
                return result("permerror", problem)
        name = f"{selector}._domainkey.{domain}"
        record = fetch_key_record(resolver, name)
        check_key_record(name, record, sig[b"a"])
        compact = _compact_key(record)
        valid = verifier.verify_sig(sig, include_headers, headers[index], lambda *_, **__: compact)
    except KeyLookupProblem as problem:
        return result(problem.word, problem.reason)
    except dkim.ValidationError as error:
        message = _describe(error)
        if message.startswith("body hash mismatch"):
            return result("fail", "body hash mismatch")
        return result("permerror", message)
    except dkim.MessageFormatError as error:
        return result("permerror", f"malformed signature: {_describe(error)}")
    except dkim.DKIMException as error:
        return result("permerror", _describe(error))
    except Exception as error:  # dkimpy on input it did not foresee: still one result
        return result("permerror", f"unverifiable: {type(error).__name__}: {_describe(error)}")
    if not valid:
        return result("fail", "signature did not verify")
    reason = "l= limits the signed body: content may have been appended" if b"l" in sig else ""
    return result("pass", reason)


def _fields(value: bytes) -> dict[bytes, bytes]:
    try:
        return dict(parse_tag_value(re.sub(rb"\r?\n", b"", value)))
    except Exception:  # only used to label the result
        return {}


def _body_length_problem(verifier: Any, sig: dict[bytes, bytes]) -> str:
    try:
        policy = CanonicalizationPolicy.from_c_value(sig.get(b"c", b"simple/simple"))
        body = policy.canonicalize_body(verifier.body)
    except dkim.DKIMException as error:
        return f"invalid c= value: {_describe(error)}"
    if int(sig[b"l"]) > len(body):
        return f"l={int(sig[b'l'])} is longer than the body ({len(body)} octets)"
    return ""


def _compact_key(record: bytes) -> bytes:
    """The record with whitespace removed from p= (dkimpy's ed25519 decoder rejects it)."""
    return re.sub(rb"(p\s*=)([^;]*)", lambda m: m[1] + re.sub(rb"\s+", b"", m[2]), record)


def _header_end(raw: bytes) -> int:
    for separator in (b"\r\n\r\n", b"\n\n"):
        end = raw.find(separator)
        if end >= 0:
            return end
    return len(raw)


def _text(value: bytes) -> str:
    return value.decode("ascii", "replace")


def _describe(error: BaseException) -> str:
    """The error's message, readable: dkimpy puts bytes reprs (b'...') in its messages."""
    text = re.sub(r"""\bb(['"])(.*?)\1""", r"\2", str(error)) or type(error).__name__
    return text if len(text) <= 300 else text[:297] + "..."


# --- keys and signing ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key in the form dkimpy signs with: ``algorithm`` is the a= it makes."""

    algorithm: Literal["rsa-sha256", "ed25519-sha256"]
    dkimpy_key: bytes  # PKCS#1 PEM (RSA) or the base64 32-byte seed (Ed25519)


def load_signing_key(key_pem: bytes) -> SigningKey:
    """A PEM private key (PKCS#1 or PKCS#8, RSA or Ed25519), or dkimpy's bare base64 Ed25519
    seed. Raises DkimSigningError naming what is wrong."""
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError):
        seed = _bare_ed25519_seed(key_pem)
        if seed is not None:
            return SigningKey("ed25519-sha256", base64.b64encode(seed))
        raise DkimSigningError(
            "the DKIM key is not a PEM RSA or Ed25519 private key without a password "
            "(as `postwise dkim keygen` writes)"
        ) from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise DkimSigningError(
                f"the RSA key has {key.key_size} bits; DKIM needs at least {MIN_RSA_BITS} "
                "(RFC 8301): make a new one with `postwise dkim keygen`"
            )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
        return SigningKey("rsa-sha256", pem)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        seed = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return SigningKey("ed25519-sha256", base64.b64encode(seed))
    raise DkimSigningError(
        f"the DKIM key is a {type(key).__name__}; DKIM signs with RSA or Ed25519 keys only"
    )


def _bare_ed25519_seed(data: bytes) -> bytes | None:
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except ValueError:
        return None
    return seed if len(seed) == 32 else None


def header_names(raw: bytes) -> list[str]:
    """The names of the message's header fields, top first, lower-cased."""
    names = []
    for line in re.split(rb"\r?\n", raw[: _header_end(raw)]):
        match = re.match(rb"([\x21-\x39\x3b-\x7e]+)[ \t]*:", line)
        if match and line[:1] not in (b" ", b"\t"):
            names.append(match[1].decode("ascii").lower())
    return names


def default_signed_headers(raw: bytes) -> list[str]:
    """The h= list :func:`sign_dkim` uses by default for this message."""
    present = header_names(raw)
    chosen = [name for name in present if name in DEFAULT_SIGNED_HEADERS]
    chosen += [name for name in OVERSIGNED_HEADERS if name in present]
    return chosen


def line_separator(raw: bytes) -> bytes:
    """CRLF unless the message's header uses bare LF."""
    head = raw[: _header_end(raw) + 2]
    return b"\n" if b"\n" in head and b"\r\n" not in head else b"\r\n"


def sign_dkim(
    raw: bytes,
    domain: str,
    selector: str,
    key_pem: bytes,
    headers: Sequence[str] | None = None,
    *,
    canonicalization: str = "relaxed/relaxed",
    now: float | None = None,
) -> bytes:
    """The message with a DKIM-Signature header field prepended: rsa-sha256 for an RSA key,
    ed25519-sha256 for an Ed25519 one, ``canonicalization`` (header/body) relaxed/relaxed by
    default, h= ``headers`` or :func:`default_signed_headers`, t= ``now`` (default the clock).
    Raises DkimSigningError when the key is unusable or the message has no From."""
    key = load_signing_key(key_pem)
    include = [h.lower() for h in (headers or default_signed_headers(raw))]
    if "from" not in include:
        raise DkimSigningError(
            "the message has no From header field; DKIM signs From (RFC 6376 5.4)"
            if "from" not in header_names(raw)
            else "the signed header fields must include From (RFC 6376 5.4)"
        )
    header_canon, _, body_canon = canonicalization.partition("/")
    try:
        with clock_fixed_at(now):
            signature = dkim.sign(
                raw,
                selector.encode("ascii"),
                domain.encode("ascii"),
                key.dkimpy_key,
                canonicalize=(header_canon.encode(), (body_canon or "simple").encode()),
                signature_algorithm=key.algorithm.encode(),
                include_headers=[h.encode("ascii") for h in include],
                linesep=line_separator(raw),
                logger=_QUIET,
            )
    except (dkim.DKIMException, UnicodeError, ValueError) as error:
        raise DkimSigningError(
            f"cannot sign for {selector}._domainkey.{domain}: {_describe(error)}"
        ) from None
    return bytes(signature) + raw


def signing_key_for(from_domain: str, settings: Settings) -> DkimKey | None:
    """The configured key that signs mail from ``from_domain``: one for that exact domain,
    else one for the closest parent domain (its d= is then aligned with the From domain in
    DMARC's relaxed mode), else None."""
    wanted = from_domain.strip().rstrip(".").lower()
    by_domain: dict[str, DkimKey] = {}
    for key in settings.dkim_keys:
        by_domain.setdefault(key.domain.rstrip(".").lower(), key)
    if wanted in by_domain:
        return by_domain[wanted]
    labels = wanted.split(".")
    for start in range(1, len(labels) - 1):  # parents of two labels or more
        parent = ".".join(labels[start:])
        if parent in by_domain:
            return by_domain[parent]
    return None


def generate_key(algorithm: Algorithm = "rsa", bits: int = 2048) -> tuple[bytes, str]:
    """A new key pair: (the private key as PKCS#8 PEM, the TXT value to publish, e.g.
    ``v=DKIM1; k=rsa; p=MIIB...``). ``bits`` applies to RSA (1024 to 4096; 2048 advised by
    RFC 8301). Raises ValueError for an unknown algorithm or size."""
    private: rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey
    if algorithm == "rsa":
        if not MIN_RSA_BITS <= bits <= MAX_RSA_BITS:
            raise ValueError(f"RSA keys are {MIN_RSA_BITS} to {MAX_RSA_BITS} bits, not {bits}")
        private = rsa.generate_private_key(public_exponent=65537, key_size=bits)
        public = private.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    elif algorithm == "ed25519":
        private = ed25519.Ed25519PrivateKey.generate()
        public = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
    else:
        raise ValueError(f"the algorithm is rsa or ed25519, not {algorithm!r}")
    pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return pem, f"v=DKIM1; k={algorithm}; p={base64.b64encode(public).decode('ascii')}"


def dns_record(domain: str, selector: str, txt_value: str) -> str:
    """The zone-file line publishing ``txt_value``: ``<selector>._domainkey.<domain>. IN TXT``
    followed by the value as quoted strings of at most 255 characters each (RFC 1035 3.3)."""
    chunks = [txt_value[i : i + 255] for i in range(0, len(txt_value), 255)] or [""]
    quoted = " ".join(f'"{chunk}"' for chunk in chunks)
    return f"{selector}._domainkey.{domain.rstrip('.')}. IN TXT {quoted}"


def key_name(domain: str, selector: str) -> str:
    """Where the public key of ``selector`` at ``domain`` is published."""
    return f"{selector}._domainkey.{domain.rstrip('.')}"
