"""Real servers for tests and benchmarks: SMTP sinks that behave like mailbox providers, a
private Postfix instance on loopback, and ``postwise serve`` as a child process. Imported by
the test suite and by ``benchmarks/``; nothing in the running product uses it."""

from postwise.testing.postfix import (
    PostfixError,
    PrivatePostfix,
    Submission,
    ensure_postfix,
    wait_for_port,
)
from postwise.testing.provider_sink import ProviderSink, SunkMessage, free_port, magic_of
from postwise.testing.serve_process import ServeProcess, domain_shaping, sink_zone

__all__ = [
    "PostfixError",
    "PrivatePostfix",
    "ProviderSink",
    "ServeProcess",
    "Submission",
    "SunkMessage",
    "domain_shaping",
    "ensure_postfix",
    "free_port",
    "magic_of",
    "sink_zone",
    "wait_for_port",
]
