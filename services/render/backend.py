"""The render-backend seam: what the renderer needs from a server that runs graphs.

The renderer places variants, builds their graphs and streams their events; a backend
takes a graph, runs it and reports on it in the terms below. ComfyUI is one backend
(:mod:`services.render.comfyui`); nothing here speaks its wire format.

A prompt's life as the backend reports it (:meth:`RenderBackend.follow`)::

    PromptQueued(position) … PromptStarted → PromptProgress(step, total) / PromptPreview …
    → PromptFinished(result)            or the iterator raises a BackendError

Errors::

    BackendError               unreachable, or an answer that breaks the protocol
     ├─ PromptRefusedError     the backend refused the graph before running it
     ├─ PromptFailedError      it ran and failed (a node raised, out of memory, interrupted)
     └─ PromptLostError        neither queued, running nor finished: the backend forgot it
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from services.render.jobs import ControlKind
from services.render.workflows import Workflow

__all__ = [
    "BackendError",
    "BackendOffer",
    "ControlNetWiring",
    "FollowPacing",
    "GraphProblem",
    "LoraLink",
    "PromptEvent",
    "PromptFailedError",
    "PromptFinished",
    "PromptLostError",
    "PromptPreview",
    "PromptProgress",
    "PromptQueued",
    "PromptRefusedError",
    "PromptStarted",
    "RenderBackend",
    "StoredResult",
    "VariantSpec",
    "VariantValues",
]


@dataclass(frozen=True)
class GraphProblem:
    """Something a backend would refuse (or fail on) in a graph.

    Attributes:
        node: The node id.
        class_type: Its class.
        input: The input concerned; ``None`` for node-level problems.
        kind: ``unknown_node``, ``missing_input``, ``bad_link``, ``type_mismatch``,
            ``not_in_list``, ``bad_value``, ``out_of_range`` or ``bad_step``; ``refused``
            for a refusal the backend explained only in words.
        message: For people.
        options: The allowed values for ``not_in_list``.
        value: The refused value, as text (empty for node-level problems).
        missing_file: For a model file the server does not list: ``"model"``,
            ``"lora"`` or ``"controlnet"``; else ``None``.
        field: The request field that set the input, when one did.
    """

    node: str
    class_type: str
    input: str | None
    kind: str
    message: str
    options: tuple[str, ...] = ()
    value: str = ""
    missing_file: str | None = None
    field: str | None = None

    @property
    def is_missing_model(self) -> bool:
        """True for a model file name the server does not list (a LoRA, a checkpoint …)."""
        return self.missing_file is not None

    def __str__(self) -> str:
        where = f"node {self.node} ({self.class_type})"
        if self.input is not None:
            where += f" input {self.input}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class VariantValues:
    """The literal values of one variant.

    Attributes:
        image: Name of the uploaded source; ``None`` for text-to-image.
        mask: Name of the uploaded inpainting mask (white = change), if any.
    """

    positive: str
    negative: str
    seed: int
    steps: int
    cfg: float
    guidance: float
    sampler: str
    scheduler: str
    denoise: float
    width: int
    height: int
    image: str | None = None
    filename_prefix: str = "imagegen/render"
    mask: str | None = None


@dataclass(frozen=True)
class LoraLink:
    """One LoRA of the model chain."""

    name: str
    strength: float


@dataclass(frozen=True)
class ControlNetWiring:
    """The ControlNet of a variant.

    Attributes:
        model: The ControlNet file.
        union_kind: The mode to select in a Union model; ``None`` for a dedicated model.
        canny: Derive a Canny edge map from the control image first.
        image: Name of an uploaded control image; ``None`` = use the source.
        strength: How strongly the control applies.
        start_percent: When control starts.
        end_percent: When control ends.
        canny_low: Canny low threshold.
        canny_high: Canny high threshold.
    """

    model: str
    union_kind: ControlKind | None
    canny: bool
    image: str | None
    strength: float
    start_percent: float
    end_percent: float
    canny_low: float = 0.4
    canny_high: float = 0.8


@dataclass(frozen=True)
class VariantSpec:
    """Everything a backend needs to render one variant.

    Attributes:
        workflow: The template.
        values: Its literal values.
        loras: LoRAs in chain order (the first is applied to the checkpoint's model).
        controlnet: The ControlNet, if any.
    """

    workflow: Workflow
    values: VariantValues
    loras: tuple[LoraLink, ...] = ()
    controlnet: ControlNetWiring | None = None


@dataclass(frozen=True)
class BackendOffer:
    """What a backend lists right now: the names a request may use on it.

    Attributes:
        loras: LoRA files.
        controlnets: ControlNet files.
        samplers: Sampler names.
        schedulers: Scheduler names.
        edit_modes: Edit modes it can render (``"img2img"``, ``"kontext"``, ``"inpaint"``).
    """

    loras: tuple[str, ...]
    controlnets: tuple[str, ...]
    samplers: tuple[str, ...]
    schedulers: tuple[str, ...]
    edit_modes: tuple[str, ...]


@dataclass(frozen=True)
class StoredResult:
    """Where a finished prompt's image waits to be fetched (opaque to the renderer).

    Attributes:
        image: The image itself when the backend already delivered it (nothing to fetch).
    """

    name: str
    folder: str
    kind: str
    image: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class PromptQueued:
    """The prompt waits with ``position`` prompts ahead (0: it runs next or now)."""

    position: int


@dataclass(frozen=True)
class PromptStarted:
    """The backend began executing the prompt."""


@dataclass(frozen=True)
class PromptProgress:
    """A sampling step finished."""

    step: int
    total: int


@dataclass(frozen=True)
class PromptPreview:
    """A preview image of the sampling, labelled with the step it shows (1…total)."""

    step: int
    image: bytes = field(repr=False)
    mime_type: str


@dataclass(frozen=True)
class PromptFinished:
    """The prompt succeeded; its image is at ``result``.

    Attributes:
        result: Where the image waits.
        recipe: What the backend ran, in its own terms (embedded in the result's PNG).
        models: The model files it loaded (the checkpoint it chose among alternatives …).
        forgotten: Done once the backend keeps no record of the prompt (ComfyUI: its
            history entry is deleted); the deletion runs while the result is finished
            and sent, and the request ends only after it. ``None``: nothing to wait for.
    """

    result: StoredResult
    recipe: Mapping[str, Any] = field(default_factory=dict, repr=False)
    models: tuple[str, ...] = ()
    forgotten: asyncio.Future[None] | None = field(default=None, repr=False, compare=False)


PromptEvent = PromptQueued | PromptStarted | PromptProgress | PromptPreview | PromptFinished


class BackendError(Exception):
    """The backend could not be reached or did not follow its protocol.

    Attributes:
        backend: The backend's name (its URL).
    """

    def __init__(self, message: str, *, backend: str) -> None:
        super().__init__(message)
        self.backend = backend


class PromptRefusedError(BackendError):
    """The backend refused the graph.

    Attributes:
        problems: What it named (node and input where it said so).
        reason: UPPER_SNAKE code of the refusal, e.g. ``COMFYUI_REFUSED_PROMPT``.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        problems: Sequence[GraphProblem],
        reason: str = "BACKEND_REFUSED_PROMPT",
    ) -> None:
        super().__init__(message, backend=backend)
        self.problems = tuple(problems)
        self.reason = reason


class PromptFailedError(BackendError):
    """The prompt ran and did not produce its image.

    Attributes:
        reason: UPPER_SNAKE code of the failure, e.g. ``COMFYUI_EXECUTION_ERROR``.
        out_of_memory: The device ran out of memory (a retry elsewhere or later may work).
        metadata: Facts a program can test (failing node, exception type …).
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        reason: str,
        out_of_memory: bool = False,
        metadata: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message, backend=backend)
        self.reason = reason
        self.out_of_memory = out_of_memory
        self.metadata = dict(metadata or {})


class PromptLostError(BackendError):
    """The backend no longer knows the prompt (restarted, or its queue was cleared)."""


@dataclass(frozen=True)
class FollowPacing:
    """How often :meth:`RenderBackend.follow` asks when the backend is quiet.

    Attributes:
        queue_poll_s: A waiting prompt re-reads its queue position this often.
        history_poll_s: A running prompt checks whether it ended this often.
    """

    queue_poll_s: float = 1.0
    history_poll_s: float = 5.0


class RenderBackend(Protocol):
    """A server that runs render graphs, one prompt at a time per queue."""

    @property
    def name(self) -> str:
        """A stable name for logs, metrics and errors (the backend's URL)."""
        ...

    def start(self) -> None:
        """Opens long-lived connections (e.g. an event socket)."""
        ...

    async def aclose(self) -> None:
        """Closes everything :meth:`start` and the calls opened."""
        ...

    async def queue_length(self) -> int:
        """Prompts running or waiting, of every client.

        Raises:
            BackendError: Not reachable.
        """
        ...

    async def has_models(self, required: Iterable[tuple[str, str, str]]) -> bool:
        """Whether the backend answers and lists each ``(node class, input, file)``."""
        ...

    async def offer(self) -> BackendOffer:
        """The LoRAs, ControlNets, samplers, schedulers and edit modes it lists now.

        Raises:
            BackendError: It cannot say (unreachable).
        """
        ...

    async def problems(self, spec: VariantSpec, *, recheck: bool = True) -> list[GraphProblem]:
        """What the backend would refuse in ``spec``, from what it offers right now.

        Image names are not checked (the uploads may still be to come).

        Args:
            spec: The variant.
            recheck: Ask the backend afresh before naming a missing model or node (files
                and custom nodes appear without a restart); off when what it offers was
                just read anyway.

        Raises:
            BackendError: It cannot say (unreachable).
        """
        ...

    async def upload(
        self, data: bytes, filename: str, *, folder: str, deadline: float | None
    ) -> str:
        """Stores an input image; returns the name a graph refers to it by.

        Raises:
            BackendError: The upload failed.
        """
        ...

    def follow(
        self,
        spec: VariantSpec,
        prompt_id: str,
        *,
        labels: Mapping[str, Any],
        deadline: float | None,
        pacing: FollowPacing,
    ) -> AsyncGenerator[PromptEvent, None]:
        """Submits ``spec`` as ``prompt_id`` and reports on it until it ends.

        Args:
            spec: The variant to render.
            prompt_id: A fresh lowercase UUID; the caller withdraws it by this id.
            labels: Stored with the prompt (request id, variant …).
            deadline: Monotonic instant bounding the submission's retries.
            pacing: Poll intervals when the backend is quiet.

        Yields:
            :data:`PromptEvent` values; the last is :class:`PromptFinished`.

        Raises:
            PromptRefusedError: The backend refused it (problems name request fields).
            PromptFailedError: It ran and failed.
            PromptLostError: The backend lost it.
            BackendError: Contact was lost.
        """
        ...

    async def fetch(self, result: StoredResult) -> bytes:
        """The bytes of a finished prompt's image.

        Raises:
            BackendError: It could not be fetched.
        """
        ...

    async def withdraw(self, prompt_ids: Sequence[str]) -> tuple[str, ...]:
        """Removes the prompts if waiting and stops them if running, and keeps at it in
        the background until the backend no longer holds them (bounded).

        Returns:
            The ids the backend still holds after the first attempt (an interrupt takes
            effect at the next node or step boundary; they stay watched).

        Raises:
            BackendError: The first attempt could not reach the backend (they stay watched).
        """
        ...
