"""The newer API (ComfyUI ≥ 0.26, per ``comfyui_version``; v0.27.0's ``server.py`` and
``comfy_execution/jobs.py``): canonical UUID prompt ids, ``/api/jobs`` status and cancel
(registered at the literal path: ``/api/api/jobs`` works too, ``/jobs`` does not)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from standins.comfyui.server import FakeComfyUI

__all__ = ["add_job_routes", "is_newer_api", "valid_job_id"]

NEWER_API = (0, 26, 0)
"""First version with per-job cancel and strict UUID prompt ids (both used together)."""


def is_newer_api(version: str) -> bool:
    """Whether a ``comfyui_version`` speaks the newer API (numeric comparison)."""
    parts = tuple(int(p) if p.isdigit() else 0 for p in version.split(".")[:3])
    return parts >= NEWER_API


def valid_job_id(value: Any) -> bool:
    """``validate_job_id``: a string equal to ``str(uuid.UUID(value))``."""
    try:
        return isinstance(value, str) and str(uuid.UUID(value)) == value
    except ValueError:
        return False


def _job(fake: FakeComfyUI, prompt_id: str) -> dict[str, Any] | None:
    """The list-style job object (None values dropped), history first, then the queue."""
    entry = fake.history.get(prompt_id)
    if entry is not None:
        status = entry["status"]
        interrupted = any(m[0] == "execution_interrupted" for m in status["messages"])
        state = {"success": "completed"}.get(
            status["status_str"], "cancelled" if interrupted else "failed"
        )
        number, extra = entry["prompt"][0], entry["prompt"][3]
        outputs = sum(len(v.get("images", [])) for v in entry["outputs"].values())
    else:
        queue = fake.queue_snapshot()
        items = {item[1]: item for item in queue["queue_running"] + queue["queue_pending"]}
        if (item := items.get(prompt_id)) is None:
            return None
        state = "in_progress" if prompt_id in fake.running_ids else "pending"
        number, extra, outputs = item[0], item[3], 0
    job = {"id": prompt_id, "status": state, "priority": number, "outputs_count": outputs}
    if extra.get("create_time") is not None:
        job["create_time"] = extra["create_time"]
    return job


def _cancel(fake: FakeComfyUI, prompt_id: str) -> bool:
    """Atomic: interrupts it if it runs, dequeues it if it waits."""
    if prompt_id in fake.running_ids:
        fake.interrupt(prompt_id)
    elif prompt_id in fake.queued_ids:
        fake.delete_queue_item(prompt_id)
    else:
        return False
    return True


def add_job_routes(routes: web.RouteTableDef, fake: FakeComfyUI) -> None:
    """``GET /api/jobs[/{id}]``, ``POST /api/jobs/{id}/cancel``, ``POST /api/jobs/cancel``."""

    @routes.get("/api/jobs")
    async def jobs(request: web.Request) -> web.Response:
        wanted = {s for s in request.rel_url.query.get("status", "").lower().split(",") if s}
        ids = [*fake.running_ids, *fake.queued_ids, *reversed(fake.history)]
        found = [job for job in map(lambda p: _job(fake, p), ids) if job is not None]
        found = [job for job in found if not wanted or job["status"] in wanted]
        limit = int(request.rel_url.query["limit"]) if "limit" in request.rel_url.query else None
        shown = found[:limit]
        pagination = {"offset": 0, "limit": limit, "total": len(found)}
        return web.json_response(
            {"jobs": shown, "pagination": pagination | {"has_more": len(shown) < len(found)}}
        )

    @routes.get("/api/jobs/{job_id}")
    async def job(request: web.Request) -> web.Response:
        job_id = request.match_info["job_id"]
        found = _job(fake, job_id)
        if found is None:
            return web.json_response({"error": "Job not found"}, status=404)
        entry = fake.history.get(job_id)
        if entry is not None:  # the detail of a finished job
            found |= {"outputs": entry["outputs"], "execution_status": entry["status"]}
        return web.json_response(found)

    @routes.post("/api/jobs/{job_id}/cancel")
    async def cancel_one(request: web.Request) -> web.Response:
        fake.cancel_requests.append(request.match_info["job_id"])
        return web.json_response({"cancelled": _cancel(fake, request.match_info["job_id"])})

    @routes.post("/api/jobs/cancel")
    async def cancel_many(request: web.Request) -> web.Response:
        ids = (await request.json()).get("job_ids", [])
        invalid = [i if isinstance(i, str) else repr(i) for i in ids if not valid_job_id(i)]
        if invalid:
            error = {"error": "job_ids contains invalid id(s)", "invalid_ids": invalid}
            return web.json_response(error, status=400)
        fake.cancel_requests.extend(ids)
        return web.json_response({"cancelled": any([_cancel(fake, i) for i in ids])})
