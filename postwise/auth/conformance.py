"""The public SPF test suites, run through Postwise's own code path.

Each scenario of an OpenSPF-format suite (``pyspf/rfc7208-tests.yml``, ``rfc4408-tests.yml``,
pyspf's ``test.yml``) describes the DNS it needs; a :class:`ZoneServer` on loopback serves exactly
that, and every case runs :func:`postwise.auth.spf.check_spf` through a :class:`Resolver` pointed
at it, as production does against real DNS. How the suite's zone data becomes DNS:

* ``SPF`` records (type 99) are served as TXT unless the name has ``TXT`` entries of its own:
  the suite's own convention ("auto-magic duplication of SPF to TXT records by test suite
  drivers", its header). Type 99 itself is not served: RFC 7208 3.1 retired it and 4.4 reads
  TXT only, so no Postwise query asks for it;
* ``TIMEOUT`` at a name: the suite's drivers time out the queries for the types the name has
  no records of. The server times out whole names, so a name with no served record is never
  answered (``temperror``); one that has records answers them (the only such name,
  ``spftimeout.example.net``, holds TXT and is only ever asked for TXT);
* ``TXT: NONE``: the name has no TXT record (and none is generated from its SPF entries);
* a list value is one record of several strings (RFC 7208 3.3: they are joined). The empty
  list (``null-text``: "null text is illegal, but SPF should not crash") cannot be sent as
  such: RFC 1035 3.3.14 requires at least one string, so it is served as one empty string,
  which, like the record the suite means, is not an SPF record;
* CNAME chains are served flattened to their final target, as a recursive resolver answers
  a stub (the server follows one alias per answer); a loop stays a loop;
* names are given to the server in DNS presentation form, so labels with spaces
  (``macro-mania-in-domain``) match the queries the server receives.

A case passes when the result is one of the acceptable ``result`` values and, for a ``fail``
with an ``explanation``, the explanation matches. Cases may be skipped only with a reason
listed in :data:`SPF_SKIPS` (an RFC erratum or a test the suite itself marks as not applying).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dnslib import DNSLabel

from postwise.auth.dns import Resolver, parse_server
from postwise.auth.spf import DEFAULT_FAIL_EXPLANATION, check_spf
from postwise.auth.zone_server import ZoneRecord, ZoneServer

# The suites under <data>/spf, in the order they are reported. The RFC 7208 one is the target.
SPF_SUITES: dict[str, str] = {
    "rfc7208": "pyspf/rfc7208-tests.yml",
    "rfc4408": "pyspf/rfc4408-tests.yml",
    "pyspf": "pyspf/test.yml",
}
DEFAULT_SPF_SUITES = ("rfc7208",)

# (suite, case) -> why the case is not run: in the RFC suites only an RFC erratum may justify a
# skip (none is needed); pyspf's own file also tests pyspf modes that are not RFC 7208.
SPF_SKIPS: dict[tuple[str, str], str] = {
    ("pyspf", "default-modifier"): (
        "pyspf's lax mode (strict: 0) only: the 'default=' modifier is a pre-RFC 4408 "
        "extension that RFC 7208 does not define (6: unknown modifiers are ignored), and "
        "Postwise evaluates in RFC mode"
    ),
    ("pyspf", "default-modifier-harsh"): (
        "pyspf's harsh mode (strict: 2) only: 'ambiguous' is not an RFC 7208 result (2.6)"
    ),
}

_RECORD_TYPES = {"A", "AAAA", "MX", "PTR", "CNAME", "TXT", "SPF"}
# How long the resolver waits for a TIMEOUT name: the loopback server answers everything else
# in well under a millisecond.
CONFORMANCE_DNS_TIMEOUT = 0.5


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's outcome: ``passed``, ``failed`` or ``skipped``."""

    name: str
    status: str
    expected: tuple[str, ...] = ()
    got: str = ""
    explanation: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "case": self.name,
            "expected": list(self.expected),
            "got": self.got,
            "explanation": self.explanation,
        }


@dataclass
class ConformanceReport:
    """The result of one suite."""

    suite: str
    source: str
    cases: list[CaseResult] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(1 for case in self.cases if case.status == "passed")

    @property
    def failed(self) -> int:
        return sum(1 for case in self.cases if case.status == "failed")

    @property
    def skipped(self) -> int:
        return sum(1 for case in self.cases if case.status == "skipped")

    def to_json(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "source": self.source,
            "total": len(self.cases),
            "passed": self.passed,
            "failed": self.failed,
            "skipped": self.skipped,
            "failures": [c.to_json() for c in self.cases if c.status == "failed"],
            "skips": [
                {"case": c.name, "reason": c.explanation}
                for c in self.cases
                if c.status == "skipped"
            ],
        }


@dataclass(frozen=True, slots=True)
class _Case:
    name: str
    host: str
    mail_from: str
    helo: str
    results: tuple[str, ...]
    explanation: str | None


@dataclass(frozen=True, slots=True)
class _Scenario:
    description: str
    records: tuple[ZoneRecord, ...]
    timeouts: tuple[str, ...]
    cases: tuple[_Case, ...]


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _presentation(name: str) -> str:
    """``name`` as the server sees it in a query (special characters escaped)."""
    return str(DNSLabel(name.rstrip("."))).rstrip(".")


def _flatten_aliases(aliases: dict[str, str]) -> dict[str, str]:
    """Each alias pointed at the end of its chain (loops are left as they are)."""
    flat = {}
    for start, target in aliases.items():
        seen = {start}
        while target.lower() in aliases and target.lower() not in seen:
            seen.add(target.lower())
            target = aliases[target.lower()]
        flat[start] = target
    return flat


def _zone(zonedata: dict[str, Any]) -> tuple[list[ZoneRecord], list[str]]:
    """The suite's zone data as records and names that time out (see the module docstring)."""
    records: list[ZoneRecord] = []
    timed_out: list[str] = []
    aliases: dict[str, str] = {}
    for raw_name, entries in (zonedata or {}).items():
        name = _presentation(str(raw_name))
        has_txt = False
        spf_values: list[Any] = []
        served = 0
        for entry in entries or []:
            if entry == "TIMEOUT":
                timed_out.append(name)
                continue
            if not isinstance(entry, dict):
                raise ValueError(f"{name}: zone entry {entry!r} is neither a record nor TIMEOUT")
            for rtype, value in entry.items():
                rtype = str(rtype).upper()
                if rtype not in _RECORD_TYPES:
                    raise ValueError(f"{name}: record type {rtype} is not supported")
                if rtype == "TXT":
                    has_txt = True
                if value == "NONE":
                    continue
                if rtype == "SPF":
                    spf_values.append(value)
                    continue
                if rtype == "CNAME":
                    aliases[name.lower()] = str(value).rstrip(".")
                    served += 1
                    continue
                records.append(ZoneRecord(name, rtype, _value(rtype, value)))
                served += 1
        if not has_txt:
            records += [ZoneRecord(name, "TXT", _value("TXT", v)) for v in spf_values]
            served += len(spf_values)
        if served:
            timed_out = [n for n in timed_out if n != name]
    records += [ZoneRecord(n, "CNAME", t) for n, t in _flatten_aliases(aliases).items()]
    return records, timed_out


def _value(rtype: str, value: Any) -> Any:
    if rtype == "MX":
        return (int(value[0]), str(value[1]))
    if rtype == "TXT" and isinstance(value, list) and not value:
        return [""]
    return value


def load_pyspf_suite(path: Path) -> list[_Scenario]:
    """The scenarios of an OpenSPF-format YAML suite. Raises OSError when the file cannot be
    read, ValueError when it is not such a suite."""
    import yaml

    try:
        return _scenarios(path)
    except yaml.YAMLError as error:
        raise ValueError(f"{path}: not YAML: {error}") from error
    except (KeyError, TypeError, AttributeError, IndexError) as error:
        raise ValueError(f"{path}: not an OpenSPF-format suite ({error!r})") from error


def _scenarios(path: Path) -> list[_Scenario]:
    import yaml

    scenarios = []
    with path.open("rb") as stream:
        for document in yaml.safe_load_all(stream):
            if not document:
                continue
            records, timeouts = _zone(document.get("zonedata") or {})
            cases = []
            for name, test in (document.get("tests") or {}).items():
                result = test["result"]
                results = tuple(str(r) for r in (result if isinstance(result, list) else [result]))
                explanation = test.get("explanation")
                cases.append(
                    _Case(
                        name=str(name),
                        host=_text(test.get("host")),
                        mail_from=_text(test.get("mailfrom")),
                        helo=_text(test.get("helo")),
                        results=results,
                        explanation=None if explanation is None else str(explanation),
                    )
                )
            scenarios.append(
                _Scenario(
                    _text(document.get("description")),
                    tuple(records),
                    tuple(timeouts),
                    tuple(cases),
                )
            )
    return scenarios


def _run_case(suite: str, case: _Case, resolver: Resolver) -> CaseResult:
    skip = SPF_SKIPS.get((suite, case.name))
    if skip is not None:
        return CaseResult(case.name, "skipped", case.results, explanation=skip)
    outcome = check_spf(case.host, case.mail_from, case.helo, resolver)
    got = outcome.result
    if got not in case.results:
        return CaseResult(case.name, "failed", case.results, got, outcome.explanation)
    # "DEFAULT": the implementation's own explanation (the drivers set it to that word).
    wanted = DEFAULT_FAIL_EXPLANATION if case.explanation == "DEFAULT" else case.explanation
    if got == "fail" and wanted is not None and outcome.explanation != wanted:
        return CaseResult(
            case.name,
            "failed",
            case.results,
            got,
            f"explanation {outcome.explanation!r}, expected {case.explanation!r}",
        )
    return CaseResult(case.name, "passed", case.results, got)


def run_spf_suite(
    path: Path, suite: str | None = None, dns_timeout: float = CONFORMANCE_DNS_TIMEOUT
) -> ConformanceReport:
    """Run every case of the suite at ``path`` (named ``suite``, by default the file's stem)
    against a loopback DNS server serving each scenario's zone. Raises OSError or ValueError
    when the file cannot be read as a suite."""
    name = suite or path.stem
    report = ConformanceReport(name, str(path))
    scenarios = load_pyspf_suite(path)
    with ZoneServer() as server:
        resolver = Resolver([parse_server(server.address)], timeout=dns_timeout)
        for scenario in scenarios:
            server.load(scenario.records, timeouts=scenario.timeouts)
            for case in scenario.cases:
                report.cases.append(_run_case(name, case, resolver))
    return report


def spf_suite_paths(
    data_dir: Path, names: Iterable[str] = DEFAULT_SPF_SUITES
) -> Iterator[tuple[str, Path]]:
    """(name, path) of the named suites under ``data_dir`` (the shared data folder). Raises
    ValueError for an unknown name."""
    for name in names:
        if name not in SPF_SUITES:
            raise ValueError(f"unknown SPF suite {name!r}; known: {', '.join(SPF_SUITES)}")
        yield name, data_dir / "spf" / SPF_SUITES[name]


def run_spf_suites(
    data_dir: Path, names: Iterable[str] = DEFAULT_SPF_SUITES
) -> list[ConformanceReport]:
    """Each named suite's report (see :func:`run_spf_suite`). Raises OSError when a suite file
    is missing, ValueError when one is malformed or a name unknown."""
    return [run_spf_suite(path, name) for name, path in spf_suite_paths(data_dir, names)]
