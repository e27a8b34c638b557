"""The MTA-STS check: the ``_mta-sts`` record, the policy host, and (when a fetcher is given)
the policy itself, which :func:`fetch_mta_sts_policy` fetches over HTTPS."""

from __future__ import annotations

import datetime
import re
import ssl
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any

from postwise.auth.dns import DnsTemporaryError
from postwise.ops.domain_audit.context import Audit
from postwise.ops.domain_audit.mx import MxHost
from postwise.ops.domain_audit.records import RecordError, parse_tag_list, shorten
from postwise.outbound.mta_sts import mx_pattern_matches

PolicyFetcher = Callable[[str], str]
"""Fetches an MTA-STS policy: takes its ``https://mta-sts.<domain>/.well-known/mta-sts.txt``
URL, returns the body; any exception means the policy is unavailable."""


def audit_mta_sts(audit: Audit, hosts: Sequence[MxHost], fetcher: PolicyFetcher | None) -> None:
    domain = audit.domain
    name = f"_mta-sts.{domain}"
    policy_host = f"mta-sts.{domain}"
    url = f"https://{policy_host}/.well-known/mta-sts.txt"
    mx_lines = ", ".join(f'"mx: {h.host}"' for h in hosts) or f'"mx: mail.{domain}"'
    try:
        lookup = audit.resolver.txt(name)
    except DnsTemporaryError as error:
        audit.lookup_failed("MTA_STS_LOOKUP_FAILED", name, "TXT", error, "its MTA-STS policy")
        return
    records = [r for r in lookup.records if re.match(r"v=STSv1\s*(;|$)", r)]
    if not records:
        today = datetime.datetime.now(datetime.UTC).strftime("%Y%m%d")
        audit.add(
            "MTA_STS_MISSING",
            f"{domain} publishes no MTA-STS policy: senders fall back to plaintext when an "
            "attacker strips STARTTLS",
            f"{name} TXT: no v=STSv1 record",
            f'Publish `{name}. TXT "v=STSv1; id={today}"` and serve {url} with the lines '
            f'"version: STSv1", "mode: testing", {mx_lines}, "max_age: 86400" (mode: enforce '
            "once the TLS reports are clean).",
        )
        return
    evidence = f'{name} TXT "{records[0]}"'
    problem = ""
    if len(records) > 1:
        problem = f"{len(records)} v=STSv1 records (senders then ignore MTA-STS)"
        evidence = " | ".join(f'{name} TXT "{r}"' for r in records)
    else:
        try:
            tags = dict(parse_tag_list(records[0]))
            if not re.fullmatch(r"[A-Za-z0-9]{1,32}", tags.get("id", "")):
                problem = "id= must be 1 to 32 letters or digits"
        except RecordError as error:
            problem = str(error)
    audit.records["mta_sts"] = {"record": records[0], "policy_url": url}
    if problem:
        audit.add(
            "MTA_STS_SYNTAX",
            f"the MTA-STS record at {name} is invalid: {problem}",
            evidence,
            f'Publish one record: `{name}. TXT "v=STSv1; id=<1-32 letters or digits, changed '
            'whenever the policy changes>"`.',
        )
    try:
        host_lookup = audit.resolver.addresses(policy_host)
    except DnsTemporaryError as error:
        audit.lookup_failed("MTA_STS_LOOKUP_FAILED", policy_host, "A/AAAA", error, "its host")
        return
    if host_lookup.void:
        audit.add(
            "MTA_STS_POLICY_HOST_MISSING",
            f"{domain} announces MTA-STS but {policy_host} has no address, so no sender can "
            "fetch the policy",
            f"{policy_host} A/AAAA: {'NXDOMAIN' if host_lookup.nxdomain else 'no records'}",
            f"Point {policy_host} at a web server with a valid certificate for it, serving {url}.",
        )
        return
    if fetcher is None:
        audit.add(
            "MTA_STS_POLICY_NOT_FETCHED",
            f"the MTA-STS policy at {url} was not fetched (the audit stays off the web unless "
            "asked), so its mode and mx patterns were not checked",
            evidence,
            "Audit again with --fetch-mta-sts to check the policy.",
        )
        return
    _check_mta_sts_policy(audit, url, hosts, fetcher)


def _check_mta_sts_policy(
    audit: Audit, url: str, hosts: Sequence[MxHost], fetcher: PolicyFetcher
) -> None:
    try:
        body = fetcher(url)
    except Exception as error:  # any failure of a pluggable fetcher means "unavailable"
        audit.add(
            "MTA_STS_POLICY_UNAVAILABLE",
            f"the MTA-STS policy at {url} could not be fetched: senders that cached it keep "
            "using it, new ones see no policy",
            f"{url}: {error}",
            f"Serve {url} over HTTPS with a certificate valid for its host, as text/plain, "
            "without redirects.",
        )
        return
    policy: dict[str, list[str]] = {}
    for line in body.splitlines():
        if line.strip():
            key, _, value = line.partition(":")
            policy.setdefault(key.strip().lower(), []).append(value.strip())
    problems = []
    if policy.get("version") != ["STSv1"]:
        problems.append("version: STSv1 is required")
    mode = (policy.get("mode") or [""])[0]
    if mode not in ("enforce", "testing", "none"):
        problems.append("mode: must be enforce, testing or none")
    max_age = (policy.get("max_age") or [""])[0]
    if not max_age.isdigit() or int(max_age) > 31557600:
        problems.append("max_age: must be a number of seconds up to 31557600")
    patterns = [p.lower().rstrip(".") for p in policy.get("mx", [])]
    if mode in ("enforce", "testing") and not patterns:
        problems.append("mx: at least one is required")
    audit.records["mta_sts"]["policy"] = {"mode": mode, "max_age": max_age, "mx": patterns}
    evidence = f"{url}: " + " / ".join(line.strip() for line in body.splitlines() if line.strip())
    if problems:
        audit.add(
            "MTA_STS_POLICY_SYNTAX",
            f"the MTA-STS policy at {url} is invalid: " + "; ".join(problems),
            shorten(evidence, 300),
            "Correct the policy file: " + "; ".join(problems) + ".",
        )
        return
    if mode == "testing":
        audit.add(
            "MTA_STS_TESTING",
            "the MTA-STS policy is in testing mode: failures are reported (TLS-RPT), not prevented",
            shorten(evidence, 300),
            "When the TLS reports show no failures, change to mode: enforce and change the "
            "id= of the _mta-sts record.",
        )
    elif mode == "none":
        audit.add(
            "MTA_STS_MODE_NONE",
            "the MTA-STS policy is mode: none (withdrawn): senders do not apply it",
            shorten(evidence, 300),
            "Nothing to do if MTA-STS is being withdrawn; otherwise use mode: testing or enforce.",
        )
    if mode == "none":
        return
    for host in hosts:
        if not any(mx_pattern_matches(p, host.host) for p in patterns):
            audit.add(
                "MTA_STS_MX_NOT_COVERED",
                f"the MX host {host.host} matches no mx: line of the MTA-STS policy: senders "
                "that enforce it will not deliver there",
                shorten(evidence, 300),
                f"Add `mx: {host.host}` to the policy and change the id= of the _mta-sts record.",
            )


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # RFC 8461 3.3: redirects must not be followed


def fetch_mta_sts_policy(url: str, timeout: float = 10.0) -> str:
    """Fetch an MTA-STS policy over HTTPS with certificate validation, no redirects, at most
    64 KiB (RFC 8461 3.3). This is the public internet: the audit calls it only when given as
    ``mta_sts_fetcher``. Raises OSError (urllib's errors) when the policy is unavailable."""
    opener = urllib.request.build_opener(
        _NoRedirect, urllib.request.HTTPSHandler(context=ssl.create_default_context())
    )
    with opener.open(url, timeout=timeout) as response:
        if response.status != 200:
            raise OSError(f"HTTP {response.status}")
        data: bytes = response.read(65537)
    if len(data) > 65536:
        raise OSError("the policy is larger than 64 KiB")
    return data.decode("utf-8", "replace")
