"""Announcing a job's end to its caller's URL, signed per Standard Webhooks.

Each delivery is a JSON ``POST`` with the ``webhook-id``, ``webhook-timestamp`` and
``webhook-signature`` headers, signed with the gateway's ``whsec_`` secret by the
``standardwebhooks`` package (receivers verify with the same package, or any Standard
Webhooks library)::

    {"type": "job.completed", "timestamp": "2026-01-01T12:00:00+00:00",
     "data": {"name": "operations/<id>", "state": "JOB_STATE_SUCCEEDED", "request_id": "..."}}

- Only URLs under an entry of the allow-list are accepted at submit, and checked again
  before each delivery: the gateway never posts to an arbitrary (internal) address, and
  follows no redirect.
- A delivery runs in its own task and never holds up the job. A network error, a 5xx
  or a 429 is retried with exponential backoff; another 4xx ends the delivery. The
  ``webhook-id`` stays the same across retries so receivers can drop duplicates.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from imagegen.gateway.v1 import gateway_pb2
from services.common.backend_tls import backend_tls_context
from services.common.errors import FailedPreconditionError, FieldViolation, InvalidArgumentError
from services.common.logs import get_logger

__all__ = ["JOB_COMPLETED", "JOB_FAILED", "WebhookPolicy", "WebhookSender", "allowed_url"]

JOB_COMPLETED = "job.completed"
"""Sent when a job succeeded."""
JOB_FAILED = "job.failed"
"""Sent when a job failed or was cancelled."""
EVENT_TYPES = (JOB_COMPLETED, JOB_FAILED)

_log = get_logger(__name__)


def allowed_url(url: str, allow_list: Sequence[str]) -> bool:
    """Whether ``url`` lies under an allow-list entry: same scheme, host and port, and a
    path starting with the entry's path.

    Args:
        url: The URL a caller gave.
        allow_list: URL prefixes, e.g. ``https://hooks.example.com/imagegen/``.
    """
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL:
        return False
    if target.scheme not in ("http", "https") or target.userinfo or not target.host:
        return False
    for entry in allow_list:
        allowed = httpx.URL(entry)
        if (
            target.scheme == allowed.scheme
            and target.host == allowed.host
            and target.port == allowed.port
            and target.path.startswith(allowed.path)
        ):
            return True
    return False


@dataclass(frozen=True)
class WebhookPolicy:
    """How webhooks are signed, limited and retried.

    Attributes:
        secret: The ``whsec_`` signing secret; None = webhooks refused.
        allow_list: URL prefixes webhooks may go to.
        attempts: Deliveries tried at most.
        backoff_s: Wait before the first retry; doubled after each.
        timeout_s: Deadline of one delivery.
    """

    secret: str | None = None
    allow_list: tuple[str, ...] = ()
    attempts: int = 5
    backoff_s: float = 1.0
    timeout_s: float = 10.0


class WebhookSender:
    """Checks webhooks at submit and delivers them when jobs end.

    Args:
        policy: Secret, allow-list and retries.
    """

    def __init__(self, policy: WebhookPolicy) -> None:
        self._policy = policy
        self._signer = Webhook(policy.secret) if policy.secret else None
        # Made on the first delivery: building its TLS context takes a while, and most
        # gateways never send a webhook.
        self._client: httpx.AsyncClient | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    def check(self, webhook: gateway_pb2.Webhook) -> None:
        """Refuses a webhook the gateway would not deliver.

        Raises:
            FailedPreconditionError: The gateway has no webhook secret configured.
            InvalidArgumentError: The URL is outside the allow-list, or an event type is
                unknown.
        """
        if self._signer is None:
            raise FailedPreconditionError(
                "webhooks are not enabled on this gateway (no GATEWAY_WEBHOOK_SECRET)",
                reason="WEBHOOKS_DISABLED",
            )
        violations = []
        if not allowed_url(webhook.url, self._policy.allow_list):
            violations.append(
                FieldViolation(
                    "webhook.url",
                    f"{webhook.url!r} is not under an allowed webhook URL "
                    "(GATEWAY_WEBHOOK_ALLOWED_URLS)",
                )
            )
        unknown = sorted(set(webhook.events) - set(EVENT_TYPES))
        if unknown:
            violations.append(
                FieldViolation(
                    "webhook.events", f"unknown event types {unknown}; known: {list(EVENT_TYPES)}"
                )
            )
        if violations:
            raise InvalidArgumentError("the webhook cannot be used", violations)

    def announce(
        self,
        webhook: gateway_pb2.Webhook,
        *,
        name: str,
        state: int,
        request_id: str,
        error: str = "",
    ) -> None:
        """Starts the delivery of a job's end, if the webhook asked for this event type.

        Args:
            webhook: The job's webhook.
            name: The operation name.
            state: The job's final state.
            request_id: The caller's idempotency key.
            error: The error message of a failed or cancelled job.
        """
        event_type = JOB_COMPLETED if state == gateway_pb2.JOB_STATE_SUCCEEDED else JOB_FAILED
        if not webhook.url or (webhook.events and event_type not in webhook.events):
            return
        data: dict[str, str] = {
            "name": name,
            "state": gateway_pb2.JobState.Name(state),
            "request_id": request_id,
        }
        if error:
            data["error"] = error
        task = asyncio.create_task(
            self._deliver(webhook.url, f"{name.rsplit('/', 1)[-1]}.{event_type}", event_type, data)
        )
        self._deliveries.add(task)
        task.add_done_callback(self._deliveries.discard)

    async def _deliver(
        self, url: str, message_id: str, event_type: str, data: dict[str, str]
    ) -> None:
        if self._signer is None or not allowed_url(url, self._policy.allow_list):
            _log.warning("webhook not delivered: url not allowed", extra={"url": url})
            return
        now = datetime.now(UTC)
        body = json.dumps({"type": event_type, "timestamp": now.isoformat(), "data": data})
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": self._signer.sign(message_id, now, body),
        }
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._policy.timeout_s,
                follow_redirects=False,
                trust_env=False,
                verify=backend_tls_context(),
            )
        delay = self._policy.backoff_s
        for attempt in range(1, self._policy.attempts + 1):
            try:
                response = await self._client.post(url, content=body, headers=headers)
                if response.status_code < 300:
                    _log.info("webhook delivered", extra={"url": url, "attempt": attempt})
                    return
                if response.status_code < 500 and response.status_code != 429:
                    _log.warning(
                        "webhook refused",
                        extra={"url": url, "status": response.status_code},
                    )
                    return
                outcome = f"HTTP {response.status_code}"
            except httpx.HTTPError as e:
                outcome = type(e).__name__
            _log.warning(
                "webhook delivery failed", extra={"url": url, "attempt": attempt, "error": outcome}
            )
            if attempt < self._policy.attempts:
                await asyncio.sleep(delay)
                delay *= 2
        _log.error("webhook given up", extra={"url": url, "attempts": self._policy.attempts})

    async def close(self) -> None:
        """Stops deliveries still retrying and closes the HTTP client."""
        for task in list(self._deliveries):
            task.cancel()
        for task in list(self._deliveries):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()
