"""Side-by-side benchmark: Postwise vs SpamAssassin 4 (spamd/spamc) vs bogofilter.

Every filter sees the same messages in the *sender view* (``postwise.inbound.corpus``):
the statistical parts (SpamAssassin Bayes, bogofilter) are trained on the train split of the
shared corpus, and all three are scored on the validation split. Quality (ham false positives,
spam and phish recall) and speed (messages per second over the scan phase only, CPU time per
message, peak memory) are reported as a Markdown table, optionally also as JSON.

Nothing global is changed: SpamAssassin runs from a private site-config copy, a private Bayes
database and a private home directory, with network tests off (``-L``, no DNS blocklists, no
Razor/Pyzor) and auto-learning off; bogofilter uses a private word-list directory. Everything
lives in a temporary directory that is removed at the end (``--keep-tmp`` keeps it).

Run from the repository root::

    uv run python benchmarks/compare_filters.py                 # full validation split
    uv run python benchmarks/compare_filters.py --limit 300     # quick, stratified subsample

Needs the Debian packages ``spamassassin``, ``spamc`` and ``bogofilter``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = Path("..") / "shared" / "data" / "mail"  # relative to the repository root
LABELS = ("ham", "spam", "phish")
CLK_TCK = os.sysconf("SC_CLK_TCK")

TOOLS = {  # executable -> Debian package that ships it
    "spamd": "spamassassin",
    "sa-learn": "spamassassin",
    "spamc": "spamc",
    "bogofilter": "bogofilter",
}


# ---------------------------------------------------------------------------- small helpers


def log(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS / VmHWM (peak RSS) of a process in KiB, from /proc."""
    values: dict[str, int] = {}
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as handle:
            for line in handle:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0])
    except OSError:
        pass
    return values


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process (not its children), from /proc."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def child_pids(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            return [int(p) for p in handle.read().split()]
    except OSError:
        return []


def system_busy_seconds() -> float:
    """CPU seconds spent busy by the whole machine since boot (all cores), from /proc/stat."""
    try:
        with open("/proc/stat", encoding="ascii") as handle:
            fields = [int(v) for v in handle.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK_TCK


def self_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def children_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def version_of(command: Sequence[str]) -> str:
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    text = (out.stdout or out.stderr).strip().splitlines()
    return text[0].strip() if text else "unknown"


def debian_version(package: str) -> str | None:
    if not shutil.which("dpkg-query"):
        return None
    out = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or None


def git_commit() -> str | None:
    out = subprocess.run(
        ["git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    return out.stdout.strip() or None


def check_tools(need_sa: bool, need_bogo: bool) -> None:
    wanted = [
        (exe, pkg)
        for exe, pkg in TOOLS.items()
        if (need_sa and pkg in ("spamassassin", "spamc")) or (need_bogo and pkg == "bogofilter")
    ]
    missing = [(exe, pkg) for exe, pkg in wanted if shutil.which(exe) is None]
    if missing:
        packages = sorted({pkg for _, pkg in missing})
        exes = ", ".join(exe for exe, _ in missing)
        sys.exit(
            f"error: {exes} not found. Install the Debian package(s) "
            f"{' '.join(packages)}:  apt-get install -y {' '.join(packages)}\n"
            "(or leave that filter out with --skip-sa / --skip-bogofilter)"
        )


# ---------------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class Item:
    id: str
    label: str
    path: Path


def stratified_sample(items: list[Item], limit: int | None, seed: int) -> list[Item]:
    """At most ``limit`` items, label shares kept, chosen with a seeded RNG; order stable."""
    if limit is None or limit >= len(items):
        return items
    by_label: dict[str, list[Item]] = defaultdict(list)
    for item in items:
        by_label[item.label].append(item)
    rng = random.Random(seed)
    chosen: list[Item] = []
    for label in sorted(by_label):
        group = by_label[label]
        take = max(1, round(limit * len(group) / len(items)))
        chosen.extend(rng.sample(group, min(take, len(group))))
    order = {id(item): n for n, item in enumerate(items)}
    return sorted(chosen, key=lambda item: order[id(item)])


def write_sender_views(
    data: Path, out: Path, split_seed: int, share: float
) -> tuple[list[Item], list[Item]]:
    """Write the sender view of every corpus message to ``out/{train,val}/<label>/``."""
    from postwise.inbound.corpus import is_validation, read_corpus, sender_view

    train: list[Item] = []
    val: list[Item] = []
    for n, msg in enumerate(read_corpus(data), 1):
        split = "val" if is_validation(msg.group, seed=split_seed, share=share) else "train"
        folder = out / split / msg.label
        folder.mkdir(parents=True, exist_ok=True)
        safe_id = msg.id.replace("/", "_")
        path = folder / f"{safe_id}.eml"
        path.write_bytes(sender_view(msg.raw))
        (val if split == "val" else train).append(Item(msg.id, msg.label, path))
        if n % 2000 == 0:
            log(f"  wrote {n} messages")
    return train, val


# ---------------------------------------------------------------------------- results


@dataclass
class FilterRun:
    name: str
    flagged: dict[str, bool] = field(default_factory=dict)  # message id -> flagged
    unsure: dict[str, bool] = field(default_factory=dict)  # bogofilter only
    scores: dict[str, float] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)  # Postwise message_class
    errors: int = 0
    wall_seconds: float = 0.0
    cpu_seconds: float = 0.0
    workers: int = 1
    peak_rss_kib: int = 0  # largest peak RSS of any one process of the filter
    total_peak_rss_kib: int = 0  # sum of the peak RSS of all its processes
    processes: int = 0
    train_seconds: float | None = None
    machine_busy_seconds: float = 0.0  # all CPU use on the machine during the scan phase
    harness_cpu_seconds: float = 0.0  # this script's own CPU during the scan phase

    @property
    def other_cpu_seconds(self) -> float:
        """CPU used by unrelated processes while this filter was timed."""
        return max(0.0, self.machine_busy_seconds - self.cpu_seconds - self.harness_cpu_seconds)

    notes: list[str] = field(default_factory=list)


def rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def quality(
    run: FilterRun, items: Sequence[Item], unsure_flagged: bool | None = None
) -> dict[str, Any]:
    """Per-label flagged counts. For bogofilter, ``unsure_flagged`` decides where Unsure goes."""
    counts: dict[str, Counter[str]] = {label: Counter() for label in LABELS}
    for item in items:
        if item.id not in run.flagged:
            counts[item.label]["missing"] += 1
            continue
        counts[item.label]["n"] += 1
        flagged = run.flagged[item.id]
        if unsure_flagged is not None and run.unsure.get(item.id):
            flagged = unsure_flagged
            counts[item.label]["unsure"] += 1
        counts[item.label]["flagged"] += int(flagged)
    return {
        label: {
            "n": c["n"],
            "flagged": c["flagged"],
            "share_flagged": rate(c["flagged"], c["n"]),
            "unsure": c["unsure"],
            "not_scanned": c["missing"],
        }
        for label, c in counts.items()
    }


def speed(run: FilterRun, n_messages: int, cores: int) -> dict[str, Any]:
    per_second = n_messages / run.wall_seconds if run.wall_seconds else None
    used_cores = max(1, min(run.workers, cores))
    return {
        "messages": n_messages,
        "wall_seconds": round(run.wall_seconds, 3),
        "messages_per_second": per_second,
        "messages_per_second_per_core": per_second / used_cores if per_second else None,
        "cores_used": used_cores,
        "workers": run.workers,
        "cpu_seconds": round(run.cpu_seconds, 3),
        "cpu_ms_per_message": 1000 * run.cpu_seconds / n_messages if n_messages else None,
        # throughput per busy core: less sensitive to other load than the wall-clock figure
        "messages_per_cpu_second": n_messages / run.cpu_seconds if run.cpu_seconds else None,
        "peak_rss_mib_per_process": run.peak_rss_kib / 1024,
        "sum_peak_rss_mib": run.total_peak_rss_kib / 1024,
        "processes": run.processes,
        "train_seconds": run.train_seconds,
        # CPU used by anything else on the machine while this filter was being timed
        "harness_cpu_seconds": round(run.harness_cpu_seconds, 2),
        "other_cpu_seconds": round(run.other_cpu_seconds, 2),
        "errors": run.errors,
    }


# ---------------------------------------------------------------------------- bogofilter


def run_bogofilter(
    tmp: Path, train: Sequence[Item], val: Sequence[Item], workers: int
) -> FilterRun:
    run = FilterRun("bogofilter", workers=workers)
    db = tmp / "bogofilter"
    db.mkdir()
    base = ["bogofilter", "-C", "-d", str(db)]  # -C: compiled-in defaults, no /etc config

    log(f"bogofilter: training on {len(train)} messages")
    t0 = time.perf_counter()
    for mode, labels in (("-n", {"ham"}), ("-s", {"spam", "phish"})):
        names = "".join(f"{item.path}\n" for item in train if item.label in labels)
        subprocess.run([*base, mode, "-b"], input=names.encode(), check=True)
    run.train_seconds = time.perf_counter() - t0

    chunks = [list(val[i::workers]) for i in range(workers)]
    procs = []
    cpu0 = children_cpu_seconds()
    busy0, self0 = system_busy_seconds(), self_cpu_seconds()
    t0 = time.perf_counter()
    for n, chunk in enumerate(chunks):
        out = (tmp / f"bogofilter-out-{n}.txt").open("wb")
        proc = subprocess.Popen([*base, "-T", "-b"], stdin=subprocess.PIPE, stdout=out)
        procs.append((proc, out, chunk))
    for proc, _, chunk in procs:
        assert proc.stdin is not None
        proc.stdin.write("".join(f"{item.path}\n" for item in chunk).encode())
        proc.stdin.close()
    for proc, out, _ in procs:
        # wait4 gives this process's own peak RSS (ru_maxrss, KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.close()
        run.peak_rss_kib = max(run.peak_rss_kib, usage.ru_maxrss)
        run.total_peak_rss_kib += usage.ru_maxrss
    run.wall_seconds = time.perf_counter() - t0
    run.machine_busy_seconds = system_busy_seconds() - busy0
    run.harness_cpu_seconds = self_cpu_seconds() - self0
    run.cpu_seconds = children_cpu_seconds() - cpu0
    run.processes = len(procs)

    by_path = {str(item.path): item for item in val}
    for n, (proc, _, _) in enumerate(procs):
        if proc.returncode not in (0, 1, 2):  # 0 spam, 1 ham, 2 unsure; 3 = error
            log(f"bogofilter worker {n} exited with {proc.returncode}")
        for line in (tmp / f"bogofilter-out-{n}.txt").read_text().splitlines():
            path, verdict, score = line.rsplit(" ", 2)
            item = by_path.get(path)
            if item is None:
                continue
            run.flagged[item.id] = verdict == "S"
            run.unsure[item.id] = verdict == "U"
            run.scores[item.id] = float(score)
    run.errors = len(val) - len(run.flagged)
    return run


# ---------------------------------------------------------------------------- SpamAssassin

SA_BENCH_CF = """\
# Written by benchmarks/compare_filters.py: local tests only, private Bayes, no learning.
required_score 5.0
use_bayes 1
bayes_auto_learn 0
bayes_auto_expire 0
bayes_path {bayes}
bayes_file_mode 0777
use_razor2 0
use_pyzor 0
skip_rbl_checks 1
dns_available no
"""


def sa_site_config(tmp: Path, source: Path) -> Path:
    """A private copy of the SpamAssassin site config with the benchmark settings added."""
    site = tmp / "sa" / "site"
    site.mkdir(parents=True)
    for path in sorted(source.glob("*")):
        if path.is_file() and path.suffix in (".pre", ".cf"):
            shutil.copy2(path, site / path.name)
    bayes_dir = tmp / "sa" / "bayes"
    bayes_dir.mkdir()
    # Read last (config files load in name order), so these settings win.
    (site / "zz_benchmark.cf").write_text(SA_BENCH_CF.format(bayes=bayes_dir / "bayes"))
    return site


def run_spamassassin(
    tmp: Path,
    train: Sequence[Item],
    val: Sequence[Item],
    warmup: Sequence[Item],
    workers: int,
    site_source: Path,
    threshold: float,
) -> FilterRun:
    run = FilterRun("SpamAssassin", workers=workers)
    site = sa_site_config(tmp, site_source)
    home = tmp / "sa" / "home"
    home.mkdir()
    prefs = home / "user_prefs"
    prefs.write_text("")
    env = {**os.environ, "HOME": str(home)}
    common = ["--siteconfigpath", str(site), "-L"]

    lint = subprocess.run(
        ["spamassassin", *common, "--prefs-file", str(prefs), "--lint"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    if lint.returncode != 0:
        run.notes.append("spamassassin --lint reported problems: " + lint.stderr.strip()[:300])
        log(run.notes[-1])

    log(f"SpamAssassin: sa-learn on {len(train)} messages (single process, takes a while)")
    t0 = time.perf_counter()
    for mode, labels in (("--ham", {"ham"}), ("--spam", {"spam", "phish"})):
        listing = tmp / "sa" / f"learn{mode[1:]}.txt"
        listing.write_text("".join(f"{item.path}\n" for item in train if item.label in labels))
        subprocess.run(
            ["sa-learn", *common, "--prefs-file", str(prefs), mode, "-f", str(listing)],
            check=True, env=env, stdout=subprocess.DEVNULL,
        )  # fmt: skip
    run.train_seconds = time.perf_counter() - t0
    magic = subprocess.run(
        ["sa-learn", *common, "--prefs-file", str(prefs), "--dump", "magic"],
        capture_output=True, text=True, env=env, check=False,
    )  # fmt: skip
    learned = {
        line.split()[-1]: line.split()[2]
        for line in magic.stdout.splitlines()
        if line.strip().endswith(("nspam", "nham"))
    }
    log(f"SpamAssassin: Bayes holds {learned}")
    run.notes.append(f"Bayes trained: {learned}")

    # spamd may drop to 'nobody' when started as root: let it read and update the journal.
    for path in [tmp, tmp / "sa", *(tmp / "sa").rglob("*")]:
        bayes = path.name.startswith("bayes")
        perm = (0o777 if bayes else 0o755) if path.is_dir() else (0o666 if bayes else 0o644)
        path.chmod(perm)

    port = free_port()
    spamd_cmd = [
        "spamd", *common, "-x", "-H", str(home),
        "--listen", f"127.0.0.1:{port}", "--allowed-ips", "127.0.0.1",
        "--max-children", str(workers), "--min-children", str(workers),
        "--min-spare", "1", "--max-spare", str(workers),
        "--max-conn-per-child", "1000000",  # keep children alive: their peak RSS stays visible
        "--timeout-child", "600", "--syslog", "stderr",
        "--pidfile", str(tmp / "sa" / "spamd.pid"),
    ]  # fmt: skip
    if os.geteuid() == 0:
        spamd_cmd += ["--username", "nobody"]
    spamd_log = (tmp / "sa" / "spamd.log").open("wb")
    spamd = subprocess.Popen(spamd_cmd, stdout=spamd_log, stderr=subprocess.STDOUT, env=env)
    spamc = ["spamc", "-d", "127.0.0.1", "-p", str(port), "-x", "-t", "600", "-s", "50000000"]
    try:
        deadline = time.monotonic() + 180
        while subprocess.run([*spamc, "-K"], capture_output=True, check=False).returncode != 0:
            if spamd.poll() is not None or time.monotonic() > deadline:
                spamd_log.close()
                sys.exit("spamd did not start:\n" + (tmp / "sa" / "spamd.log").read_text()[-2000:])
            time.sleep(0.5)

        def check(item: Item) -> tuple[Item, float | None]:
            with item.path.open("rb") as handle:
                out = subprocess.run([*spamc, "-c"], stdin=handle, capture_output=True, check=False)
            if out.returncode not in (0, 1):
                return item, None
            try:
                return item, float(out.stdout.decode().split("/")[0])
            except ValueError:
                return item, None

        log(f"SpamAssassin: warm-up with {len(warmup)} train messages")
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(check, warmup))

        tree = [spamd.pid, *child_pids(spamd.pid)]
        cpu0 = sum(proc_cpu_seconds(p) for p in tree) + children_cpu_seconds()
        log(f"SpamAssassin: scanning {len(val)} messages with {workers} spamd children")
        busy0, self0 = system_busy_seconds(), self_cpu_seconds()
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            results = list(pool.map(check, val))
        run.wall_seconds = time.perf_counter() - t0
        run.machine_busy_seconds = system_busy_seconds() - busy0
        run.harness_cpu_seconds = self_cpu_seconds() - self0
        tree = [spamd.pid, *child_pids(spamd.pid)]
        run.cpu_seconds = sum(proc_cpu_seconds(p) for p in tree) + children_cpu_seconds() - cpu0
        peaks = [proc_status(p).get("VmHWM", 0) for p in tree]
        children = peaks[1:]
        run.peak_rss_kib = max(children or peaks)
        run.total_peak_rss_kib = sum(peaks)
        run.processes = len(tree)
        if len(tree) - 1 != workers:
            run.notes.append(f"spamd had {len(tree) - 1} children at the end (asked {workers})")
    finally:
        spamd.send_signal(signal.SIGTERM)
        try:
            spamd.wait(timeout=30)
        except subprocess.TimeoutExpired:
            spamd.kill()
            spamd.wait()
        spamd_log.close()

    for item, score in results:
        if score is None:
            run.errors += 1
            continue
        run.scores[item.id] = score
        run.flagged[item.id] = score >= threshold
    return run


# ---------------------------------------------------------------------------- Postwise


def postwise_worker(list_file: str, warmup_file: str, out_file: str) -> None:
    """Child process: load the scanner, warm up, say READY, wait for GO, scan, report."""
    from postwise.inbound.scanner import Scanner

    scanner = Scanner.from_settings()
    for line in Path(warmup_file).read_text().splitlines():
        scanner.scan(Path(line).read_bytes())
    usage0 = resource.getrusage(resource.RUSAGE_SELF)
    print("READY", flush=True)
    sys.stdin.readline()
    paths = Path(list_file).read_text().splitlines()
    with open(out_file, "w", encoding="utf-8") as out:
        for line in paths:
            ident, path = line.split("\t", 1)
            try:
                verdict = scanner.scan(Path(path).read_bytes())
                record = {
                    "id": ident,
                    "action": verdict.action,
                    "class": verdict.message_class,
                    "score": float(verdict.score),
                }
            except Exception as exc:  # a crash on one message must not stop the benchmark
                record = {"id": ident, "error": f"{type(exc).__name__}: {exc}"[:300]}
            out.write(json.dumps(record) + "\n")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu = usage.ru_utime + usage.ru_stime - usage0.ru_utime - usage0.ru_stime
    summary = {
        "cpu_seconds": cpu,
        "peak_rss_kib": usage.ru_maxrss,
        "model_version": str(getattr(scanner, "model_version", "unknown")),
    }
    print(json.dumps(summary), flush=True)


def postwise_importable() -> str | None:
    """None when the Postwise scanner imports and loads its model, else the reason."""
    code = "from postwise.inbound.scanner import Scanner; Scanner.from_settings()"
    probe = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True, text=True, cwd=REPO_ROOT, check=False,
    )  # fmt: skip
    if probe.returncode == 0:
        return None
    lines = probe.stderr.strip().splitlines()
    return lines[-1] if lines else f"exit code {probe.returncode}"


def run_postwise(tmp: Path, val: Sequence[Item], warmup: Sequence[Item], workers: int) -> FilterRun:
    run = FilterRun("Postwise", workers=workers)
    work = tmp / "postwise"
    work.mkdir()
    warm = work / "warmup.txt"
    warm.write_text("".join(f"{item.path}\n" for item in warmup))
    procs = []
    log(f"Postwise: starting {workers} worker processes (loading the scanner)")
    for n in range(workers):
        chunk = val[n::workers]
        listing = work / f"chunk-{n}.txt"
        listing.write_text("".join(f"{item.id}\t{item.path}\n" for item in chunk))
        proc = subprocess.Popen(
            [sys.executable, __file__, "--postwise-worker", str(listing), str(warm),
             str(work / f"out-{n}.jsonl")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT,
        )  # fmt: skip
        procs.append(proc)
    for proc in procs:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != "READY":
            proc.wait()
            sys.exit(f"Postwise worker failed to start (exit {proc.returncode})")
    log(f"Postwise: scanning {len(val)} messages with {workers} worker processes")
    busy0, self0 = system_busy_seconds(), self_cpu_seconds()
    t0 = time.perf_counter()
    for proc in procs:
        assert proc.stdin is not None
        proc.stdin.write("GO\n")
        proc.stdin.flush()
    summaries = []
    for proc in procs:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        summaries.append(json.loads(line) if line.strip() else {})
    run.wall_seconds = time.perf_counter() - t0
    run.machine_busy_seconds = system_busy_seconds() - busy0
    run.harness_cpu_seconds = self_cpu_seconds() - self0
    for proc in procs:
        proc.wait()
    run.cpu_seconds = sum(s.get("cpu_seconds", 0.0) for s in summaries)
    peaks = [int(s.get("peak_rss_kib", 0)) for s in summaries]
    run.peak_rss_kib = max(peaks)
    run.total_peak_rss_kib = sum(peaks)
    run.processes = workers
    versions = sorted({str(s.get("model_version")) for s in summaries})
    run.notes.append(f"model version: {', '.join(versions)}")
    error_kinds: Counter[str] = Counter()
    for n in range(workers):
        for line in (work / f"out-{n}.jsonl").read_text().splitlines():
            record = json.loads(line)
            if "error" in record:
                run.errors += 1
                error_kinds[record["error"].split(":")[0]] += 1
                continue
            run.flagged[record["id"]] = record["action"] != "no_action"
            run.classes[record["id"]] = record["class"]
            run.scores[record["id"]] = record["score"]
    if error_kinds:
        run.notes.append(f"scan errors: {dict(error_kinds)}")
    return run


# ---------------------------------------------------------------------------- report


def pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def fmt(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def build_rows(runs: Iterable[FilterRun], val: Sequence[Item], cores: int) -> list[dict[str, Any]]:
    rows = []
    for run in runs:
        variants: list[tuple[str, bool | None]] = [(run.name, None)]
        if run.name == "bogofilter":
            variants = [
                ("bogofilter (Unsure = not flagged)", False),
                ("bogofilter (Unsure = flagged)", True),
            ]
        for label, unsure_flagged in variants:
            row = {
                "filter": label,
                "quality": quality(run, val, unsure_flagged),
                "speed": speed(run, len(val), cores),
                "notes": run.notes,
            }
            if run.classes:
                by_label: dict[str, Counter[str]] = {k: Counter() for k in LABELS}
                for item in val:
                    if item.id in run.classes:
                        by_label[item.label][run.classes[item.id]] += 1
                row["predicted_class"] = {k: dict(v) for k, v in by_label.items()}
            rows.append(row)
    return rows


def markdown(rows: Sequence[dict[str, Any]], val: Sequence[Item]) -> str:
    n = Counter(item.label for item in val)
    head = (
        f"Validation split: {len(val)} messages "
        f"({n['ham']} ham, {n['spam']} spam, {n['phish']} phish), sender view.\n\n"
        "| filter | ham FP | spam recall | phish recall | ham Unsure | msgs/s | msgs/s/core "
        "| msgs/CPU-s | peak RSS/process | sum peak RSS | errors |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = []
    for row in rows:
        q, s = row["quality"], row["speed"]
        unsure = (
            pct(rate(q["ham"]["unsure"], q["ham"]["n"])) if "bogofilter" in row["filter"] else "-"
        )
        lines.append(
            f"| {row['filter']} "
            f"| {pct(q['ham']['share_flagged'])} ({q['ham']['flagged']}/{q['ham']['n']}) "
            f"| {pct(q['spam']['share_flagged'])} "
            f"| {pct(q['phish']['share_flagged'])} "
            f"| {unsure} "
            f"| {fmt(s['messages_per_second'])} "
            f"| {fmt(s['messages_per_second_per_core'])} "
            f"| {fmt(s['messages_per_cpu_second'])} "
            f"| {fmt(s['peak_rss_mib_per_process'])} MiB "
            f"| {fmt(s['sum_peak_rss_mib'])} MiB ({s['processes']} proc) "
            f"| {s['errors']} |"
        )
    return head + "\n".join(lines) + "\n"


def speed_ratios(rows: Sequence[dict[str, Any]], key: str) -> dict[str, float]:
    """Postwise speed divided by each other filter's, for one speed figure ``key``."""
    per_filter: dict[str, float] = {}
    for row in rows:
        name = row["filter"].split(" (")[0]
        per_filter.setdefault(name, row["speed"][key])
    ratios = {}
    postwise = per_filter.get("Postwise")
    for other in ("SpamAssassin", "bogofilter"):
        if postwise and per_filter.get(other):
            ratios[f"Postwise/{other}"] = postwise / per_filter[other]
    return ratios


# ---------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data", type=Path, default=DEFAULT_DATA,
        help="shared mail corpus; relative paths are taken from the repository root "
        f"(default: {DEFAULT_DATA})",
    )  # fmt: skip
    parser.add_argument(
        "--limit", type=int, default=None,
        help="stratified subsample of N validation messages (and, unless --train-limit is "
        "given, of 4*N training messages) for a quick run",
    )  # fmt: skip
    parser.add_argument("--train-limit", type=int, default=None, help="cap on training messages")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --limit subsample")
    parser.add_argument(
        "--split-seed", type=int, default=0,
        help="seed of postwise.inbound.corpus.is_validation; keep it equal to the one the "
        "Postwise model was trained with, or Postwise is scored on its own training mail",
    )  # fmt: skip
    parser.add_argument("--val-share", type=float, default=0.2, help="validation share")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="spamd children, bogofilter processes and Postwise processes (default: cores)",
    )  # fmt: skip
    parser.add_argument("--warmup", type=int, default=4, help="warm-up messages per worker")
    parser.add_argument("--sa-threshold", type=float, default=5.0, help="SA required_score")
    parser.add_argument(
        "--sa-site-config", type=Path, default=Path("/etc/spamassassin"),
        help="SpamAssassin site config to copy (plugin .pre files, local.cf)",
    )  # fmt: skip
    parser.add_argument("--skip-postwise", action="store_true")
    parser.add_argument("--skip-sa", action="store_true")
    parser.add_argument("--skip-bogofilter", action="store_true")
    parser.add_argument("--json", type=Path, default=None, help="also write results as JSON")
    parser.add_argument("--tmp-dir", type=Path, default=None, help="parent of the temp dir")
    parser.add_argument("--keep-tmp", action="store_true", help="keep the temp dir")
    parser.add_argument("--postwise-worker", nargs=3, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.postwise_worker:
        postwise_worker(*args.postwise_worker)
        return 0
    check_tools(need_sa=not args.skip_sa, need_bogo=not args.skip_bogofilter)
    data = args.data if args.data.is_absolute() else REPO_ROOT / args.data
    if not data.is_dir():
        sys.exit(f"error: corpus not found at {data} (use --data)")
    if not args.skip_postwise:
        reason = postwise_importable()
        if reason:
            sys.exit(f"error: Postwise scanner unavailable ({reason}); use --skip-postwise")
    cores = os.cpu_count() or 1
    workers = max(1, args.workers)

    tmp = Path(tempfile.mkdtemp(prefix="postwise-bench-", dir=args.tmp_dir))
    started = time.perf_counter()
    try:
        log(f"writing sender views to {tmp}")
        train, val = write_sender_views(data, tmp / "msgs", args.split_seed, args.val_share)
        full_sizes = (len(train), len(val))
        train_limit = args.train_limit or (4 * args.limit if args.limit else None)
        train = stratified_sample(train, train_limit, args.seed)
        val = stratified_sample(val, args.limit, args.seed)
        warmup = train[: workers * args.warmup]
        log(f"train {len(train)} of {full_sizes[0]}, validation {len(val)} of {full_sizes[1]}")

        runs: list[FilterRun] = []
        if not args.skip_postwise:
            runs.append(run_postwise(tmp, val, warmup, workers))
        if not args.skip_sa:
            site = args.sa_site_config
            runs.append(run_spamassassin(tmp, train, val, warmup, workers, site, args.sa_threshold))
        if not args.skip_bogofilter:
            runs.append(run_bogofilter(tmp, train, val, workers))
    finally:
        if args.keep_tmp:
            log(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = build_rows(runs, val, cores)
    ratios = {
        "wall_clock": speed_ratios(rows, "messages_per_second"),
        "cpu": speed_ratios(rows, "messages_per_cpu_second"),
    }
    table = markdown(rows, val)
    print(table)
    for name, value in ratios["wall_clock"].items():
        per_cpu = ratios["cpu"].get(name)
        extra = f", per CPU-second: {per_cpu:.2f}" if per_cpu else ""
        print(f"Speed ratio {name}: msgs/s {value:.2f}{extra}")
    for run in runs:
        other = run.other_cpu_seconds
        if run.wall_seconds and other > max(1.0, 0.1 * run.wall_seconds * cores):
            run.notes.append(
                f"other processes used {other:.0f} CPU s while this filter was timed "
                f"({100 * other / (run.wall_seconds * cores):.0f} % of the machine): "
                "its speed figures are understated"
            )
        for note in run.notes:
            print(f"Note ({run.name}): {note}")

    if args.json:
        result = {
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "command": " ".join(sys.argv),
            "cores": cores,
            "workers": workers,
            "train_messages": len(train),
            "validation_messages": len(val),
            "validation_by_label": dict(Counter(item.label for item in val)),
            "versions": {
                "spamassassin": debian_version("spamassassin")
                or version_of(["spamassassin", "--version"]),
                "bogofilter": debian_version("bogofilter") or version_of(["bogofilter", "-V"]),
                "python": sys.version.split()[0],
                "postwise_git_commit": git_commit(),
            },
            "filters": rows,
            "speed_ratios": ratios,
            "total_seconds": round(time.perf_counter() - started, 1),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")
        log(f"wrote {args.json}")
    log(f"done in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
