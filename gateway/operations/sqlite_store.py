"""The embedded job store of a single gateway: a SQLite file plus an image folder.

The standard library's ``sqlite3`` runs in a worker thread (``asyncio.to_thread``) behind
one lock: the writes are a few small rows per event, one gateway owns the file, and so
no extra dependency (such as ``aiosqlite``, itself a thread around ``sqlite3``) is needed.
Image bytes of results and previews go to ``images/<job>/<event>.bin`` beside the
database rather than into it, so the database stays small and a job's images are
removed with one folder.

A gateway that stops with jobs unfinished finds them again when it starts: they are
queued once more and re-run with their fixed seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import shutil
import sqlite3
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypeVar

from gateway.operations.store import (
    FINISHED,
    JobPage,
    JobRecord,
    JobStoreUnavailableError,
    StoreLimits,
    decode_page_token,
    encode_page_token,
)
from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2

__all__ = ["SqliteJobStore"]

_T = TypeVar("_T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    caller TEXT NOT NULL,
    request_id TEXT NOT NULL,
    request BLOB NOT NULL,
    state INTEGER NOT NULL,
    metadata BLOB NOT NULL,
    error BLOB NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL,
    finished REAL,
    size INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    taken INTEGER NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS jobs_request_id ON jobs (caller, request_id)
    WHERE request_id != '';
CREATE INDEX IF NOT EXISTS jobs_caller_created ON jobs (caller, created);
CREATE TABLE IF NOT EXISTS events (
    job_id TEXT NOT NULL,
    idx INTEGER NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (job_id, idx)
);
"""

_COLUMNS = (
    "id, caller, request_id, request, state, metadata, error, created, updated, finished, "
    "size, cancel_requested"
)
_FINISHED_SQL = ",".join(str(state) for state in sorted(FINISHED))
# Seconds between two looks at the database while a watcher waits for a job that may
# be changed by nothing this process would announce (a purge, a restart).
_WATCH_POLL_S = 1.0


def _record(row: tuple[Any, ...]) -> JobRecord:
    (job_id, caller, request_id, request, state, metadata, error) = row[:7]
    (created, updated, finished, size, cancel_requested) = row[7:]
    return JobRecord(
        id=str(job_id),
        caller=str(caller),
        request_id=str(request_id),
        request=bytes(request),
        state=int(state),
        metadata=bytes(metadata),
        error=bytes(error),
        created=float(created),
        updated=float(updated),
        finished=None if finished is None else float(finished),
        size=int(size),
        cancel_requested=bool(cancel_requested),
    )


def _image_of(
    event: gateway_pb2.GenerateResponse,
) -> common_pb2.VariantResult | common_pb2.Preview | None:
    """The message holding the event's image, for results and previews."""
    kind = event.WhichOneof("event")
    if kind == "result":
        return event.result
    return event.preview if kind == "preview" else None


def _events_since(
    job_id: str, after: int, db: sqlite3.Connection
) -> tuple[list[tuple[int, bytes]], JobRecord | None]:
    """A job's events numbered above ``after``, and the job as it was just before."""
    # The job is read first: if it was done then, every event it had is already in.
    row = db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
    events = db.execute(
        "SELECT idx, event FROM events WHERE job_id = ? AND idx > ? ORDER BY idx",
        (job_id, after),
    ).fetchall()
    return [(int(i), bytes(e)) for i, e in events], None if row is None else _record(row)


class SqliteJobStore:
    """Jobs in ``<folder>/jobs.sqlite3`` and their images in ``<folder>/images``.

    Args:
        folder: Where the database and the images live (created if missing).
        limits: Retention.
    """

    def __init__(self, folder: Path, limits: StoreLimits) -> None:
        self._path = folder / "jobs.sqlite3"
        self._images = folder / "images"
        self._limits = limits
        # Opened on first use, in the worker thread: opening may wait for the file's lock,
        # and the event loop must never wait with it.
        self._db: sqlite3.Connection | None = None
        self._lock = asyncio.Lock()
        self._changed = asyncio.Condition()
        self._queued = asyncio.Event()
        self._queued.set()

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            self._images.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self._path, check_same_thread=False, isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            # Whatever a previous run of the gateway held is free again: it is re-run.
            db.execute(f"UPDATE jobs SET taken = 0 WHERE state NOT IN ({_FINISHED_SQL})")
            self._db = db
        return self._db

    async def _run(self, work: Callable[[sqlite3.Connection], _T]) -> _T:
        async with self._lock:
            running = asyncio.ensure_future(asyncio.to_thread(lambda: work(self._connection())))
            try:
                return await asyncio.shield(running)
            except sqlite3.Error as e:
                raise JobStoreUnavailableError("sqlite", e) from e
            finally:
                # A cancelled caller cannot stop the thread: the connection (and the lock)
                # stay taken until it returns, so close() never pulls it from under a query.
                while not running.done():
                    with contextlib.suppress(asyncio.CancelledError):
                        await asyncio.wait({running})

    async def _announce(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def submit(self, job: JobRecord) -> JobRecord:
        def insert(db: sqlite3.Connection) -> JobRecord:
            if job.request_id:
                row = db.execute(
                    f"SELECT {_COLUMNS} FROM jobs WHERE caller = ? AND request_id = ?",
                    (job.caller, job.request_id),
                ).fetchone()
                if row is not None:
                    return _record(row)
            db.execute(
                f"INSERT INTO jobs ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    job.id,
                    job.caller,
                    job.request_id,
                    job.request,
                    job.state,
                    job.metadata,
                    job.error,
                    job.created,
                    job.updated,
                    job.finished,
                    job.size,
                    int(job.cancel_requested),
                ),
            )
            return job

        stored = await self._run(insert)
        self._queued.set()
        return stored

    async def get(self, job_id: str) -> JobRecord | None:
        row = await self._run(
            lambda db: db.execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,)).fetchone()
        )
        return None if row is None else _record(row)

    async def list_jobs(
        self, caller: str, *, states: frozenset[int], page_size: int, page_token: str
    ) -> JobPage:
        start = decode_page_token(page_token)
        where, params = "caller = ?", [caller]
        if states:
            where += f" AND state IN ({','.join('?' * len(states))})"
            params.extend(str(state) for state in sorted(states))
        rows = await self._run(
            lambda db: db.execute(
                f"SELECT {_COLUMNS} FROM jobs WHERE {where} "
                "ORDER BY created DESC, id DESC LIMIT ? OFFSET ?",
                (*params, page_size + 1, start),
            ).fetchall()
        )
        jobs = [_record(row) for row in rows[:page_size]]
        more = len(rows) > page_size
        return JobPage(jobs=jobs, next_token=encode_page_token(start + page_size) if more else "")

    async def take(self, *, wait_s: float) -> JobRecord | None:
        def claim(db: sqlite3.Connection) -> JobRecord | None:
            # A read first: an idle poll takes no write lock.
            if not db.execute(
                f"SELECT 1 FROM jobs WHERE taken = 0 AND state NOT IN ({_FINISHED_SQL}) LIMIT 1"
            ).fetchone():
                return None
            # One statement, so two stores on one file never take the same job.
            row = db.execute(
                "UPDATE jobs SET taken = 1 WHERE id = (SELECT id FROM jobs WHERE taken = 0 "
                f"AND state NOT IN ({_FINISHED_SQL}) ORDER BY created LIMIT 1) "
                f"RETURNING {_COLUMNS}"
            ).fetchone()
            return None if row is None else _record(row)

        # Only this gateway adds jobs to its file, so the database is read only when a
        # submit (or the start) said there may be one: an idle worker costs nothing.
        deadline = time.monotonic() + wait_s
        while True:
            if self._queued.is_set():
                self._queued.clear()
                try:
                    job = await self._run(claim)
                except BaseException:
                    self._queued.set()  # not looked at: look again next time
                    raise
                if job is not None:
                    self._queued.set()  # there may be more: the next worker looks
                    return job
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                async with asyncio.timeout(remaining):
                    await self._queued.wait()
            except TimeoutError:
                return None

    async def keep(self, job_id: str) -> None:
        """Nothing to renew: one gateway owns the file."""

    async def append(
        self, job_id: str, index: int, event: bytes, metadata: bytes, *, state: int
    ) -> None:
        message = gateway_pb2.GenerateResponse.FromString(event)
        holder = _image_of(message)
        if holder is not None and holder.image.data:
            folder = self._images / job_id
            await asyncio.to_thread(folder.mkdir, parents=True, exist_ok=True)
            await asyncio.to_thread((folder / f"{index}.bin").write_bytes, holder.image.data)
            holder.image.data = b""
            stored = message.SerializeToString()
        else:
            stored = event

        def insert(db: sqlite3.Connection) -> None:
            with db:
                db.execute(
                    "INSERT OR REPLACE INTO events (job_id, idx, event) VALUES (?, ?, ?)",
                    (job_id, index, stored),
                )
                db.execute(
                    "UPDATE jobs SET metadata = ?, state = ?, updated = ?, size = size + ? "
                    "WHERE id = ?",
                    (metadata, state, time.time(), len(event), job_id),
                )

        await self._run(insert)
        await self._announce()

    async def finish(self, job_id: str, *, state: int, metadata: bytes, error: bytes) -> None:
        now = time.time()
        await self._run(
            lambda db: db.execute(
                "UPDATE jobs SET state = ?, metadata = ?, error = ?, updated = ?, finished = ?, "
                "taken = 1 WHERE id = ?",
                (state, metadata, error, now, now, job_id),
            )
        )
        await self._announce()

    async def events(self, job_id: str, *, after: int) -> AsyncIterator[tuple[int, bytes]]:
        last = after
        while True:
            since = last
            async with self._changed:
                rows, job = await self._run(functools.partial(_events_since, job_id, since))
                if not rows:
                    if job is None or job.done:
                        return
                    try:
                        async with asyncio.timeout(_WATCH_POLL_S):
                            await self._changed.wait()
                    except TimeoutError:
                        pass
                    continue
            for index, stored in rows:
                yield index, await self._with_image(job_id, index, stored)
                last = index

    async def _with_image(self, job_id: str, index: int, stored: bytes) -> bytes:
        message = gateway_pb2.GenerateResponse.FromString(stored)
        holder = _image_of(message)
        path = self._images / job_id / f"{index}.bin"
        if holder is None or holder.image.data or not path.is_file():
            return stored
        holder.image.data = await asyncio.to_thread(path.read_bytes)
        return message.SerializeToString()

    async def request_cancel(self, job_id: str) -> None:
        await self._run(
            lambda db: db.execute("UPDATE jobs SET cancel_requested = 1 WHERE id = ?", (job_id,))
        )
        await self._announce()

    async def cancel_requested(self, job_id: str) -> bool:
        row = await self._run(
            lambda db: db.execute(
                "SELECT cancel_requested FROM jobs WHERE id = ?", (job_id,)
            ).fetchone()
        )
        return row is None or bool(row[0])

    async def delete(self, job_id: str) -> None:
        await self._remove([job_id])

    async def _remove(self, job_ids: list[str]) -> None:
        def remove(db: sqlite3.Connection) -> None:
            with db:
                db.executemany("DELETE FROM events WHERE job_id = ?", [(i,) for i in job_ids])
                db.executemany("DELETE FROM jobs WHERE id = ?", [(i,) for i in job_ids])

        await self._run(remove)
        for job_id in job_ids:
            await asyncio.to_thread(shutil.rmtree, self._images / job_id, True)
        await self._announce()

    async def purge(self) -> int:
        cutoff = time.time() - self._limits.retention_s

        def expired(db: sqlite3.Connection) -> list[str]:
            rows = db.execute(
                "SELECT id, finished, size FROM jobs WHERE finished IS NOT NULL "
                "ORDER BY finished DESC"
            ).fetchall()
            kept_bytes, gone = 0, []
            for job_id, finished, size in rows:
                kept_bytes += int(size)
                if float(finished) < cutoff or kept_bytes > self._limits.retention_bytes:
                    gone.append(str(job_id))
            return gone

        gone = await self._run(expired)
        if gone:
            await self._remove(gone)
        return len(gone)

    async def close(self) -> None:
        async with self._lock:
            if self._db is not None:
                await asyncio.to_thread(self._db.close)
                self._db = None
