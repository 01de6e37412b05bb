"""Running one prompt: the websocket message sequence of ComfyUI 0.3.64's executor.

Per prompt (owner socket): ``execution_start``, ``execution_cached``, then per executed node
``progress_state`` (running) → ``executing`` → [``progress_state`` + ``progress`` per step,
preview frames] → [``executed`` for output nodes] → ``progress_state`` (finished); cached
output nodes send only ``executed`` + ``progress_state``. The terminal message is
``execution_success`` | ``execution_error`` | ``execution_interrupted``; the caller then
writes history, broadcasts ``status`` and sends ``executing {node: null}``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import struct
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from PIL import Image

from standins.comfyui import images as im
from standins.comfyui.catalog import NodeCatalog, NodeDef
from standins.comfyui.graph import ExecutionOrder, Uncacheable, is_link, node_signatures
from standins.comfyui.nodes import (
    IMPLS,
    STEPPED,
    FakeNodeError,
    NodeInterrupted,
    generic_node,
)
from standins.comfyui.settings import FakeComfyUISettings, FaultSettings
from standins.comfyui.validation import FileResolver, full_type_name

if TYPE_CHECKING:
    from standins.comfyui.server import FakeComfyUI

__all__ = ["CacheEntry", "OutputCache", "PromptRun", "QueueItem", "format_value"]

log = logging.getLogger("fake_comfyui")

PREVIEW_IMAGE = 1
UNENCODED_PREVIEW_IMAGE = 2
TEXT = 3
PREVIEW_IMAGE_WITH_METADATA = 4

OOM_TIPS = (
    "This error means you ran out of memory on your GPU.\n\n"
    "TIPS: If the workflow worked before you might have accidentally set the batch_size "
    "to a large number."
)

_EXECUTE_FRAMES = [
    '  File "/opt/ComfyUI/execution.py", line 496, in execute\n'
    "    output_data, output_ui, has_subgraph, has_pending_tasks = await get_output_data("
    "prompt_id, unique_id, obj, input_data_all, execution_block_cb=execution_block_cb, "
    "pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n"
    "                                                              " + "^" * 170 + "\n",
    '  File "/opt/ComfyUI/execution.py", line 315, in get_output_data\n'
    "    return_values = await _async_map_node_over_list(prompt_id, unique_id, obj, "
    "input_data_all, obj.FUNCTION, allow_interrupt=True, execution_block_cb=execution_block_cb, "
    "pre_execute_cb=pre_execute_cb, hidden_inputs=hidden_inputs)\n"
    "                    " + "^" * 206 + "\n",
    '  File "/opt/ComfyUI/execution.py", line 289, in _async_map_node_over_list\n'
    "    await process_inputs(input_dict, i)\n",
    '  File "/opt/ComfyUI/execution.py", line 277, in process_inputs\n'
    "    result = f(**inputs)\n             ^^^^^^^^^^^\n",
]

_SAFETENSORS_FRAMES = [
    '  File "/opt/ComfyUI/nodes.py", line 578, in load_checkpoint\n'
    "    out = comfy.sd.load_checkpoint_guess_config(ckpt_path, output_vae=True, "
    'output_clip=True, embedding_directory=folder_paths.get_folder_paths("embeddings"))\n'
    "          " + "^" * 150 + "\n",
    '  File "/opt/ComfyUI/comfy/sd.py", line 1173, in load_checkpoint_guess_config\n'
    "    sd, metadata = comfy.utils.load_torch_file(ckpt_path, return_metadata=True)\n"
    "                   " + "^" * 60 + "\n",
    '  File "/opt/ComfyUI/comfy/utils.py", line 75, in load_torch_file\n    raise e\n',
    '  File "/opt/ComfyUI/comfy/utils.py", line 59, in load_torch_file\n'
    '    with safetensors.safe_open(ckpt, framework="pt", device=device.type) as f:\n'
    "         " + "^" * 63 + "\n",
]

_SAMPLER_FRAMES = [
    '  File "/opt/ComfyUI/nodes.py", line 1525, in sample\n'
    "    return common_ksampler(model, seed, steps, cfg, sampler_name, scheduler, positive, "
    "negative, latent_image, denoise=denoise)\n",
    '  File "/opt/ComfyUI/nodes.py", line 1492, in common_ksampler\n'
    "    samples = comfy.sample.sample(model, noise, steps, cfg, sampler_name, scheduler, "
    "positive, negative, latent_image,\n",
    '  File "/opt/ComfyUI/comfy/samplers.py", line 1161, in sample\n'
    "    return sample(self.model, noise, positive, negative, cfg, self.device, sampler, sigmas, "
    "self.model_options, latent_image=latent_image, denoise_mask=denoise_mask, "
    "callback=callback, disable_pbar=disable_pbar, seed=seed)\n",
    '  File "/opt/ComfyUI/comfy/k_diffusion/sampling.py", line 199, in sample_euler\n'
    "    denoised = model(x, sigma_hat * s_in, **extra_args)\n"
    "               ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^\n",
    '  File "/opt/ComfyUI/comfy/ldm/flux/model.py", line 204, in forward\n'
    "    out = self.forward_orig(img, img_ids, context, txt_ids, timestep, y, guidance, "
    'control, transformer_options, attn_mask=kwargs.get("attention_mask", None))\n',
    '  File "/opt/ComfyUI/comfy/ldm/modules/attention.py", line 536, in attention_pytorch\n'
    "    out = comfy.ops.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=0.0, "
    "is_causal=False)\n",
]

_CUDA_ERROR = (
    "CUDA error: an illegal memory access was encountered\n"
    "CUDA kernel errors might be asynchronously reported at some other API call, so the "
    "stacktrace below might be incorrect.\n"
    "For debugging consider passing CUDA_LAUNCH_BLOCKING=1\n"
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions."
)


def _node_frame(node_def: NodeDef) -> str:
    module = str(node_def.raw.get("python_module", "nodes")).replace(".", "/") + ".py"
    func = "execute" if node_def.is_v3 else "process"
    return f'  File "/opt/ComfyUI/{module}", line 1, in {func}\n'


def format_value(x: Any) -> Any:
    """How ComfyUI shows an input value in ``current_inputs`` of an error."""
    if x is None:
        return None
    if isinstance(x, int | float | bool | str):
        return x
    return str(x)


class CacheEntry(NamedTuple):
    """A node's cached result: its ui (``{"meta", "output"}``) and output values."""

    ui: dict[str, Any] | None
    outputs: tuple[Any, ...]


@dataclass(order=True)
class QueueItem:
    """A queued prompt; ordered like ComfyUI's heap entries (number, then prompt id)."""

    number: int | float
    prompt_id: str
    seq: int
    prompt: dict[str, Any] = field(compare=False)
    extra_data: dict[str, Any] = field(compare=False)
    outputs: list[str] = field(compare=False)
    sensitive: dict[str, Any] = field(compare=False, default_factory=dict)

    def public(self) -> list[Any]:
        """The 5-element form shown by /queue and history."""
        return [self.number, self.prompt_id, self.prompt, self.extra_data, self.outputs]


class OutputCache:
    """The classic cache: entries keyed by signature, unused keys dropped per prompt."""

    def __init__(self) -> None:
        self.entries: dict[str, CacheEntry] = {}
        self.keys: dict[str, str] = {}

    def set_prompt(self, keys: dict[str, str]) -> None:
        self.keys = keys
        used = set(keys.values())
        for key in [k for k in self.entries if k not in used]:
            del self.entries[key]

    def get(self, node_id: str) -> CacheEntry | None:
        key = self.keys.get(node_id)
        return None if key is None else self.entries.get(key)

    def set(self, node_id: str, entry: CacheEntry) -> None:
        self.entries[self.keys[node_id]] = entry


class ProgressRegistry:
    """Node states of the running prompt, sent as ``progress_state`` on every change."""

    def __init__(self, run: PromptRun) -> None:
        self.run = run
        self.nodes: dict[str, dict[str, Any]] = {}

    def _entry(self, node_id: str) -> dict[str, Any]:
        return self.nodes.setdefault(node_id, {"state": "pending", "value": 0, "max": 1})

    def _send(self) -> None:
        pid = self.run.item.prompt_id
        nodes = {
            nid: {
                "value": e["value"],
                "max": e["max"],
                "state": e["state"],
                "node_id": nid,
                "prompt_id": pid,
                "display_node_id": nid,
                "parent_node_id": None,
                "real_node_id": nid,
            }
            for nid, e in self.nodes.items()
            if e["state"] != "pending"
        }
        self.run.send("progress_state", {"prompt_id": pid, "nodes": nodes})

    def start(self, node_id: str) -> None:
        self._entry(node_id).update(state="running", value=0.0, max=1.0)
        self._send()

    def update(self, node_id: str, value: int, total: int, preview: Image.Image | None) -> None:
        self._entry(node_id).update(state="running", value=value, max=total)
        self._send()
        host = self.run.host
        if preview is not None and host.supports_preview_metadata(host.client_id):
            meta = {
                "node_id": node_id,
                "prompt_id": self.run.item.prompt_id,
                "display_node_id": node_id,
                "parent_node_id": None,
                "real_node_id": node_id,
                "image_type": "image/jpeg",
            }
            meta_json = json.dumps(meta).encode("utf-8")
            jpeg = im.jpeg_bytes(preview, host.settings.preview_size)
            payload = struct.pack(">I", len(meta_json)) + meta_json + jpeg
            host.send_binary(PREVIEW_IMAGE_WITH_METADATA, payload, host.client_id)

    def finish(self, node_id: str) -> None:
        entry = self._entry(node_id)
        entry.update(state="finished", value=entry["max"])
        self._send()


class _Context:
    """What a node implementation sees (see nodes.NodeContext)."""

    def __init__(self, run: PromptRun, node_id: str, node_def: NodeDef) -> None:
        self.run = run
        self.node_id = node_id
        self.class_type = node_def.name
        self.prompt_id = run.item.prompt_id
        self.prompt = run.item.prompt
        self.extra_data = run.item.extra_data
        self.settings: FakeComfyUISettings = run.host.settings
        self.files: FileResolver = run.host.files
        self.output_dir = run.host.output_dir
        self.temp_dir = run.host.temp_dir
        self.state = run.host.node_state(node_id, node_def.name)
        self.oom_at: int | None = None

    def model_files(self, folder: str) -> list[str]:
        return self.run.host.catalog.model_files.get(folder, [])

    async def progress(self, value: int, total: int, preview: Image.Image | None) -> None:
        run = self.run
        run.check_interrupt()
        if self.oom_at is not None and value > self.oom_at:
            raise run.oom_error(self.class_type, stepped=True)
        run.progress.update(self.node_id, value, total, preview)
        host = run.host
        run.send(
            "progress",
            {"value": value, "max": total, "prompt_id": self.prompt_id, "node": self.node_id},
        )
        if preview is not None and not host.supports_preview_metadata(host.client_id):
            payload = struct.pack(">I", 1) + im.jpeg_bytes(preview, host.settings.preview_size)
            host.send_binary(PREVIEW_IMAGE, payload, host.client_id)
        drop_at = host.faults.ws_drop_after_step
        if drop_at is not None and value >= drop_at and not run.dropped_ws:
            run.dropped_ws = True
            host.drop_websockets()

    def send_text(self, text: str) -> None:
        node_bytes = str(self.node_id).encode("utf-8")
        payload = struct.pack(">I", len(node_bytes)) + node_bytes + text.encode("utf-8")
        self.run.host.send_binary(TEXT, payload, None)


def _matches(selector: str | None, node_id: str, class_type: str) -> bool:
    return selector is not None and selector in (node_id, class_type)


class PromptRun:
    """Executes one queued prompt and records its status messages and history result."""

    def __init__(self, host: FakeComfyUI, item: QueueItem) -> None:
        self.host = host
        self.item = item
        self.catalog: NodeCatalog = host.catalog
        self.status_messages: list[list[Any]] = []
        self.success = True
        self.executed: list[str] = []
        self.values: dict[str, tuple[Any, ...]] = {}
        self.ui_outputs: dict[str, dict[str, Any]] = {}
        self.progress = ProgressRegistry(self)
        self.dropped_ws = False
        self.history_result: dict[str, Any] = {"outputs": {}, "meta": {}}

    # ----------------------------------------------------------- messaging
    def send(self, event: str, data: dict[str, Any]) -> None:
        self.host.send(event, data, self.host.client_id)

    def add_message(self, event: str, data: dict[str, Any], broadcast: bool) -> None:
        data = {**data, "timestamp": int(time.time() * 1000)}
        self.status_messages.append([event, data])
        if self.host.client_id is not None or broadcast:
            self.host.send(event, data, self.host.client_id)

    def check_interrupt(self) -> None:
        if self.host.take_interrupt():
            raise NodeInterrupted()

    def oom_error(self, class_type: str, *, stepped: bool) -> FakeNodeError:
        frames = _SAMPLER_FRAMES if stepped else [_node_frame(self.catalog[class_type])]
        return FakeNodeError("Allocation on device ", "torch.OutOfMemoryError", frames)

    def injected_error(self, node_def: NodeDef) -> FakeNodeError:
        faults: FaultSettings = self.host.faults
        if node_def.name in ("CheckpointLoaderSimple", "CheckpointLoader"):
            message = "Error while deserializing header: header too small"
            etype = "safetensors._safetensors_rust.SafetensorError"
            frames = _SAFETENSORS_FRAMES
        elif node_def.name in STEPPED:
            message, etype, frames = _CUDA_ERROR, "RuntimeError", _SAMPLER_FRAMES
        else:
            message, etype, frames = _CUDA_ERROR, "RuntimeError", [_node_frame(node_def)]
        return FakeNodeError(
            faults.execution_error_message or message,
            faults.execution_error_type or etype,
            frames,
        )

    # ----------------------------------------------------------- cache keys
    def is_changed(self, node_id: str) -> Any:
        node = self.item.prompt.get(node_id, {})
        if node.get("class_type") in ("LoadImage", "LoadImageMask", "LoadImageOutput"):
            try:
                default = self.host.output_dir if node["class_type"] == "LoadImageOutput" else None
                path = self.host.files.path(node["inputs"]["image"], default)
                with open(path, "rb") as fh:
                    return hashlib.sha256(fh.read()).hexdigest()
            except Exception:
                return Uncacheable()
        return False

    # ----------------------------------------------------------- run
    async def run(self) -> None:
        host = self.host
        item = self.item
        prompt = item.prompt
        host.client_id = item.extra_data.get("client_id")
        host.clear_interrupt()
        self.add_message("execution_start", {"prompt_id": item.prompt_id}, broadcast=False)

        keys = await asyncio.to_thread(node_signatures, prompt, self.catalog, self.is_changed)
        host.cache.set_prompt(keys)
        host.clean_node_states(prompt)
        cached_nodes = [nid for nid in prompt if host.cache.get(nid) is not None]
        self.add_message(
            "execution_cached",
            {"nodes": cached_nodes, "prompt_id": item.prompt_id},
            broadcast=False,
        )
        order = ExecutionOrder(prompt, self.catalog, lambda nid: host.cache.get(nid) is not None)
        for output_id in item.outputs:
            order.add_node(output_id)
        current_outputs = list(prompt)

        while not order.is_empty():
            node_id = order.next_node()
            if node_id is None:  # pragma: no cover - validation rejects cycles
                self.success = False
                break
            ok, error, ex = await self.execute_node(node_id)
            self.success = ok
            if not ok:
                assert error is not None
                self.handle_execution_error(current_outputs, error, ex)
                break
            order.complete(node_id)
        else:
            self.add_message("execution_success", {"prompt_id": item.prompt_id}, broadcast=False)

        # 0.3.64 builds these from a set of node ids (arbitrary order); prompt order is
        # what the recorded entries show and keeps the fake deterministic.
        ordered = [nid for nid in prompt if nid in self.ui_outputs]
        self.history_result = {
            "outputs": {nid: self.ui_outputs[nid]["output"] for nid in ordered},
            "meta": {nid: self.ui_outputs[nid]["meta"] for nid in ordered},
        }
        host.last_node_id = None

    def _gather_inputs(self, node_id: str, node_def: NodeDef) -> dict[str, Any]:
        node = self.item.prompt[node_id]
        data: dict[str, Any] = {}
        for name, value in node["inputs"].items():
            spec = node_def.input_spec(name)
            if is_link(value):
                source, index = value[0], int(value[1])
                outputs = self.values.get(source)
                if outputs is None:
                    cached = self.host.cache.get(source)
                    outputs = cached.outputs if cached is not None else None
                data[name] = (
                    outputs[index] if outputs is not None and index < len(outputs) else None
                )
            elif spec is not None:
                data[name] = value
        extra = self.item.extra_data
        for name, kind in node_def.hidden.items():
            if kind == "PROMPT":
                data[name] = self.item.prompt
            elif kind == "EXTRA_PNGINFO":
                data[name] = extra.get("extra_pnginfo", None)
            elif kind == "UNIQUE_ID":
                data[name] = node_id
            elif kind in ("AUTH_TOKEN_COMFY_ORG", "API_KEY_COMFY_ORG"):
                data[name] = self.item.sensitive.get(kind.lower(), extra.get(kind.lower()))
        return data

    async def execute_node(
        self, node_id: str
    ) -> tuple[bool, dict[str, Any] | None, BaseException | None]:
        host = self.host
        pid = self.item.prompt_id
        class_type = self.item.prompt[node_id]["class_type"]
        node_def = self.catalog[class_type]
        cached = host.cache.get(node_id)
        if cached is not None:
            if host.client_id is not None:
                output = cached.ui["output"] if cached.ui else None
                self.send(
                    "executed",
                    {"node": node_id, "display_node": node_id, "output": output, "prompt_id": pid},
                )
            if cached.ui is not None:
                self.ui_outputs[node_id] = cached.ui
            self.values[node_id] = cached.outputs
            self.progress.finish(node_id)
            return True, None, None

        self.progress.start(node_id)
        data: dict[str, Any] | None = None
        try:
            data = self._gather_inputs(node_id, node_def)
            if host.client_id is not None:
                host.last_node_id = node_id
                self.send("executing", {"node": node_id, "display_node": node_id, "prompt_id": pid})
            self.check_interrupt()
            if host.settings.node_delay_s:
                # A slow node is not interruptible: the flag is seen when the next one starts.
                await asyncio.sleep(host.settings.node_delay_s)
            faults = host.faults
            ctx = _Context(self, node_id, node_def)
            if _matches(faults.execution_error_node, node_id, class_type):
                raise self.injected_error(node_def)
            if _matches(faults.oom_node, node_id, class_type):
                if class_type in STEPPED:
                    ctx.oom_at = faults.oom_after_step
                else:
                    raise self.oom_error(class_type, stepped=False)
            impl = IMPLS.get(class_type)
            if impl is not None:
                outputs, ui = await impl(ctx, data)
            else:
                outputs, ui = await generic_node(ctx, data, node_def)
            cache_ui = None
            if ui:
                meta = {
                    "node_id": node_id,
                    "display_node": node_id,
                    "parent_node": None,
                    "real_node_id": node_id,
                }
                cache_ui = {"meta": meta, "output": ui}
                self.ui_outputs[node_id] = cache_ui
                if host.client_id is not None:
                    self.send(
                        "executed",
                        {"node": node_id, "display_node": node_id, "output": ui, "prompt_id": pid},
                    )
            host.cache.set(node_id, CacheEntry(cache_ui, outputs))
            self.values[node_id] = outputs
        except NodeInterrupted as ex:
            return False, {"node_id": node_id}, ex
        except Exception as ex:
            log.error("!!! Exception during processing !!! %s", ex)
            if isinstance(ex, FakeNodeError):
                exception_type = ex.exception_type
                frames = [*_EXECUTE_FRAMES, *ex.frames]
            else:
                exception_type = full_type_name(type(ex))
                frames = [*_EXECUTE_FRAMES, _node_frame(node_def)]
            tips = OOM_TIPS if exception_type == "torch.OutOfMemoryError" else ""
            formatted = {}
            if data is not None:
                formatted = {name: [format_value(v)] for name, v in data.items()}
            return (
                False,
                {
                    "node_id": node_id,
                    "exception_message": f"{ex}\n{tips}",
                    "exception_type": exception_type,
                    "traceback": frames,
                    "current_inputs": formatted,
                },
                ex,
            )
        self.progress.finish(node_id)
        self.executed.append(node_id)
        return True, None, None

    def handle_execution_error(
        self, current_outputs: list[str], error: dict[str, Any], ex: BaseException | None
    ) -> None:
        node_id = error["node_id"]
        base = {
            "prompt_id": self.item.prompt_id,
            "node_id": node_id,
            "node_type": self.item.prompt[node_id]["class_type"],
            "executed": list(self.executed),
        }
        if isinstance(ex, NodeInterrupted):
            self.add_message("execution_interrupted", base, broadcast=True)
        else:
            mes = {
                **base,
                "exception_message": error["exception_message"],
                "exception_type": error["exception_type"],
                "traceback": error["traceback"],
                "current_inputs": error["current_inputs"],
                "current_outputs": list(current_outputs),
            }
            self.add_message("execution_error", mes, broadcast=False)
