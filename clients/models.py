"""The ``models`` command: what the system can do, from ``GetCapabilities``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TextIO

import grpc

from imagegen.common.v1 import common_pb2
from imagegen.gateway.v1 import gateway_pb2, gateway_pb2_grpc

__all__ = ["print_capabilities", "run_models"]


def run_models(
    channel: grpc.Channel,
    stream: TextIO,
    *,
    timeout: float = 10.0,
    refresh: bool = False,
    metadata: Sequence[tuple[str, str]] = (),
) -> gateway_pb2.GetCapabilitiesResponse:
    """Asks the gateway what it can do and prints it.

    Args:
        channel: A channel to the gateway.
        stream: Where to print.
        timeout: Deadline of the call in seconds.
        refresh: Have the gateway ask the services again instead of its cache.
        metadata: Call metadata, e.g. the caller's token.

    Returns:
        The capabilities.

    Raises:
        grpc.RpcError: The call failed.
    """
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)  # type: ignore[no-untyped-call]
    response: gateway_pb2.GetCapabilitiesResponse = stub.GetCapabilities(
        gateway_pb2.GetCapabilitiesRequest(refresh=refresh),
        timeout=timeout,
        metadata=tuple(metadata) or None,
    )
    print_capabilities(response, stream)
    return response


def _enum(enum: object, value: int, prefix: str) -> str:
    name: str = enum.Name(value)  # type: ignore[attr-defined]
    return name.removeprefix(prefix).lower()


def print_capabilities(caps: gateway_pb2.GetCapabilitiesResponse, stream: TextIO) -> None:
    """Prints the capabilities as short sections."""
    print("workflows:", file=stream)
    for w in caps.workflows:
        mode = _enum(common_pb2.GenerationMode, w.mode, "GENERATION_MODE_")
        default = ", default" if w.is_default else ""
        print(f"  {w.name} ({mode}{default}; size: {w.output_size})", file=stream)
        if w.description:
            print(f"    {w.description}", file=stream)
        print(f"    binds: {', '.join(w.parameters)}", file=stream)
    for title, names in (
        ("loras", caps.loras),
        ("controlnet models", caps.controlnet_models),
        ("samplers", caps.samplers),
        ("schedulers", caps.schedulers),
    ):
        print(f"{title}: {', '.join(names) or 'none'}", file=stream)
    print("controlnets by type:", file=stream)
    for cn in caps.controlnets:
        kind = _enum(common_pb2.ControlType, cn.type, "CONTROL_TYPE_")
        state = "available" if cn.available else "missing"
        print(f"  {kind}: {cn.default_model or 'none configured'} ({state})", file=stream)
    print("render backends:", file=stream)
    for b in caps.render_backends:
        modes = ", ".join(_enum(common_pb2.EditMode, m, "EDIT_MODE_") for m in b.edit_modes)
        state = f"edit modes: {modes}" if b.reachable else f"unreachable: {b.error}"
        print(f"  {b.name}: {state}", file=stream)
    print("language models:", file=stream)
    for m in caps.language_models:
        model = f"{m.model} on {m.backend}" if m.model else "unknown"
        reason = f" ({m.reason})" if m.reason else ""
        print(f"  {m.service}: {model}, {m.state}{reason}", file=stream)
    lim = caps.limits
    print(
        f"limits: image side ≤ {lim.max_image_side} px, image ≤ {lim.max_image_bytes} bytes, "
        f"render ≤ {lim.max_megapixels:g} MP, text-to-image sides "
        f"{lim.txt2img_min_side}-{lim.txt2img_max_side} px, ≤ {lim.max_variants} variants, "
        f"≤ {lim.max_loras} LoRAs, instruction ≤ {lim.max_instruction_chars} characters",
        file=stream,
    )
    stream.flush()
