"""The public DKIM and ARC test suites, run through Postwise's own code path.

Every case resolves its keys through a :class:`~postwise.auth.dns.Resolver` pointed at a
:class:`~postwise.auth.zone_server.ZoneServer` on loopback that serves exactly the records the
case states, as production resolves real DNS. The shared data folder (``--data``) holds:

DKIM (``dkim/``, README.md there):

* **verify** — ``verify-vectors.dkimpy-1.1.8.json``: each signature of each listed message,
  verified by :func:`~postwise.auth.dkim.verify_dkim` with the clock at the vectors' moment
  (unix 1667843664). The DNS is the vector's: files of ``dkimpy/``, the records at the top of a
  ``mail-auth/`` file, or one of three keys the JSON names in words (RFC 8463 A.2's ed25519 and
  RSA keys, dkimpy's ed25519 test key), derived here from their private keys in ``dkimpy/``.
  Expected: ``pass`` where dkimpy 1.1.8 verifies; where it raised, ``permerror``; where it said
  False because the fixture lacks the key, ``permerror`` ("no key"); otherwise fail/permerror.
* **sign** — each signature of ``dkimpy/rfc6376.signed.msg``, ``dkimpy/rfc6376.signed.rsa.msg``
  and ``mail-auth/001.txt`` (the RFC 8463 Appendix A message, relaxed/relaxed) re-made by
  :func:`~postwise.auth.dkim.sign_dkim` from the message without its signatures, with the
  key of its selector and its own c=, h= and t=. Ed25519 and RSA PKCS#1 v1.5 signatures are
  deterministic, so the case passes only when b= is the published one byte for byte (and every
  other tag the same); the new signature must also verify. One exception: under ``c=simple/``
  header canonicalisation the signature header's own line folding is signed, and the two
  dkimpy files were folded by an older dkimpy than ours, so there b= is left out of the
  comparison (the relaxed RFC 8463 example in ``mail-auth/001.txt`` is exact for both keys).
* **key** — dkimpy's own key fixtures (the cases of its test suite): ``test.message`` signed
  with a private key, verified against a key record: good records in each format dkimpy
  ships (SubjectPublicKeyInfo and bare RSAPublicKey p=, PKCS#1 and PKCS#8 private keys,
  ed25519) pass; a truncated key, an unknown k=, a bad v= and an s=tlsrpt-only key do not.

ARC (``arc/``, README.md there):

* **validation** — ValiMail's ``arc-draft-validation-tests.yml`` (171 cases): each
  scenario's ``txt-records`` served, each message validated by
  :func:`~postwise.auth.arc.verify_arc` with the clock at the newest ``t=`` of the message
  (the moment the last hop sealed it), the chain status compared with ``cv``. Three cases
  leave ``cv`` blank: chains whose seal says ``cv=fail``, which the draft called
  "terminated"; RFC 8617 5.2 makes them ``fail``, so ``fail`` is expected.
* **signing** — ``arc-draft-sign-tests.yml`` (17 cases): each message sealed by
  :func:`~postwise.auth.arc.arc_set` with the scenario's key, ``t``, ``srv-id`` and
  ``sig-headers``, in the suite's standardised layout. The Authentication-Results passed in is
  the suite's consolidation of the message's own (every result of the ``srv-id``'s header
  fields, in order). The produced AS and AMS must equal the expected ones tag by tag (b= byte
  for byte once the suite's line folding is removed: RSA signatures are deterministic, so this
  proves the signed bytes identical), and the AAR must equal it after relaxed canonicalisation
  (RFC 6376 3.4.2). Blank AS/AMS/AAR mean no set may be added.
* **mail-auth** — two real sealed messages, expected ``pass`` (the clock at their newest ``t=``).
* ``unused_tests.yml`` is skipped: its 7 cases are parked by the suite's authors.

A failure the suite itself gets wrong (it predates RFC 8617) would be listed in
:data:`ARC_EXPLAINED` with its reason; the CLI's exit status counts only the others.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from dkim.util import parse_tag_value

from postwise.auth.arc import arc_set, verify_arc
from postwise.auth.conformance import CaseResult, ConformanceReport
from postwise.auth.dkim import sign_dkim, verify_dkim
from postwise.auth.dns import Resolver, parse_server
from postwise.auth.zone_server import ZoneRecord, ZoneServer

DKIM_VECTORS = "dkim/verify-vectors.dkimpy-1.1.8.json"
DKIM_VECTOR_TIME = 1667843664  # the clock the vectors were made at (their README)
ARC_VALIDATION = "arc/arc_test_suite/arc-draft-validation-tests.yml"
ARC_SIGNING = "arc/arc_test_suite/arc-draft-sign-tests.yml"
ARC_UNUSED = "arc/arc_test_suite/unused_tests.yml"
ARC_MAIL_AUTH = "arc/mail-auth"
CONFORMANCE_DNS_TIMEOUT = 1.0

# Private keys in dkim/dkimpy/ by the (selector, domain) they sign for.
_SIGNING_KEYS = {
    ("brisbane", "football.example.com"): "rfc8032_7_1.key",
    ("test", "football.example.com"): "test.private",
}
_SIGNING_VECTORS = (
    "dkimpy/rfc6376.signed.msg",
    "dkimpy/rfc6376.signed.rsa.msg",
    "mail-auth/001.txt",
)

# (private key file, key record file, acceptable results, what dkimpy's own test asserts)
_KEY_VECTORS: tuple[tuple[str, str, tuple[str, ...], str], ...] = (
    ("test.private", "test.txt", ("pass",), "the reference key"),
    ("test.private", "test2.txt", ("pass",), "no k=: rsa is the default (RFC 6376 3.6.1)"),
    ("test.private", "test_bad.txt", ("permerror", "fail"), "a truncated key (test_catch_bad_key)"),
    ("test.private", "badk.txt", ("permerror",), "k=ed25519-sha256 is not a key type"),
    ("test.private", "badversion.txt", ("permerror",), "v=DKIM1: is not v=DKIM1"),
    ("test.private", "test_tlsrpt.txt", ("permerror",), "s=tlsrpt: not a key for mail"),
    ("1024_testkey.key", "1024_testkey_wo_markers.pub.txt", ("pass",), "SubjectPublicKeyInfo"),
    ("1024_testkey.key", "1024_testkey_wo_markers.pub.rsa.txt", ("pass",), "bare RSAPublicKey"),
    ("2048_testkey.key", "2048_testkey_wo_markers.pub.txt", ("pass",), "SubjectPublicKeyInfo"),
    ("2048_testkey.key", "2048_testkey_wo_markers.pub.rsa.txt", ("pass",), "bare RSAPublicKey"),
    ("2048_testkey_PKCS8.key", "2048_testkey_PKCS8.key.pub.txt", ("pass",), "PKCS#8 private key"),
    ("ed25519test.key", "ed25519test.dns", ("pass",), "ed25519 (RFC 8463)"),
)

# ARC cases that fail for a reason of the suite's, not Postwise's: case -> why. (None today.)
ARC_EXPLAINED: dict[str, str] = {}

_SIMPLE_HEADER_NOTE = (
    "c=simple/...: the published signature header was folded by an older dkimpy and simple "
    "header canonicalisation signs that folding, so b= is not compared; every other tag is "
    "identical and the re-made signature verifies"
)
_BLANK_CV_NOTE = (
    "the suite leaves cv blank for a chain whose seal says cv=fail (the draft's 'terminated'); "
    "RFC 8617 5.2 makes it fail"
)


# --- shared helpers --------------------------------------------------------------------------


def _crlf(text: bytes) -> bytes:
    return re.sub(rb"\r?\n", b"\r\n", text)


def _record_value(value: Any) -> str:
    """A key record as the suites write it (folded over lines) as one TXT value."""
    return " ".join(str(value).split())


def _mail_auth_file(path: Path) -> tuple[list[ZoneRecord], bytes]:
    """A mail-auth file: ``name value`` lines, a blank line, then the message (LF -> CRLF)."""
    data = path.read_bytes()
    head, _, message = data.partition(b"\n\n")
    records = []
    for line in head.decode("utf-8").splitlines():
        if line.strip():
            name, _, value = line.strip().partition(" ")
            records.append(ZoneRecord(name, "TXT", value.strip()))
    return records, _crlf(message)


def _resolver(server: ZoneServer) -> Resolver:
    return Resolver([parse_server(server.address)], timeout=CONFORMANCE_DNS_TIMEOUT)


def _header_fields(raw: bytes) -> list[tuple[str, bytes]]:
    """(lower-cased name, unfolded value) of each header field, top first."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    fields: list[tuple[str, bytes]] = []
    for line in re.split(rb"\r?\n", head):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1] = (fields[-1][0], fields[-1][1] + b" " + line.strip())
        elif b":" in line:
            name, _, value = line.partition(b":")
            fields.append((name.strip().lower().decode("ascii", "replace"), value.strip()))
    return fields


def _tags(value: bytes) -> dict[str, str]:
    """A tag list with all whitespace removed from the values (folding is not content)."""
    return {
        k.decode("ascii"): re.sub(r"\s+", "", v.decode("ascii"))
        for k, v in parse_tag_value(value).items()
    }


def _newest_t(raw: bytes) -> int | None:
    """The newest ``t=`` of the message's header (the moment of its last signature)."""
    head = re.split(rb"\r?\n\r?\n", raw, maxsplit=1)[0]
    stamps = [int(t) for t in re.findall(rb"(?:^|[;\s])t\s*=\s*(\d{1,12})\b", head)]
    return max(stamps) if stamps else None


# --- DKIM ------------------------------------------------------------------------------------


def _public_record(private_key_file: Path) -> str:
    """The key record for a private key in dkimpy's formats (PEM, or a bare ed25519 seed)."""
    data = private_key_file.read_bytes()
    if b"-----BEGIN" in data:
        key = serialization.load_pem_private_key(data, password=None)
        spki = key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return f"v=DKIM1; k=rsa; p={base64.b64encode(spki).decode('ascii')}"
    from cryptography.hazmat.primitives.asymmetric import ed25519

    seed = base64.b64decode(data.strip())
    public = ed25519.Ed25519PrivateKey.from_private_bytes(seed).public_key()
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"v=DKIM1; k=ed25519; p={base64.b64encode(raw).decode('ascii')}"


# What the vectors' JSON names in words instead of a file.
_DNS_LABELS = {
    "RFC 8463 A.2 ed25519 key": "rfc8032_7_1.key",
    "RFC 8463 A.2 rsa key": "test.private",
    "ed25519 test key": "ed25519test.key",
}


def _vector_dns(base: Path, dns: Any, message_path: Path) -> tuple[list[ZoneRecord], bytes]:
    if isinstance(dns, str):  # "first block of the file": a mail-auth message
        return _mail_auth_file(message_path)
    records = []
    for name, source in dns.items():
        if source in _DNS_LABELS:
            value = _public_record(base / "dkimpy" / _DNS_LABELS[source])
        else:
            value = (base / source).read_text().strip()
        records.append(ZoneRecord(name.rstrip("."), "TXT", value))
    return records, message_path.read_bytes()


def _expected(signature: dict[str, Any]) -> tuple[tuple[str, ...], str]:
    """The acceptable results of one vector signature, and the reason we expect them."""
    verdict = signature.get("dkimpy_1_1_8_verify")
    if verdict is True:
        return ("pass",), ""
    if isinstance(verdict, str) and verdict.startswith("exception:"):
        return ("permerror",), f"dkimpy raised {verdict.partition(':')[2]}"
    if signature.get("dns_names_missing_from_fixture"):
        return ("permerror",), "the fixture has no key for it: 'no key'"
    return ("fail", "permerror"), "dkimpy says it does not verify"


def _dkim_verify_cases(data_dir: Path, server: ZoneServer) -> Iterator[CaseResult]:
    base = data_dir / "dkim"
    vectors = json.loads((data_dir / DKIM_VECTORS).read_text())["vectors"]
    resolver = _resolver(server)
    for vector in vectors:
        records, message = _vector_dns(base, vector["dns"], base / vector["message"])
        server.load(records)
        results = verify_dkim(message, resolver, now=DKIM_VECTOR_TIME)
        for signature in vector["signatures"]:
            index = int(signature["sig_index"])
            name = f"verify:{vector['message']}#{index}"
            expected, why = _expected(signature)
            if index >= len(results):
                yield CaseResult(name, "failed", expected, "", "no result for this signature")
                continue
            got = results[index]
            if signature.get("d") and (got.domain, got.selector) != (
                signature["d"],
                signature["s"],
            ):
                yield CaseResult(
                    name, "failed", expected, got.result,
                    f"result {index} is for d={got.domain} s={got.selector}, "
                    f"not d={signature['d']} s={signature['s']}",
                )  # fmt: skip
                continue
            ok = got.result in expected and ("no key" not in why or got.reason.startswith("no key"))
            status = "passed" if ok else "failed"
            yield CaseResult(name, status, expected, got.result, got.reason or why)


def _without_signatures(raw: bytes) -> bytes:
    """The message with its DKIM-Signature header fields removed."""
    lines = re.split(rb"(?<=\n)", raw)
    kept, dropping, in_header = [], False, True
    for line in lines:
        if in_header and line in (b"\r\n", b"\n"):
            in_header = False
        if in_header and line[:1] in (b" ", b"\t"):
            if not dropping:
                kept.append(line)
            continue
        dropping = in_header and line.lower().startswith(b"dkim-signature:")
        if not dropping:
            kept.append(line)
    return b"".join(kept)


def _dkim_sign_cases(data_dir: Path, server: ZoneServer) -> Iterator[CaseResult]:
    base = data_dir / "dkim"
    resolver = _resolver(server)
    for relative in _SIGNING_VECTORS:
        path = base / relative
        if relative.startswith("mail-auth/"):
            records, signed = _mail_auth_file(path)
        else:
            signed = path.read_bytes()
            records = []
        published = [v for n, v in _header_fields(signed) if n == "dkim-signature"]
        unsigned = _without_signatures(signed)
        for index, value in enumerate(published):
            tags = _tags(value)
            name = f"sign:{relative}#{index} ({tags.get('a', '?')})"
            key_file = _SIGNING_KEYS.get((tags.get("s", ""), tags.get("d", "")))
            if key_file is None:
                yield CaseResult(name, "skipped", explanation="no private key for this selector")
                continue
            key = base / "dkimpy" / key_file
            made = sign_dkim(
                unsigned,
                tags["d"],
                tags["s"],
                key.read_bytes(),
                headers=tags["h"].split(":"),
                canonicalization=tags.get("c", "simple/simple"),
                now=float(tags["t"]),
            )
            mine = _tags(_header_fields(made)[0][1])
            # Under simple header canonicalisation the signature header's own line folding is
            # signed: b= then depends on the signer's folding layout, not only on the content.
            exact = tags.get("c", "simple").split("/")[0] == "relaxed"
            compared = (set(tags) | set(mine)) - (set() if exact else {"b"})
            differing = sorted(k for k in compared if tags.get(k) != mine.get(k))
            if differing:
                detail = ", ".join(f"{k}={mine.get(k)!r} not {tags.get(k)!r}" for k in differing)
                yield CaseResult(name, "failed", ("identical",), "different", detail[:500])
                continue
            record = ZoneRecord(f"{tags['s']}._domainkey.{tags['d']}", "TXT", _public_record(key))
            server.load([*records, record])
            check = verify_dkim(made, resolver, now=float(tags["t"]))
            if not check or check[0].result != "pass":
                reason = check[0].reason if check else "no result"
                yield CaseResult(name, "failed", ("pass",), "not pass", f"re-made: {reason}")
                continue
            note = "" if exact else _SIMPLE_HEADER_NOTE
            yield CaseResult(name, "passed", ("identical",), "identical", note)


def _dkim_key_cases(data_dir: Path, server: ZoneServer) -> Iterator[CaseResult]:
    base = data_dir / "dkim" / "dkimpy"
    resolver = _resolver(server)
    message = base.joinpath("test.message").read_bytes()
    for key_file, record_file, expected, what in _KEY_VECTORS:
        name = f"key:{record_file} signed with {key_file}"
        signed = sign_dkim(message, "example.com", "test", (base / key_file).read_bytes(), now=0)
        server.load([ZoneRecord("test._domainkey.example.com", "TXT", _record(base / record_file))])
        got = verify_dkim(signed, resolver, now=DKIM_VECTOR_TIME)[0]
        status = "passed" if got.result in expected else "failed"
        yield CaseResult(name, status, expected, got.result, got.reason or what)


def _record(path: Path) -> str:
    return path.read_text().strip()


def run_dkim_conformance(data_dir: Path) -> ConformanceReport:
    """Every DKIM case under ``data_dir`` (the shared data folder; see the module docstring).
    Raises OSError when the data is missing, ValueError when it is malformed."""
    report = ConformanceReport("dkim", str(data_dir / "dkim"))
    if not (data_dir / DKIM_VECTORS).is_file():
        raise FileNotFoundError(f"{data_dir / DKIM_VECTORS} does not exist (give --data)")
    with ZoneServer() as server:
        report.cases += _dkim_verify_cases(data_dir, server)
        report.cases += _dkim_sign_cases(data_dir, server)
        report.cases += _dkim_key_cases(data_dir, server)
    return report


# --- ARC -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ArcScenario:
    description: str
    records: list[ZoneRecord]
    document: dict[str, Any]


def _arc_scenarios(path: Path) -> list[_ArcScenario]:
    import yaml

    scenarios = []
    with path.open("rb") as stream:
        for document in yaml.safe_load_all(stream):
            if not document:
                continue
            records = [
                ZoneRecord(str(name).rstrip("."), "TXT", _record_value(value))
                for name, value in (document.get("txt-records") or {}).items()
            ]
            scenarios.append(
                _ArcScenario(" ".join(str(document.get("description")).split()), records, document)
            )
    return scenarios


def _message(test: dict[str, Any]) -> bytes:
    return _crlf(str(test.get("message") or "").encode("utf-8"))


def _arc_validation_cases(data_dir: Path, server: ZoneServer) -> Iterator[CaseResult]:
    resolver = _resolver(server)
    for scenario in _arc_scenarios(data_dir / ARC_VALIDATION):
        server.load(scenario.records)
        for case, test in (scenario.document.get("tests") or {}).items():
            name = f"validation:{case}"
            message = _message(test)
            wanted = str(test.get("cv") or "").strip().lower()
            note = ""
            if not wanted:
                wanted, note = "fail", _BLANK_CV_NOTE
            got = verify_arc(message, resolver, now=_newest_t(message) or DKIM_VECTOR_TIME)
            yield _arc_outcome(name, wanted, got.result, note or got.reason)


def _arc_outcome(name: str, wanted: str, got: str, explanation: str) -> CaseResult:
    if got == wanted:
        return CaseResult(name, "passed", (wanted,), got, explanation)
    return CaseResult(name, "failed", (wanted,), got, ARC_EXPLAINED.get(name, explanation))


def consolidated_results(message: bytes, srv_id: str) -> str:
    """The suite's AR consolidation: every result of the Authentication-Results header fields
    of ``srv_id``, in order, joined by '; '."""
    results: list[str] = []
    for name, value in _header_fields(message):
        if name != "authentication-results":
            continue
        parts = [" ".join(p.split()) for p in value.decode("utf-8", "replace").split(";")]
        if parts and parts[0].strip().lower() == srv_id.lower():
            results += [p for p in parts[1:] if p]
    return "; ".join(results)


def _relaxed(value: str) -> str:
    return " ".join(value.split())


def _arc_signing_cases(data_dir: Path) -> Iterator[CaseResult]:
    for scenario in _arc_scenarios(data_dir / ARC_SIGNING):
        document = scenario.document
        key = str(document["privatekey"]).encode("ascii")
        for case, test in (document.get("tests") or {}).items():
            name = f"signing:{case}"
            message = _message(test)
            srv_id = str(test["srv-id"])
            made = arc_set(
                message,
                str(document["domain"]),
                str(document["sel"]),
                key,
                srv_id,
                consolidated_results(message, srv_id),
                now=float(test["t"]),
                headers=str(test["sig-headers"]).split(":"),
                standardize=True,
            )
            wanted = {k: str(test.get(k) or "").strip() for k in ("AS", "AMS", "AAR")}
            if not any(wanted.values()):
                got = "no set" if not made else "a set"
                yield _arc_outcome(name, "no set", got, "the chain failed: nothing to add")
                continue
            produced = {
                "AS": made[0].partition(b":")[2] if made else b"",
                "AMS": made[1].partition(b":")[2] if made else b"",
                "AAR": made[2].partition(b":")[2] if made else b"",
            }
            differing = []
            for header in ("AS", "AMS"):
                mine = _tags(produced[header]) if produced[header] else {}
                theirs = _tags(wanted[header].encode("ascii"))
                differing += [
                    f"{header} {k}="
                    for k in sorted(set(mine) | set(theirs))
                    if mine.get(k) != theirs.get(k)
                ]
            if _relaxed(produced["AAR"].decode("utf-8")) != _relaxed(wanted["AAR"]):
                differing.append("AAR")
            got = "identical" if not differing else "differs: " + ", ".join(differing)
            yield _arc_outcome(name, "identical", got, "")


def _arc_mail_auth_cases(data_dir: Path, server: ZoneServer) -> Iterator[CaseResult]:
    resolver = _resolver(server)
    for path in sorted((data_dir / ARC_MAIL_AUTH).glob("*.txt")):
        records, message = _mail_auth_file(path)
        server.load(records)
        got = verify_arc(message, resolver, now=_newest_t(message))
        yield _arc_outcome(f"mail-auth:{path.name}", "pass", got.result, got.reason)


def _arc_unused_cases(data_dir: Path) -> Iterator[CaseResult]:
    path = data_dir / ARC_UNUSED
    if not path.is_file():
        return
    for scenario in _arc_scenarios(path):
        for case in scenario.document.get("tests") or {}:
            yield CaseResult(
                f"unused:{case}",
                "skipped",
                explanation="parked by the suite's authors in unused_tests.yml (no agreed result)",
            )


def run_arc_conformance(data_dir: Path) -> ConformanceReport:
    """Every ARC case under ``data_dir`` (the shared data folder; see the module docstring).
    Raises OSError when the data is missing, ValueError when it is malformed."""
    report = ConformanceReport("arc", str(data_dir / "arc"))
    if not (data_dir / ARC_VALIDATION).is_file():
        raise FileNotFoundError(f"{data_dir / ARC_VALIDATION} does not exist (give --data)")
    with ZoneServer() as server:
        report.cases += _arc_validation_cases(data_dir, server)
        report.cases += _arc_signing_cases(data_dir)
        report.cases += _arc_mail_auth_cases(data_dir, server)
        report.cases += _arc_unused_cases(data_dir)
    return report


def unexplained_failures(report: ConformanceReport) -> list[CaseResult]:
    """The failed cases not listed in :data:`ARC_EXPLAINED` (for DKIM: every failed case)."""
    return [c for c in report.cases if c.status == "failed" and c.name not in ARC_EXPLAINED]
