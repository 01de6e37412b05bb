"""The CLI's end-to-end tests drive the whole system that the gateway tests start."""

from tests.gateway.conftest import exit_stack, start_gateway, system

__all__ = ["exit_stack", "start_gateway", "system"]
