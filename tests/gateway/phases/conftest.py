"""Fixtures of the shared-phase tests: the real Redis server of the job tests."""

from __future__ import annotations

from tests.gateway.operations.conftest import exit_stack, redis_prefix, redis_server

__all__ = ["exit_stack", "redis_prefix", "redis_server"]
