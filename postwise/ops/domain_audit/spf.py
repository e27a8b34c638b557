"""The SPF check: the record's syntax, its ``all``, and its DNS lookups (includes, redirects,
the 10-lookup and 2-void limits, loops)."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from postwise.auth.dns import DnsTemporaryError, Lookup
from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.records import HOSTNAME, RecordError, shorten

SPF_LOOKUP_LIMIT = 10  # RFC 7208 4.6.4
SPF_VOID_LIMIT = 2  # RFC 7208 4.6.4
_SPF_WALK_CAP = 30  # stop counting here: enough to say how far over the limit a record is


@dataclass(frozen=True, slots=True)
class _SpfTerm:
    text: str
    name: str  # mechanism or modifier name, lower-cased
    value: str  # the domain-spec, address or modifier value ('' when none)
    qualifier: str = ""  # '+', '-', '~' or '?' for mechanisms; '' for modifiers

    @property
    def modifier(self) -> bool:
        return not self.qualifier


_SPF_MECHANISMS = ("all", "include", "a", "mx", "ptr", "ip4", "ip6", "exists")
_SPF_COUNTED = ("include", "a", "mx", "ptr", "exists")
_MACRO = re.compile(r"%\{[slodiphcrtv]\d*r?[.\-+,/_=]*\}|%%|%_|%-", re.IGNORECASE)


def _check_domain_spec(spec: str, term: str) -> None:
    bare = _MACRO.sub("x", spec)
    if "%" in bare:
        raise RecordError(f"{term!r} has a malformed macro")
    if bare == spec and not HOSTNAME.fullmatch(spec):
        raise RecordError(f"{term!r} does not name a domain")
    if not re.fullmatch(r"[\x21-\x7e]+", bare):
        raise RecordError(f"{term!r} has characters a domain cannot have")


def _check_cidr(text: str, term: str) -> None:
    match = re.fullmatch(r"(?:/(\d{1,2}))?(?://(\d{1,3}))?", text)
    if match is None or (match[1] and int(match[1]) > 32) or (match[2] and int(match[2]) > 128):
        raise RecordError(f"{term!r} has an invalid prefix length")


def _parse_spf(record: str) -> list[_SpfTerm]:
    """The terms of an SPF record (RFC 7208 4.6.1, 5, 6). Raises RecordError on the first
    term a receiver would reject (permerror)."""
    parts = record.split()
    if not parts or parts[0].lower() != "v=spf1":
        raise RecordError("the record does not start with v=spf1")
    terms: list[_SpfTerm] = []
    for text in parts[1:]:
        modifier = re.fullmatch(r"([A-Za-z][A-Za-z0-9_.-]*)=(.*)", text)
        if modifier:
            name, value = modifier[1].lower(), modifier[2]
            if name in ("redirect", "exp"):
                if any(t.name == name for t in terms if t.modifier):
                    raise RecordError(f"the modifier {name}= appears twice")
                _check_domain_spec(value, text)
            terms.append(_SpfTerm(text, name, value))
            continue
        qualifier = text[0] if text[0] in "+-~?" else "+"
        body = text[1:] if text[0] in "+-~?" else text
        name_match = re.match(r"[A-Za-z0-9]+", body)
        name = name_match[0].lower() if name_match else ""
        rest = body[len(name) :]
        if name not in _SPF_MECHANISMS:
            raise RecordError(f"{text!r} is not an SPF mechanism ({', '.join(_SPF_MECHANISMS)})")
        value = ""
        if name == "all":
            if rest:
                raise RecordError(f"{text!r}: all takes no argument")
        elif name in ("include", "exists"):
            if not rest.startswith(":") or len(rest) < 2:
                raise RecordError(f"{text!r}: {name} needs a domain ({name}:example.com)")
            value = rest[1:]
            _check_domain_spec(value, text)
        elif name in ("a", "mx", "ptr"):
            spec, cidr = rest, ""
            if name != "ptr" and "/" in rest:
                spec, cidr = rest[: rest.index("/")], rest[rest.index("/") :]
                _check_cidr(cidr, text)
            if spec:
                if not spec.startswith(":") or len(spec) < 2:
                    raise RecordError(f"{text!r}: expected {name}:domain")
                value = spec[1:]
                _check_domain_spec(value, text)
        else:  # ip4, ip6
            value = rest[1:] if rest.startswith(":") else ""
            address, _, prefix = value.partition("/")
            try:
                network_type = ipaddress.IPv4Network if name == "ip4" else ipaddress.IPv6Network
                if not address or (prefix and not prefix.isdigit()):
                    raise ValueError(value)
                network_type(value, strict=False)
            except ValueError:
                raise RecordError(f"{text!r} is not a valid {name} address or range") from None
        terms.append(_SpfTerm(text, name, value, qualifier))
    return terms


def _spf_records(lookup: Lookup) -> list[str]:
    """The TXT records that are SPF records (RFC 7208 4.5: ``v=spf1`` then a space or the end)."""
    return [r for r in lookup.records if r.lower() == "v=spf1" or r.lower().startswith("v=spf1 ")]


@dataclass
class _SpfWalk:
    lookups: list[str] = field(default_factory=list)
    voids: list[str] = field(default_factory=list)
    capped: bool = False


def audit_spf(audit: Audit) -> None:
    domain = audit.domain
    try:
        lookup = audit.resolver.txt(domain)
    except DnsTemporaryError as error:
        audit.lookup_failed("SPF_LOOKUP_FAILED", domain, "TXT", error, "its SPF record")
        return
    records = _spf_records(lookup)
    if not records:
        audit.add(
            "SPF_MISSING",
            f"{domain} publishes no SPF record: receivers cannot tell its servers from "
            "forgers (SPF none)",
            shorten(
                f"{domain} TXT: " + ("; ".join(f'"{r}"' for r in lookup.records) or "no records"),
                300,
            ),
            f'Publish one TXT record listing the senders, e.g. `{domain}. TXT "v=spf1 mx '
            f'include:<your provider> -all"`, or `"v=spf1 -all"` if {domain} sends no mail.',
        )
        return
    if len(records) > 1:
        merged = _merge_spf(records)
        audit.add(
            "SPF_MULTIPLE_RECORDS",
            f"{domain} publishes {len(records)} SPF records: receivers return permerror "
            "(RFC 7208 4.5) and SPF fails for all of its mail",
            " | ".join(f'{domain} TXT "{r}"' for r in records),
            f'Merge them into one record, e.g. `{domain}. TXT "{merged}"`, and delete the others.',
        )
        audit.records["spf"] = {"records": records}
        return
    walk = _SpfWalk()
    _walk_spf(audit, walk, domain, records[0], (domain,), top=True, passes=True)
    audit.records["spf"] = {
        "record": records[0],
        "dns_lookups": len(walk.lookups),
        "void_lookups": len(walk.voids),
        "lookups": walk.lookups,
    }
    count = f"at least {len(walk.lookups)}" if walk.capped else str(len(walk.lookups))
    if len(walk.lookups) > SPF_LOOKUP_LIMIT:
        audit.add(
            "SPF_TOO_MANY_LOOKUPS",
            f"the SPF record of {domain} needs {count} DNS lookups, over the limit of "
            f"{SPF_LOOKUP_LIMIT}: receivers return permerror and SPF fails for all of its mail",
            f'{domain} TXT "{records[0]}"; lookups: {_group_lookups(walk.lookups)}',
            "Bring it to 10 or fewer: drop includes of services no longer used, replace a/mx "
            "with the ip4/ip6 ranges they stand for, remove ptr, or move a sending service to a "
            "subdomain with its own SPF record.",
        )
    if walk.voids:
        over = len(walk.voids) > SPF_VOID_LIMIT
        audit.add(
            "SPF_VOID_LOOKUPS",
            f"the SPF record of {domain} has {len(walk.voids)} lookups that find nothing"
            + (
                f", over the limit of {SPF_VOID_LIMIT}: receivers return permerror"
                if over
                else " (a typo or a lapsed service; a third makes SPF fail)"
            ),
            "void: " + _group_lookups(walk.voids),
            "Remove the terms that point at names with no records, or correct their spelling: "
            + ", ".join(v.split(": ", 1)[1] for v in walk.voids),
            "high" if over else "low",
        )


def _group_lookups(lookups: Sequence[str]) -> str:
    """``a: t1, a: t2, b: t3`` -> ``a: t1 t2; b: t3`` (in order, for a readable evidence)."""
    groups: list[tuple[str, list[str]]] = []
    for lookup in lookups:
        domain, _, term = lookup.partition(": ")
        if groups and groups[-1][0] == domain:
            groups[-1][1].append(term)
        else:
            groups.append((domain, [term]))
    return "; ".join(f"{domain}: {' '.join(terms)}" for domain, terms in groups)


def _merge_spf(records: Sequence[str]) -> str:
    terms: list[str] = []
    for record in records:
        for term in record.split()[1:]:
            bare = term.lstrip("+-~?").lower()
            if bare != "all" and not bare.startswith("redirect=") and term not in terms:
                terms.append(term)
    return " ".join(["v=spf1", *terms, "-all"])


def _walk_spf(
    audit: Audit,
    walk: _SpfWalk,
    domain: str,
    record: str,
    path: tuple[str, ...],
    top: bool,
    passes: bool,
) -> None:
    """Count the lookups of ``record`` (published at ``domain``) and of what it includes.

    ``path``: the domains that led here (a repeat is a loop). ``top``: this record's ``all``
    decides the domain's result (the domain's own record, or one it redirects to). ``passes``:
    a match here passes the domain's mail (every include on the way was ``+``)."""
    where = "" if len(path) == 1 else f" (reached via {' -> '.join(path[:-1])})"
    try:
        terms = _parse_spf(record)
    except RecordError as error:
        audit.add(
            "SPF_SYNTAX",
            f"the SPF record of {domain}{where} is invalid: {error}; receivers return permerror",
            f'{domain} TXT "{record}"',
            f"Correct the record at {domain}: {error}. Mechanisms are all, include:, a, mx, "
            "ip4:, ip6:, exists: and ptr, each optionally prefixed with + - ~ ?.",
        )
        return
    mechanisms = [t for t in terms if not t.modifier]
    all_term = next((t for t in mechanisms if t.name == "all"), None)
    evaluated = mechanisms[: mechanisms.index(all_term) + 1] if all_term else mechanisms
    for term in evaluated:
        if term.name not in _SPF_COUNTED:
            continue
        if len(walk.lookups) >= _SPF_WALK_CAP:
            walk.capped = True
            return
        walk.lookups.append(f"{domain}: {term.text}")
        if term.name == "include":
            passes_here = passes and term.qualifier == "+"
            _follow_spf(audit, walk, domain, record, term, path, False, passes_here)
        else:
            _spf_target_lookup(audit, walk, domain, term)
    redirect = next((t for t in terms if t.modifier and t.name == "redirect"), None)
    if all_term is not None:
        if all_term.qualifier == "+" and (top or passes):
            fixed = " ".join("-all" if t == all_term.text else t for t in record.split())
            audit.add(
                "SPF_PLUS_ALL",
                f"the SPF record of {domain}{where} ends in {all_term.text}: every server on "
                f"the internet passes SPF for {path[0]}",
                f'{domain} TXT "{record}"',
                f'Publish `{domain}. TXT "{fixed}"` (or ~all while you confirm every sender)'
                if top
                else f"Remove include:{domain} from the chain: a record that passes everyone "
                "cannot be included.",
            )
        elif all_term.qualifier == "?" and top:
            fixed = " ".join("-all" if t == all_term.text else t for t in record.split())
            audit.add(
                "SPF_NEUTRAL_ALL",
                f"the SPF record of {domain} ends in ?all: mail from any other server is "
                "'neutral', which protects nothing",
                f'{domain} TXT "{record}"',
                f'Publish `{domain}. TXT "{fixed}"` (or ~all while you confirm every sender).',
            )
    elif redirect is not None and "%" not in redirect.value:
        if len(walk.lookups) >= _SPF_WALK_CAP:
            walk.capped = True
            return
        walk.lookups.append(f"{domain}: {redirect.text}")
        _follow_spf(audit, walk, domain, record, redirect, path, top, passes)
    elif top and redirect is None:
        audit.add(
            "SPF_NO_ALL",
            f"the SPF record of {domain} has no all mechanism and no redirect: mail from "
            "unlisted servers gets 'neutral', which protects nothing",
            f'{domain} TXT "{record}"',
            f'Publish `{domain}. TXT "{record.rstrip()} -all"`.',
        )
    if top and any(t.name == "ptr" for t in evaluated):
        audit.add(
            "SPF_PTR",
            f"the SPF record of {domain} uses ptr, which RFC 7208 5.5 says not to use: slow, "
            "unreliable, and some receivers skip it",
            f'{domain} TXT "{record}"',
            "Replace ptr with the ip4:/ip6: ranges or a: names of the servers it stood for.",
        )


def _follow_spf(
    audit: Audit,
    walk: _SpfWalk,
    domain: str,
    record: str,
    term: _SpfTerm,
    path: tuple[str, ...],
    top: bool,
    passes: bool,
) -> None:
    """Follow include: or redirect= (``term`` of ``record`` at ``domain``) to its target."""
    if "%" in term.value:
        return  # a macro depends on the message being checked: nothing to look up now
    target = term.value.rstrip(".").lower()
    if target in path:
        audit.add(
            "SPF_INCLUDE_LOOP",
            f"the SPF records of {' -> '.join((*path, target))} form a loop: receivers stop "
            "at the lookup limit and return permerror",
            f'{domain} TXT "{record}"',
            f"Remove {term.text} from the record of {domain}.",
        )
        return
    try:
        lookup = audit.resolver.txt(target)
    except DnsTemporaryError as error:
        audit.lookup_failed("SPF_LOOKUP_FAILED", target, "TXT", error, f"{term.text} ({domain})")
        return
    if lookup.void:
        walk.voids.append(f"{domain}: {term.text}")
    records = _spf_records(lookup)
    if not records:
        audit.add(
            "SPF_INCLUDE_NO_RECORD",
            f"{term.text} in the SPF record of {domain} names a domain with no SPF record: "
            "receivers return permerror (RFC 7208 5.2, 6.1)",
            f"{target} TXT: " + ("NXDOMAIN" if lookup.nxdomain else "no SPF record"),
            f"Remove {term.text} from the record of {domain}, or correct the name (providers "
            "document theirs, e.g. include:_spf.<provider>).",
        )
        return
    if len(records) > 1:
        audit.add(
            "SPF_MULTIPLE_RECORDS",
            f"{target} (from {term.text} in the SPF record of {domain}) publishes "
            f"{len(records)} SPF records: receivers return permerror",
            " | ".join(f'{target} TXT "{r}"' for r in records),
            f"Ask the owner of {target} to publish one record, or remove {term.text}.",
        )
        return
    _walk_spf(audit, walk, target, records[0], (*path, target), top, passes)


def _spf_target_lookup(audit: Audit, walk: _SpfWalk, domain: str, term: _SpfTerm) -> None:
    """The lookup behind a, mx or exists (ptr depends on the client: nothing to look up)."""
    if term.name == "ptr" or "%" in term.value:
        return
    target = (term.value or domain).rstrip(".").lower()
    try:
        if term.name == "a":
            void = audit.resolver.addresses(target).void
        elif term.name == "exists":
            void = audit.resolver.query(target, "A").void
        else:
            exchanges = audit.resolver.mx(target)
            void = not exchanges
            if len(exchanges) > SPF_LOOKUP_LIMIT:
                audit.add(
                    "SPF_TOO_MANY_LOOKUPS",
                    f"{term.text} in the SPF record of {domain} names {len(exchanges)} MX hosts; "
                    f"receivers look up at most {SPF_LOOKUP_LIMIT} (RFC 7208 4.6.4) and return "
                    "permerror",
                    f"{target} MX: " + ", ".join(host for _, host in exchanges),
                    f"Replace {term.text} with the ip4:/ip6: ranges of the sending servers.",
                )
    except DnsTemporaryError as error:
        audit.lookup_failed("SPF_LOOKUP_FAILED", target, term.name.upper(), error, term.text)
        return
    if void:
        walk.voids.append(f"{domain}: {term.text}")
