"""The imagegen gateway: the orchestrator callers talk to.

Run the server with ``python -m gateway``. The ``imagegen`` client lives in :mod:`clients.cli`
and the one-machine stack driver of ``make run`` in :mod:`tools.stack`.
"""
