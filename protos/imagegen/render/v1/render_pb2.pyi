from imagegen.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RenderRequest(_message.Message):
    __slots__ = ("source_image", "positive_prompt", "negative_prompt", "settings", "seed", "variants", "width", "height", "loras", "controlnet", "workflow", "previews", "provenance", "output_format", "output_quality", "mask", "scale")
    SOURCE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    LORAS_FIELD_NUMBER: _ClassVar[int]
    CONTROLNET_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    PROVENANCE_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_QUALITY_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    source_image: _common_pb2.Image
    positive_prompt: str
    negative_prompt: str
    settings: _common_pb2.SamplerSettings
    seed: int
    variants: int
    width: int
    height: int
    loras: _containers.RepeatedCompositeFieldContainer[_common_pb2.LoraSpec]
    controlnet: _common_pb2.ControlNetSpec
    workflow: str
    previews: bool
    provenance: _common_pb2.Provenance
    output_format: _common_pb2.OutputFormat
    output_quality: int
    mask: _common_pb2.Image
    scale: float
    def __init__(self, source_image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., positive_prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., settings: _Optional[_Union[_common_pb2.SamplerSettings, _Mapping]] = ..., seed: _Optional[int] = ..., variants: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., loras: _Optional[_Iterable[_Union[_common_pb2.LoraSpec, _Mapping]]] = ..., controlnet: _Optional[_Union[_common_pb2.ControlNetSpec, _Mapping]] = ..., workflow: _Optional[str] = ..., previews: _Optional[bool] = ..., provenance: _Optional[_Union[_common_pb2.Provenance, _Mapping]] = ..., output_format: _Optional[_Union[_common_pb2.OutputFormat, str]] = ..., output_quality: _Optional[int] = ..., mask: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., scale: _Optional[float] = ...) -> None: ...

class RenderResponse(_message.Message):
    __slots__ = ("queued", "progress", "preview", "result", "warning")
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    queued: _common_pb2.RenderQueued
    progress: _common_pb2.RenderProgress
    preview: _common_pb2.Preview
    result: _common_pb2.VariantResult
    warning: _common_pb2.Warning
    def __init__(self, queued: _Optional[_Union[_common_pb2.RenderQueued, _Mapping]] = ..., progress: _Optional[_Union[_common_pb2.RenderProgress, _Mapping]] = ..., preview: _Optional[_Union[_common_pb2.Preview, _Mapping]] = ..., result: _Optional[_Union[_common_pb2.VariantResult, _Mapping]] = ..., warning: _Optional[_Union[_common_pb2.Warning, _Mapping]] = ...) -> None: ...
