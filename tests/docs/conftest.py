"""The README's client recipes run against the whole system the gateway tests start."""

from tests.gateway.conftest import exit_stack, system

__all__ = ["exit_stack", "system"]
