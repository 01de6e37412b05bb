"""Server reflection that carries the contract's comments.

``grpcurl describe`` shows a service's comments only when the ``FileDescriptorProto`` it
receives keeps its ``source_code_info``, and the descriptors compiled into the generated
``*_pb2`` modules drop it. ``make protos`` therefore also writes
``protos/imagegen/descriptor_set.binpb`` (``protoc --include_source_info``), committed
beside the generated code; the reflection service adds each file's ``source_code_info``
from it to the compiled descriptor it answers with. Nothing else changes (JSON field
names included); files not in the set (health, reflection itself) are answered as before.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any

import grpc.aio
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

from services.common.logs import get_logger

__all__ = ["DESCRIPTOR_SET", "documented_files", "enable_documented_reflection"]

DESCRIPTOR_SET = "descriptor_set.binpb"
"""File name of the descriptor set inside the ``imagegen`` package."""

_log = get_logger(__name__)


def documented_files() -> dict[str, descriptor_pb2.SourceCodeInfo]:
    """The comments (``source_code_info``) of every contract file.

    Returns:
        File name (``imagegen/gateway/v1/gateway.proto``) → its source info; empty when
        the descriptor set is missing (reflection then serves no comments).
    """
    source = resources.files("imagegen") / DESCRIPTOR_SET
    if not source.is_file():
        _log.warning(
            "no descriptor set: reflection serves no comments", extra={"file": DESCRIPTOR_SET}
        )
        return {}
    files = descriptor_pb2.FileDescriptorSet.FromString(source.read_bytes())
    return {proto.name: proto.source_code_info for proto in files.file}


class _DocumentedReflection(reflection.aio.ReflectionServicer):  # type: ignore[misc]
    """The stock reflection servicer, answering contract files with their comments."""

    def __init__(
        self,
        service_names: Iterable[str],
        documented: Mapping[str, descriptor_pb2.SourceCodeInfo],
    ) -> None:
        super().__init__(service_names)
        self._documented = documented

    def _file_by_filename(self, request: Any, filename: str) -> Any:
        return self._with_comments(super()._file_by_filename(request, filename))

    def _file_containing_symbol(self, request: Any, fully_qualified_name: str) -> Any:
        return self._with_comments(super()._file_containing_symbol(request, fully_qualified_name))

    def _file_containing_extension(
        self, request: Any, containing_type: str, extension_number: int
    ) -> Any:
        return self._with_comments(
            super()._file_containing_extension(request, containing_type, extension_number)
        )

    def _with_comments(
        self, response: reflection_pb2.ServerReflectionResponse
    ) -> reflection_pb2.ServerReflectionResponse:
        if response.HasField("file_descriptor_response"):
            protos = response.file_descriptor_response.file_descriptor_proto
            for i, blob in enumerate(protos):
                proto = descriptor_pb2.FileDescriptorProto.FromString(blob)
                comments = self._documented.get(proto.name)
                if comments is not None:
                    proto.source_code_info.CopyFrom(comments)
                    protos[i] = proto.SerializeToString()
        return response


def enable_documented_reflection(service_names: Iterable[str], server: grpc.aio.Server) -> None:
    """Registers reflection (``grpc.reflection.v1alpha``) listing ``service_names``.

    Args:
        service_names: Fully qualified names of the services to list.
        server: The server to register it on.
    """
    servicer = _DocumentedReflection(service_names, documented_files())
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
