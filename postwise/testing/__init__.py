"""Real servers for tests and benchmarks: SMTP sinks that behave like mailbox providers, and a
private Postfix instance on loopback. Imported by the test suite and by ``benchmarks/``; nothing
in the running product uses it."""

from postwise.testing.postfix import (
    PostfixError,
    PrivatePostfix,
    Submission,
    ensure_postfix,
    wait_for_port,
)
from postwise.testing.provider_sink import ProviderSink, SunkMessage, free_port, magic_of

__all__ = [
    "PostfixError",
    "PrivatePostfix",
    "ProviderSink",
    "Submission",
    "SunkMessage",
    "ensure_postfix",
    "free_port",
    "magic_of",
    "wait_for_port",
]
