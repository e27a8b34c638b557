"""The private Postfix instance, now in :mod:`postwise.testing.postfix` so benchmarks can use it
too; re-exported here for the tests that import it from this name."""

from postwise.testing.postfix import POSTFIX, PrivatePostfix, ensure_postfix, wait_for_port

__all__ = ["POSTFIX", "PrivatePostfix", "ensure_postfix", "wait_for_port"]
