"""``postwise serve`` as a child process delivering to local sinks: what the throughput and
durability benchmarks and the SIGKILL test run. The child has its own process group, so a
SIGKILL reaches every process it started."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from postwise.auth.zone_server import ZoneRecord, ZoneServer
from postwise.testing.provider_sink import ProviderSink, free_port


def sink_zone(sinks: Sequence[ProviderSink], domains: Sequence[str]) -> ZoneServer:
    """A DNS server giving domain ``j`` the MX host ``mx.<domain>`` on sink ``j % len``."""
    records = []
    for j, domain in enumerate(domains):
        records.append(ZoneRecord(domain, "MX", (10, f"mx.{domain}")))
        records.append(ZoneRecord(f"mx.{domain}", "A", sinks[j % len(sinks)].host))
    return ZoneServer(records)


def domain_shaping(domains: Sequence[str], connections: int, per_connection: int = 100) -> str:
    """An operator shaping file with one table per domain: like Postfix's per-destination
    concurrency; rate limits active but set above reach."""
    return "".join(
        f'[domain."{domain}"]\n'
        f"max_connections = {connections}\n"
        f"max_messages_per_connection = {per_connection}\n"
        "messages_per_minute = 600000\n"
        "messages_per_hour = 36000000\n\n"
        for domain in domains
    )


class ServeProcess:
    """``postwise serve`` (``python -m postwise``, this interpreter) with only the outbound
    side on, its state in ``data_dir``, MX lookups through ``zone`` and delivery to
    ``delivery_port``."""

    def __init__(
        self,
        data_dir: Path,
        zone: ZoneServer,
        delivery_port: int,
        shaping_path: Path,
        *,
        concurrency: int = 100,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.log_path = data_dir.parent / "serve.log"
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("POSTWISE_")},
            "POSTWISE_DATA_DIR": str(data_dir),
            "POSTWISE_DNS_SERVERS": json.dumps([zone.address]),
            "POSTWISE_DELIVERY_PORT": str(delivery_port),
            "POSTWISE_SHAPING_POLICY_PATH": str(shaping_path),
            "POSTWISE_SMTP_ENABLED": "false",
            "POSTWISE_MILTER_ENABLED": "false",
            "POSTWISE_SUBMISSION_ENABLED": "false",
            "POSTWISE_DELIVERY_CONCURRENCY": str(concurrency),
            "POSTWISE_DELIVERY_HOSTNAME": "out.postwise.test",
            "POSTWISE_RETRY_BASE_SECONDS": "1",
            "POSTWISE_RETRY_MAX_SECONDS": "2",
            "POSTWISE_DELIVERY_POLL_SECONDS": "0.2",
            **(extra_env or {}),
        }
        self.process: subprocess.Popen[bytes] | None = None
        self.api_port = free_port()

    def start(self) -> ServeProcess:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                # This interpreter, not ``uv run``: the same environment, whatever PATH holds.
                [sys.executable, "-m", "postwise", "serve", "--port", str(self.api_port)],
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the API answers ``/healthz``. Raises TimeoutError (with the log's tail)
        when it does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url("/healthz"), timeout=2) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        tail = self.log()[-2000:]
        raise TimeoutError(f"postwise serve did not answer in {timeout:.0f} s:\n{tail}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.api_port}{path}"

    def post(self, path: str) -> dict[str, Any]:
        """POST to the running API; the JSON answer."""
        request = urllib.request.Request(self.url(path), method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
        return answer

    def kill(self) -> None:
        """SIGKILL the whole process group: no cleanup, no flush."""
        if self.process is not None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
            self.process = None

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)
        except ProcessLookupError:
            pass
        self.process = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
