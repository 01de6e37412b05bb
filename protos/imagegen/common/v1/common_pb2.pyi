from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ControlType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_TYPE_UNSPECIFIED: _ClassVar[ControlType]
    CONTROL_TYPE_CANNY: _ClassVar[ControlType]
    CONTROL_TYPE_DEPTH: _ClassVar[ControlType]
    CONTROL_TYPE_POSE: _ClassVar[ControlType]
    CONTROL_TYPE_TILE: _ClassVar[ControlType]

class GenerationMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    GENERATION_MODE_UNSPECIFIED: _ClassVar[GenerationMode]
    GENERATION_MODE_IMAGE_TO_IMAGE: _ClassVar[GenerationMode]
    GENERATION_MODE_TEXT_TO_IMAGE: _ClassVar[GenerationMode]

class AnalysisSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ANALYSIS_SOURCE_UNSPECIFIED: _ClassVar[AnalysisSource]
    ANALYSIS_SOURCE_MODEL: _ClassVar[AnalysisSource]
    ANALYSIS_SOURCE_METADATA_FALLBACK: _ClassVar[AnalysisSource]
    ANALYSIS_SOURCE_USER: _ClassVar[AnalysisSource]

class EditIntent(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EDIT_INTENT_UNSPECIFIED: _ClassVar[EditIntent]
    EDIT_INTENT_COLOR_CHANGE: _ClassVar[EditIntent]
    EDIT_INTENT_MATERIAL_CHANGE: _ClassVar[EditIntent]
    EDIT_INTENT_STYLE_TRANSFER: _ClassVar[EditIntent]
    EDIT_INTENT_ADD_OBJECT: _ClassVar[EditIntent]
    EDIT_INTENT_REMOVE_OBJECT: _ClassVar[EditIntent]
    EDIT_INTENT_LIGHTING_CHANGE: _ClassVar[EditIntent]
    EDIT_INTENT_MINOR_EDIT: _ClassVar[EditIntent]
    EDIT_INTENT_FULL_REIMAGINING: _ClassVar[EditIntent]
    EDIT_INTENT_TEXT_TO_IMAGE: _ClassVar[EditIntent]

class PlanSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLAN_SOURCE_UNSPECIFIED: _ClassVar[PlanSource]
    PLAN_SOURCE_MODEL: _ClassVar[PlanSource]
    PLAN_SOURCE_RULES: _ClassVar[PlanSource]
    PLAN_SOURCE_USER: _ClassVar[PlanSource]

class OutputFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_FORMAT_UNSPECIFIED: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_PNG: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_JPEG: _ClassVar[OutputFormat]
    OUTPUT_FORMAT_WEBP: _ClassVar[OutputFormat]

class EditMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EDIT_MODE_UNSPECIFIED: _ClassVar[EditMode]
    EDIT_MODE_AUTO: _ClassVar[EditMode]
    EDIT_MODE_IMG2IMG: _ClassVar[EditMode]
    EDIT_MODE_KONTEXT: _ClassVar[EditMode]
    EDIT_MODE_INPAINT: _ClassVar[EditMode]
CONTROL_TYPE_UNSPECIFIED: ControlType
CONTROL_TYPE_CANNY: ControlType
CONTROL_TYPE_DEPTH: ControlType
CONTROL_TYPE_POSE: ControlType
CONTROL_TYPE_TILE: ControlType
GENERATION_MODE_UNSPECIFIED: GenerationMode
GENERATION_MODE_IMAGE_TO_IMAGE: GenerationMode
GENERATION_MODE_TEXT_TO_IMAGE: GenerationMode
ANALYSIS_SOURCE_UNSPECIFIED: AnalysisSource
ANALYSIS_SOURCE_MODEL: AnalysisSource
ANALYSIS_SOURCE_METADATA_FALLBACK: AnalysisSource
ANALYSIS_SOURCE_USER: AnalysisSource
EDIT_INTENT_UNSPECIFIED: EditIntent
EDIT_INTENT_COLOR_CHANGE: EditIntent
EDIT_INTENT_MATERIAL_CHANGE: EditIntent
EDIT_INTENT_STYLE_TRANSFER: EditIntent
EDIT_INTENT_ADD_OBJECT: EditIntent
EDIT_INTENT_REMOVE_OBJECT: EditIntent
EDIT_INTENT_LIGHTING_CHANGE: EditIntent
EDIT_INTENT_MINOR_EDIT: EditIntent
EDIT_INTENT_FULL_REIMAGINING: EditIntent
EDIT_INTENT_TEXT_TO_IMAGE: EditIntent
PLAN_SOURCE_UNSPECIFIED: PlanSource
PLAN_SOURCE_MODEL: PlanSource
PLAN_SOURCE_RULES: PlanSource
PLAN_SOURCE_USER: PlanSource
OUTPUT_FORMAT_UNSPECIFIED: OutputFormat
OUTPUT_FORMAT_PNG: OutputFormat
OUTPUT_FORMAT_JPEG: OutputFormat
OUTPUT_FORMAT_WEBP: OutputFormat
EDIT_MODE_UNSPECIFIED: EditMode
EDIT_MODE_AUTO: EditMode
EDIT_MODE_IMG2IMG: EditMode
EDIT_MODE_KONTEXT: EditMode
EDIT_MODE_INPAINT: EditMode

class Image(_message.Message):
    __slots__ = ("data", "mime_type", "width", "height")
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIME_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    mime_type: str
    width: int
    height: int
    def __init__(self, data: _Optional[bytes] = ..., mime_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class SamplerSettings(_message.Message):
    __slots__ = ("denoise", "steps", "cfg", "guidance", "sampler_name", "scheduler")
    DENOISE_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    CFG_FIELD_NUMBER: _ClassVar[int]
    GUIDANCE_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_NAME_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_FIELD_NUMBER: _ClassVar[int]
    denoise: float
    steps: int
    cfg: float
    guidance: float
    sampler_name: str
    scheduler: str
    def __init__(self, denoise: _Optional[float] = ..., steps: _Optional[int] = ..., cfg: _Optional[float] = ..., guidance: _Optional[float] = ..., sampler_name: _Optional[str] = ..., scheduler: _Optional[str] = ...) -> None: ...

class LoraSpec(_message.Message):
    __slots__ = ("name", "strength")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    name: str
    strength: float
    def __init__(self, name: _Optional[str] = ..., strength: _Optional[float] = ...) -> None: ...

class ControlNetSpec(_message.Message):
    __slots__ = ("type", "strength", "start_percent", "end_percent", "model", "control_image")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    STRENGTH_FIELD_NUMBER: _ClassVar[int]
    START_PERCENT_FIELD_NUMBER: _ClassVar[int]
    END_PERCENT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CONTROL_IMAGE_FIELD_NUMBER: _ClassVar[int]
    type: ControlType
    strength: float
    start_percent: float
    end_percent: float
    model: str
    control_image: Image
    def __init__(self, type: _Optional[_Union[ControlType, str]] = ..., strength: _Optional[float] = ..., start_percent: _Optional[float] = ..., end_percent: _Optional[float] = ..., model: _Optional[str] = ..., control_image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class ImageAnalysis(_message.Message):
    __slots__ = ("description", "subjects", "colors", "materials", "style", "lighting", "composition", "source", "cached", "model", "missing_fields", "warnings", "width", "height", "image_sha256")
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    COLORS_FIELD_NUMBER: _ClassVar[int]
    MATERIALS_FIELD_NUMBER: _ClassVar[int]
    STYLE_FIELD_NUMBER: _ClassVar[int]
    LIGHTING_FIELD_NUMBER: _ClassVar[int]
    COMPOSITION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELDS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_SHA256_FIELD_NUMBER: _ClassVar[int]
    description: str
    subjects: _containers.RepeatedScalarFieldContainer[str]
    colors: _containers.RepeatedScalarFieldContainer[str]
    materials: _containers.RepeatedScalarFieldContainer[str]
    style: str
    lighting: str
    composition: str
    source: AnalysisSource
    cached: bool
    model: str
    missing_fields: _containers.RepeatedScalarFieldContainer[str]
    warnings: _containers.RepeatedScalarFieldContainer[str]
    width: int
    height: int
    image_sha256: str
    def __init__(self, description: _Optional[str] = ..., subjects: _Optional[_Iterable[str]] = ..., colors: _Optional[_Iterable[str]] = ..., materials: _Optional[_Iterable[str]] = ..., style: _Optional[str] = ..., lighting: _Optional[str] = ..., composition: _Optional[str] = ..., source: _Optional[_Union[AnalysisSource, str]] = ..., cached: _Optional[bool] = ..., model: _Optional[str] = ..., missing_fields: _Optional[_Iterable[str]] = ..., warnings: _Optional[_Iterable[str]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., image_sha256: _Optional[str] = ...) -> None: ...

class PromptPlan(_message.Message):
    __slots__ = ("positive_prompt", "negative_prompt", "settings", "intent", "source", "warnings", "model", "edit_instruction")
    POSITIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    INTENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EDIT_INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    positive_prompt: str
    negative_prompt: str
    settings: SamplerSettings
    intent: EditIntent
    source: PlanSource
    warnings: _containers.RepeatedScalarFieldContainer[str]
    model: str
    edit_instruction: str
    def __init__(self, positive_prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., settings: _Optional[_Union[SamplerSettings, _Mapping]] = ..., intent: _Optional[_Union[EditIntent, str]] = ..., source: _Optional[_Union[PlanSource, str]] = ..., warnings: _Optional[_Iterable[str]] = ..., model: _Optional[str] = ..., edit_instruction: _Optional[str] = ...) -> None: ...

class Warning(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class RenderQueued(_message.Message):
    __slots__ = ("variant", "position")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    variant: int
    position: int
    def __init__(self, variant: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...

class RenderProgress(_message.Message):
    __slots__ = ("variant", "step", "total_steps")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    variant: int
    step: int
    total_steps: int
    def __init__(self, variant: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ...) -> None: ...

class Preview(_message.Message):
    __slots__ = ("variant", "step", "image")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    variant: int
    step: int
    image: Image
    def __init__(self, variant: _Optional[int] = ..., step: _Optional[int] = ..., image: _Optional[_Union[Image, _Mapping]] = ...) -> None: ...

class VariantResult(_message.Message):
    __slots__ = ("index", "seed", "image", "settings", "positive_prompt", "negative_prompt", "render_width", "render_height", "workflow", "prompt_id", "backend")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    RENDER_WIDTH_FIELD_NUMBER: _ClassVar[int]
    RENDER_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PROMPT_ID_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    index: int
    seed: int
    image: Image
    settings: SamplerSettings
    positive_prompt: str
    negative_prompt: str
    render_width: int
    render_height: int
    workflow: str
    prompt_id: str
    backend: str
    def __init__(self, index: _Optional[int] = ..., seed: _Optional[int] = ..., image: _Optional[_Union[Image, _Mapping]] = ..., settings: _Optional[_Union[SamplerSettings, _Mapping]] = ..., positive_prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., render_width: _Optional[int] = ..., render_height: _Optional[int] = ..., workflow: _Optional[str] = ..., prompt_id: _Optional[str] = ..., backend: _Optional[str] = ...) -> None: ...

class Provenance(_message.Message):
    __slots__ = ("source_sha256", "instruction", "analysis", "plan", "request_id", "edit_mode", "mask_sha256")
    SOURCE_SHA256_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    EDIT_MODE_FIELD_NUMBER: _ClassVar[int]
    MASK_SHA256_FIELD_NUMBER: _ClassVar[int]
    source_sha256: str
    instruction: str
    analysis: ImageAnalysis
    plan: PromptPlan
    request_id: str
    edit_mode: EditMode
    mask_sha256: str
    def __init__(self, source_sha256: _Optional[str] = ..., instruction: _Optional[str] = ..., analysis: _Optional[_Union[ImageAnalysis, _Mapping]] = ..., plan: _Optional[_Union[PromptPlan, _Mapping]] = ..., request_id: _Optional[str] = ..., edit_mode: _Optional[_Union[EditMode, str]] = ..., mask_sha256: _Optional[str] = ...) -> None: ...
