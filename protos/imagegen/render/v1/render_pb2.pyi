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

class GetCatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCatalogResponse(_message.Message):
    __slots__ = ("workflows", "backends", "controlnet_defaults", "max_megapixels")
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_FIELD_NUMBER: _ClassVar[int]
    CONTROLNET_DEFAULTS_FIELD_NUMBER: _ClassVar[int]
    MAX_MEGAPIXELS_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[CatalogWorkflow]
    backends: _containers.RepeatedCompositeFieldContainer[BackendCatalog]
    controlnet_defaults: _containers.RepeatedCompositeFieldContainer[ControlNetDefault]
    max_megapixels: float
    def __init__(self, workflows: _Optional[_Iterable[_Union[CatalogWorkflow, _Mapping]]] = ..., backends: _Optional[_Iterable[_Union[BackendCatalog, _Mapping]]] = ..., controlnet_defaults: _Optional[_Iterable[_Union[ControlNetDefault, _Mapping]]] = ..., max_megapixels: _Optional[float] = ...) -> None: ...

class CatalogWorkflow(_message.Message):
    __slots__ = ("name", "mode", "description", "parameters", "output_size", "is_default", "models")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    name: str
    mode: _common_pb2.GenerationMode
    description: str
    parameters: _containers.RepeatedScalarFieldContainer[str]
    output_size: str
    is_default: bool
    models: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.GenerationMode, str]] = ..., description: _Optional[str] = ..., parameters: _Optional[_Iterable[str]] = ..., output_size: _Optional[str] = ..., is_default: _Optional[bool] = ..., models: _Optional[_Iterable[str]] = ...) -> None: ...

class BackendCatalog(_message.Message):
    __slots__ = ("name", "reachable", "error", "loras", "controlnets", "samplers", "schedulers", "edit_modes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LORAS_FIELD_NUMBER: _ClassVar[int]
    CONTROLNETS_FIELD_NUMBER: _ClassVar[int]
    SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULERS_FIELD_NUMBER: _ClassVar[int]
    EDIT_MODES_FIELD_NUMBER: _ClassVar[int]
    name: str
    reachable: bool
    error: str
    loras: _containers.RepeatedScalarFieldContainer[str]
    controlnets: _containers.RepeatedScalarFieldContainer[str]
    samplers: _containers.RepeatedScalarFieldContainer[str]
    schedulers: _containers.RepeatedScalarFieldContainer[str]
    edit_modes: _containers.RepeatedScalarFieldContainer[_common_pb2.EditMode]
    def __init__(self, name: _Optional[str] = ..., reachable: _Optional[bool] = ..., error: _Optional[str] = ..., loras: _Optional[_Iterable[str]] = ..., controlnets: _Optional[_Iterable[str]] = ..., samplers: _Optional[_Iterable[str]] = ..., schedulers: _Optional[_Iterable[str]] = ..., edit_modes: _Optional[_Iterable[_Union[_common_pb2.EditMode, str]]] = ...) -> None: ...

class ControlNetDefault(_message.Message):
    __slots__ = ("type", "model")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.ControlType
    model: str
    def __init__(self, type: _Optional[_Union[_common_pb2.ControlType, str]] = ..., model: _Optional[str] = ...) -> None: ...
