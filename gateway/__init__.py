"""The imagegen gateway: the orchestrator callers talk to, and the ``imagegen`` client.

Run the server with ``python -m gateway``, the client with ``imagegen`` (:mod:`gateway.cli`)
and the whole stack on one machine with ``python -m gateway.stack`` (``make run``).
"""
