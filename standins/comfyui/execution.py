"""Running one prompt: the execution order, the cache and the websocket messages of 0.3.64.

Per prompt (to the owner socket): ``execution_start``, ``execution_cached``, then per executed
node ``progress_state`` (running) → ``executing`` → [``progress_state`` + ``progress`` per
step, preview frames] → [``executed`` for output nodes] → ``progress_state`` (finished);
cached output nodes send only ``executed`` + ``progress_state``. The last message is
``execution_success`` | ``execution_error`` | ``execution_interrupted``; the server then writes
history, broadcasts ``status`` and sends ``executing {node: null}``.

Order: a "topological dissolve" from the output nodes; among the ready nodes an output node
goes first, then a node feeding an output, then one two hops away, else the first ready one
in discovery order. Cache keys: class, "is changed" (file hash for LoadImage), constant
inputs and the ancestors' keys; the current prompt drops the keys it does not use.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import itertools
import json
import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from standins.comfyui.catalog import RECORDED, NodeCatalog, NodeDef
from standins.comfyui.nodes import NODES, Latent, NodeCall, Token, pass_through, preview
from standins.comfyui.validation import frames, full_type_name

if TYPE_CHECKING:
    from standins.comfyui.server import FakeComfyUI

__all__ = ["OutputCache", "PromptRun", "QueueItem"]

log = logging.getLogger("fake_comfyui")

PREVIEW_IMAGE, TEXT, PREVIEW_IMAGE_WITH_METADATA = 1, 3, 4
PREVIEW_SIZE = 512  # --preview-size


class NodeError(Exception):
    """A failure with a chosen ``exception_type`` and traceback (the injected faults)."""

    def __init__(self, message: str, exception_type: str, trace: list[str]) -> None:
        super().__init__(message)
        self.exception_type = exception_type
        self.trace = trace


class Interrupted(Exception):
    """``comfy.model_management.InterruptProcessingException``."""


def _oom(trace: list[str]) -> NodeError:
    return NodeError("Allocation on device ", "torch.OutOfMemoryError", trace)


def _node_frame(node: NodeDef) -> list[str]:
    return frames(f"{node.python_module.replace('.', '/')}.py:1:execute:...")


def _shown(x: Any) -> Any:
    """An input value as ComfyUI shows it in ``current_inputs`` (a model's or tensor's repr)."""
    if x is None or isinstance(x, int | float | bool | str):
        return x
    return f"<comfy.{x.kind.lower()} object>" if isinstance(x, Token) else "tensor(<values>)"


def is_link(value: Any) -> bool:
    """``[node_id, slot]`` (a list as a constant input is not a link)."""
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], str)
        and isinstance(value[1], int | float)
        and not isinstance(value[1], bool)
    )


@dataclass(order=True)
class QueueItem:
    """A queued prompt, ordered like ComfyUI's heap entries (number, then arrival)."""

    number: int | float
    prompt_id: str
    seq: int
    prompt: dict[str, Any] = field(compare=False)
    extra_data: dict[str, Any] = field(compare=False)
    outputs: list[str] = field(compare=False)

    def public(self) -> list[Any]:
        """The 5-element form shown by ``/queue`` and history."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


@dataclass
class OutputCache:
    """The classic cache: ``(ui, outputs)`` by signature; ``keys`` maps the prompt's node ids."""

    entries: dict[str, tuple[dict[str, Any] | None, tuple[Any, ...]]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)

    def start(self, keys: dict[str, str]) -> None:
        """A new prompt with these node keys: drop the entries it does not use."""
        self.keys = keys
        self.entries = {k: v for k, v in self.entries.items() if k in set(keys.values())}

    def get(self, node_id: str) -> tuple[dict[str, Any] | None, tuple[Any, ...]] | None:
        key = self.keys.get(node_id)
        return None if key is None else self.entries.get(key)


_uncacheable = itertools.count()


def _ancestors(prompt: dict[str, Any], node_id: str) -> dict[str, int]:
    """The nodes a node depends on, numbered depth-first with inputs in sorted order."""
    order: dict[str, int] = {}

    def visit(current: str) -> None:
        inputs = prompt.get(current, {}).get("inputs", {})
        for key in sorted(inputs):
            if is_link(inputs[key]) and inputs[key][0] not in order:
                order[inputs[key][0]] = len(order)
                visit(inputs[key][0])

    visit(node_id)
    return order


def _signatures(prompt: dict[str, Any], catalog: NodeCatalog, is_changed: Any) -> dict[str, str]:
    """Cache key of every node: its own inputs plus its ancestors', links by position."""

    def immediate(nid: str, order: dict[str, int]) -> list[Any]:
        if nid not in prompt:
            return [f"<uncacheable {next(_uncacheable)}>"]
        class_type, inputs = prompt[nid]["class_type"], prompt[nid]["inputs"]
        sig: list[Any] = [class_type, is_changed(nid)]
        node = catalog.get(class_type)
        if node is not None and "UNIQUE_ID" in node.hidden.values():
            sig.append(nid)
        for key in sorted(inputs):
            value = inputs[key]
            sig.append([key, ["ANCESTOR", order[value[0]], value[1]] if is_link(value) else value])
        return sig

    keys = {}
    for nid in prompt:
        order = _ancestors(prompt, nid)
        signature = [immediate(nid, order)] + [immediate(a, order) for a in order]
        keys[nid] = json.dumps(signature, sort_keys=True, default=repr)
    return keys


def execution_order(
    prompt: dict[str, Any], catalog: NodeCatalog, outputs: list[str], cache: OutputCache
) -> list[str]:
    """The nodes to run, in ComfyUI's order (the module's docstring), cached nodes skipped."""
    waits: dict[str, set[str]] = {}  # node → the nodes it still waits for
    for output in outputs:
        stack = [output]
        while stack:
            current = stack.pop()
            if current not in waits:
                inputs = prompt[current]["inputs"].values()
                links = [v[0] for v in inputs if is_link(v) and cache.get(v[0]) is None]
                waits[current] = set(links)
                stack.extend(links)

    def is_output(node_id: str) -> bool:
        node = catalog.get(prompt[node_id]["class_type"])
        return node is not None and node.output_node

    def feeds(node_id: str) -> list[str]:
        return [other for other, needed in waits.items() if node_id in needed]

    preferences: list[Callable[[str], bool]] = [
        is_output,
        lambda n: any(is_output(m) for m in feeds(n)),
        lambda n: any(is_output(k) for m in feeds(n) for k in feeds(m)),
    ]
    order = []
    while ready := [n for n, needed in waits.items() if not needed]:  # none left: a cycle
        chosen = next((n for prefer in preferences for n in ready if prefer(n)), ready[0])
        order.append(chosen)
        del waits[chosen]
        for still_needed in waits.values():
            still_needed.discard(chosen)
    return order


class PromptRun:
    """Executes one queued prompt; leaves ``success``, ``messages`` and :meth:`history`."""

    def __init__(self, host: FakeComfyUI, item: QueueItem) -> None:
        self.host = host
        self.item = item
        self.pid = item.prompt_id
        self.messages: list[list[Any]] = []
        self.success = True
        self.executed: list[str] = []
        self.ui: dict[str, dict[str, Any]] = {}
        self.progress: dict[str, dict[str, Any]] = {}
        self.inputs: dict[str, Any] = {}
        self.dropped_ws = False

    def send(self, event: str, data: dict[str, Any]) -> None:
        self.host.send(event, data, self.host.client_id)

    def _status(self, event: str, data: dict[str, Any], broadcast: bool = False) -> None:
        """A message that is also kept in the history entry's ``status.messages``."""
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.messages.append([event, data])
        if self.host.client_id is not None or broadcast:
            self.send(event, data)

    def _progress_state(self, node_id: str, **change: Any) -> None:
        self.progress.setdefault(node_id, {"value": 0, "max": 1, "state": ""}).update(change)
        nodes = {
            nid: {**entry, "node_id": nid, "prompt_id": self.pid, "display_node_id": nid}
            | {"parent_node_id": None, "real_node_id": nid}
            for nid, entry in self.progress.items()
        }
        self.send("progress_state", {"prompt_id": self.pid, "nodes": nodes})

    def _is_changed(self, node_id: str) -> Any:
        node = self.item.prompt.get(node_id, {})
        if node.get("class_type") != "LoadImage":
            return False
        try:
            with open(self.host.files.path(node["inputs"]["image"]), "rb") as fh:
                return hashlib.sha256(fh.read()).hexdigest()
        except Exception:  # NaN in ComfyUI: equal to nothing, never cached
            return f"<uncacheable {next(_uncacheable)}>"

    async def run(self) -> None:
        """Execute the prompt's outputs in ComfyUI's order and record the outcome."""
        host, prompt = self.host, self.item.prompt
        host.client_id = self.item.extra_data.get("client_id")
        self._status("execution_start", {"prompt_id": self.pid})
        is_changed = functools.cache(self._is_changed)
        keys = await asyncio.to_thread(_signatures, prompt, host.catalog, is_changed)
        host.cache.start(keys)
        cached = [nid for nid in prompt if host.cache.get(nid) is not None]
        self._status("execution_cached", {"nodes": cached, "prompt_id": self.pid})
        for node_id in execution_order(prompt, host.catalog, self.item.outputs, host.cache):
            try:
                await self._execute(node_id)
            except Exception as ex:
                self.success = False
                failure = self._failure(node_id)
                if isinstance(ex, Interrupted):
                    self._status("execution_interrupted", failure, broadcast=True)
                else:
                    self._status("execution_error", failure | self._error(node_id, ex))
                break
        if self.success:
            self._status("execution_success", {"prompt_id": self.pid})
        host.last_node_id = None

    def history(self) -> tuple[dict[str, Any], dict[str, Any]]:
        """The history entry's ``outputs`` and ``meta`` (prompt order; ComfyUI: set order)."""
        ordered = [nid for nid in self.item.prompt if nid in self.ui]
        outputs = {nid: self.ui[nid]["output"] for nid in ordered}
        return outputs, {nid: self.ui[nid]["meta"] for nid in ordered}

    def _failure(self, node_id: str) -> dict[str, Any]:
        """What ``execution_error`` and ``execution_interrupted`` say of the failed node."""
        return {
            "prompt_id": self.pid,
            "node_id": node_id,
            "node_type": self.item.prompt[node_id]["class_type"],
            "executed": list(self.executed),
        }

    def _error(self, node_id: str, ex: Exception) -> dict[str, Any]:
        log.error("!!! Exception during processing !!! %s", ex)
        if isinstance(ex, NodeError):
            kind, trace = ex.exception_type, ex.trace
        else:
            node = self.host.catalog[self.item.prompt[node_id]["class_type"]]
            kind, trace = full_type_name(type(ex)), _node_frame(node)
        tips = RECORDED["oom_tips"] if kind == "torch.OutOfMemoryError" else ""
        return {
            "exception_message": f"{ex}\n{tips}",
            "exception_type": kind,
            "traceback": [*frames("execute", "process_inputs"), *trace],
            "current_inputs": {k: [_shown(v)] for k, v in self.inputs.items()},
            "current_outputs": list(self.item.prompt),
        }

    def _gather(self, node_id: str, node: NodeDef) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for name, value in self.item.prompt[node_id]["inputs"].items():
            if is_link(value):
                entry = self.host.cache.get(value[0])  # ran in this prompt or cached before
                outputs = entry[1] if entry is not None else None
                index = int(value[1])
                data[name] = outputs[index] if outputs and index < len(outputs) else None
            elif node.input_spec(name) is not None:
                data[name] = value
        hidden: dict[str, Any] = {"PROMPT": self.item.prompt, "UNIQUE_ID": node_id}
        hidden["EXTRA_PNGINFO"] = self.item.extra_data.get("extra_pnginfo")
        return data | {name: hidden[kind] for name, kind in node.hidden.items() if kind in hidden}

    def _executed(self, node_id: str, ui: dict[str, Any] | None) -> None:
        if ui is not None:
            self.ui[node_id] = ui
        if self.host.client_id is not None:
            output = ui["output"] if ui else None
            data = {"node": node_id, "display_node": node_id, "output": output}
            self.send("executed", {**data, "prompt_id": self.pid})

    async def _execute(self, node_id: str) -> None:
        host, faults = self.host, self.host.faults
        class_type = self.item.prompt[node_id]["class_type"]
        node = host.catalog[class_type]
        cached = host.cache.get(node_id)
        if cached is not None:  # only a cached output node is in the execution list
            self._executed(node_id, cached[0])
            self._progress_state(node_id, state="finished", value=1, max=1)
            return
        self._progress_state(node_id, state="running", value=0.0, max=1.0)
        self.inputs = {}
        self.inputs = inputs = self._gather(node_id, node)
        if host.client_id is not None:
            host.last_node_id = node_id
            data = {"node": node_id, "display_node": node_id, "prompt_id": self.pid}
            self.send("executing", data)
        self._check_interrupt()
        if host.settings.node_delay_s:  # not interruptible: seen when the next node starts
            await asyncio.sleep(host.settings.node_delay_s)
        impl = NODES.get(class_type)
        stepped = impl is not None and impl.steps is not None
        if faults.execution_error_node in (node_id, class_type):
            raise self._injected(node, stepped)
        oom_at = faults.oom_after_step if faults.oom_node in (node_id, class_type) else None
        if oom_at is not None and not stepped:
            raise _oom(_node_frame(node))
        call = NodeCall(node_id, class_type, host.files, host.catalog.model_files)
        if impl is None:
            result = pass_through(call, inputs, node)
        else:
            result = await asyncio.to_thread(impl.run, call, inputs)
            if impl.steps is not None:
                await self._steps(node_id, impl.steps(inputs), result, oom_at)
        for text in call.texts:  # GetImageSize's TEXT frame goes to every socket
            head = node_id.encode()
            host.send_binary(TEXT, struct.pack(">I", len(head)) + head + text.encode(), None)
        for index, image in enumerate(call.images, start=1):  # SaveImageWebsocket's PNGs
            self._progress(node_id, index, len(call.images), image, "image/png")
        ui = None
        if isinstance(result, dict) and result:  # an empty ui: no executed, no history
            meta = {"node_id": node_id, "display_node": node_id, "parent_node": None}
            ui = {"meta": {**meta, "real_node_id": node_id}, "output": result}
            self._executed(node_id, ui)
        outputs = () if isinstance(result, dict) else result
        host.cache.entries[host.cache.keys[node_id]] = (ui, outputs)
        self._progress_state(node_id, state="finished", value=self.progress[node_id]["max"])
        self.executed.append(node_id)

    def _progress(
        self, node_id: str, value: int, total: int, image: bytes | None, mime: str
    ) -> None:
        """``progress_state`` and ``progress`` of one step, with its image frame: type 4 before
        ``progress`` (a client with preview metadata; sent from the progress hook), else type 1
        after it."""
        host = self.host
        self._progress_state(node_id, state="running", value=value, max=total)
        with_metadata = host.supports_preview_metadata(host.client_id)
        if image is not None and with_metadata:
            meta: dict[str, Any] = {"node_id": node_id, "prompt_id": self.pid}
            meta |= {"display_node_id": node_id, "parent_node_id": None}
            meta |= {"real_node_id": node_id, "image_type": mime}
            head = json.dumps(meta).encode()
            frame = struct.pack(">I", len(head)) + head + image
            host.send_binary(PREVIEW_IMAGE_WITH_METADATA, frame, host.client_id)
        self.send(
            "progress", {"value": value, "max": total, "prompt_id": self.pid, "node": node_id}
        )
        if image is not None and not with_metadata:
            kind = 2 if mime == "image/png" else 1
            host.send_binary(PREVIEW_IMAGE, struct.pack(">I", kind) + image, host.client_id)

    def _check_interrupt(self) -> None:
        if self.host.take_interrupt():
            raise Interrupted()

    def _injected(self, node: NodeDef, stepped: bool) -> NodeError:
        faults = self.host.faults
        if node.name == "CheckpointLoaderSimple":  # what the recorded dummy checkpoints gave
            message = "Error while deserializing header: header too small"
            kind = "safetensors._safetensors_rust.SafetensorError"
            trace = frames("load_checkpoint", "load_torch_file")
        else:
            message, kind = RECORDED["cuda_error"], "RuntimeError"
            trace = frames("sample", "flux_forward") if stepped else _node_frame(node)
        message = faults.execution_error_message or message
        return NodeError(message, faults.execution_error_type or kind, trace)

    async def _steps(self, node_id: str, total: int, result: Any, oom_at: int | None) -> None:
        """A stepped node's progress: per step a delay, interrupt check, progress, preview."""
        host, settings = self.host, self.host.settings
        latent = result[0] if isinstance(result, tuple) and isinstance(result[0], Latent) else None
        for step in range(1, total + 1):
            await asyncio.sleep(settings.step_delay_s)
            self._check_interrupt()
            if oom_at is not None and step > oom_at:
                raise _oom(frames("sample", "flux_forward"))
            jpeg = None
            if settings.previews_enabled and latent is not None:
                share, size = step / total, PREVIEW_SIZE
                jpeg = await asyncio.to_thread(preview, latent, share, size)
            self._progress(node_id, step, total, jpeg, "image/jpeg")
            drop_at = host.faults.ws_drop_after_step
            if drop_at is not None and step >= drop_at and not self.dropped_ws:
                self.dropped_ws = True
                host.drop_websockets()
