"""The TLS context every HTTP client of a backend (model server, ComfyUI, webhook) verifies with.

httpx builds a fresh context for each client it creates, loading the whole CA bundle (tens
of milliseconds of CPU each time); the services create a client per backend and per
replica, so they share one context instead. It is the one httpx would build for a client
with ``trust_env=False``: certifi's CA bundle, hostname checks on.
"""

from __future__ import annotations

import functools
import ssl

import httpx

__all__ = ["backend_tls_context"]


@functools.cache
def backend_tls_context() -> ssl.SSLContext:
    """The process-wide verifying context, built on first use.

    Returns:
        The context to pass as ``verify=`` to ``httpx.AsyncClient``.
    """
    return httpx.create_ssl_context(trust_env=False)
