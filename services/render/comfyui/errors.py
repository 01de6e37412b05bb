"""ComfyUI's errors, and its error bodies turned into the render backend's errors.

Errors::

    BackendError (services.render.backend)
     ├─ ComfyUIError                 a ComfyUI call went wrong
     │   ├─ ComfyUIUnavailableError  connect error, timeout, 5xx — retried, then raised
     │   └─ ComfyUIResponseError     an answer that is not what the protocol promises
     ├─ PromptRefusedError
     │   └─ ComfyUIRefusedError      /prompt refused the graph (400, or 200 + node_errors)
     └─ PromptFailedError            built here from ``execution_error`` /
                                     ``execution_interrupted`` and history entries
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.render.backend import (
    BackendError,
    GraphProblem,
    PromptFailedError,
    PromptRefusedError,
    StoredResult,
)

__all__ = [
    "ComfyUIError",
    "ComfyUIRefusedError",
    "ComfyUIResponseError",
    "ComfyUIUnavailableError",
    "execution_failure",
    "history_outcome",
    "interrupted",
    "refusal_text",
    "saved_image",
]


class ComfyUIError(BackendError):
    """Base of the errors of ComfyUI calls.

    Attributes:
        backend: The backend's URL.
    """


class ComfyUIUnavailableError(ComfyUIError):
    """The backend could not be reached or answered 5xx."""


class ComfyUIResponseError(ComfyUIError):
    """An answer that does not follow the protocol."""


class ComfyUIRefusedError(PromptRefusedError):
    """``POST /prompt`` refused the graph.

    Attributes:
        error: The ``error`` object of the reply (``type``, ``message``, ``details``).
        node_errors: ``{node_id: {"errors": [...], "class_type": ...}}``.
    """

    def __init__(
        self,
        message: str,
        *,
        backend: str,
        error: Mapping[str, Any] | None,
        node_errors: Mapping[str, Any],
    ) -> None:
        super().__init__(
            message,
            backend=backend,
            problems=_problems(node_errors),
            reason="COMFYUI_REFUSED_PROMPT",
        )
        self.error = dict(error or {})
        self.node_errors = dict(node_errors)


def _problems(node_errors: Mapping[str, Any]) -> list[GraphProblem]:
    """One problem per error ComfyUI listed, naming the input where it did."""
    problems = []
    for node_id, info in node_errors.items():
        if not isinstance(info, Mapping):
            continue
        class_type = str(info.get("class_type", "?"))
        for err in info.get("errors", []):
            extra = err.get("extra_info") or {}
            input_name = extra.get("input_name")
            not_in_list = err.get("type") == "value_not_in_list"
            problems.append(
                GraphProblem(
                    str(node_id),
                    class_type,
                    str(input_name) if input_name is not None else None,
                    "not_in_list" if not_in_list else "refused",
                    str(err.get("details") or err.get("message")),
                    value=str(extra.get("received_value", "")) if not_in_list else "",
                )
            )
    return problems


def refusal_text(
    error: Mapping[str, Any] | None, node_errors: Mapping[str, Any], status: int
) -> str:
    """The message of a refusal: the error and every node error, in ComfyUI's words."""
    parts = []
    if error:
        parts.append(f"{error.get('type', 'error')}: {error.get('message', '')}".strip())
    for node_id, info in node_errors.items():
        class_type = info.get("class_type", "?") if isinstance(info, dict) else "?"
        for err in info.get("errors", []) if isinstance(info, dict) else []:
            details = err.get("details") or ""
            parts.append(
                f"node {node_id} ({class_type}): {err.get('message', '')}"
                + (f" ({details})" if details else "")
            )
    return f"ComfyUI refused the prompt (HTTP {status}): " + "; ".join(parts or ["no details"])


def execution_failure(data: Mapping[str, Any], backend: str) -> PromptFailedError:
    """The failure an ``execution_error`` message (or history entry) reports."""
    node_id = str(data.get("node_id", "?"))
    node_type = str(data.get("node_type", "?"))
    exception_type = str(data.get("exception_type", ""))
    message = str(data.get("exception_message", "")).strip()
    metadata = {"node_id": node_id, "node_type": node_type, "exception_type": exception_type}
    if "OutOfMemory" in exception_type or "out of memory" in message.lower():
        return PromptFailedError(
            f"ComfyUI ran out of GPU memory in node {node_id} ({node_type}): {message}",
            backend=backend,
            reason="COMFYUI_OUT_OF_MEMORY",
            out_of_memory=True,
            metadata=metadata,
        )
    return PromptFailedError(
        f"ComfyUI node {node_id} ({node_type}) failed: {exception_type}: {message}",
        backend=backend,
        reason="COMFYUI_EXECUTION_ERROR",
        metadata=metadata,
    )


def interrupted(data: Mapping[str, Any], backend: str) -> PromptFailedError:
    """The failure an ``execution_interrupted`` message reports.

    This service withdraws its prompts only when nobody waits for them any more, so an
    interrupt someone is told about came from elsewhere.
    """
    return PromptFailedError(
        f"ComfyUI interrupted the prompt at node {data.get('node_id')} "
        f"({data.get('node_type')}) (not at this service's request)",
        backend=backend,
        reason="COMFYUI_INTERRUPTED",
    )


def saved_image(output: Mapping[str, Any] | None) -> StoredResult | None:
    """The first image of an output node's ``{"images": [...]}``; ``None`` when none."""
    images = (output or {}).get("images") or []
    if not images:
        return None
    first = images[0]
    return StoredResult(
        str(first.get("filename", "")),
        str(first.get("subfolder", "")),
        str(first.get("type", "output")),
    )


def history_outcome(entry: Mapping[str, Any], backend: str, output_node: str) -> StoredResult:
    """The saved image of a finished prompt's ``/history`` entry.

    Raises:
        PromptFailedError: The entry reports a failure, or the output node saved nothing.
    """
    status = entry.get("status") or {}
    if status.get("status_str") != "success":
        for name, data in status.get("messages", []):
            if name == "execution_error":
                raise execution_failure(data, backend)
            if name == "execution_interrupted":
                raise interrupted(data, backend)
        raise PromptFailedError(
            f"ComfyUI ended the prompt with status {status.get('status_str')!r}",
            backend=backend,
            reason="COMFYUI_FAILED",
        )
    result = saved_image((entry.get("outputs") or {}).get(output_node))
    if result is None:
        raise PromptFailedError(
            f"ComfyUI finished but output node {output_node} saved no image",
            backend=backend,
            reason="COMFYUI_NO_OUTPUT",
        )
    return result
