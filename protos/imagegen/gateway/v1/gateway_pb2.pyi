import datetime

from google.longrunning import operations_pb2 as _operations_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from imagegen.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class JobState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATE_UNSPECIFIED: _ClassVar[JobState]
    JOB_STATE_QUEUED: _ClassVar[JobState]
    JOB_STATE_RUNNING: _ClassVar[JobState]
    JOB_STATE_SUCCEEDED: _ClassVar[JobState]
    JOB_STATE_FAILED: _ClassVar[JobState]
    JOB_STATE_CANCELLED: _ClassVar[JobState]
JOB_STATE_UNSPECIFIED: JobState
JOB_STATE_QUEUED: JobState
JOB_STATE_RUNNING: JobState
JOB_STATE_SUCCEEDED: JobState
JOB_STATE_FAILED: JobState
JOB_STATE_CANCELLED: JobState

class GenerateRequest(_message.Message):
    __slots__ = ("source_image", "instruction", "seed", "variants", "width", "height", "sampler", "loras", "controlnet", "description", "workflow", "plan", "previews", "output_format", "output_quality", "mask", "edit_mode", "prompt", "negative_prompt", "scale")
    SOURCE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    LORAS_FIELD_NUMBER: _ClassVar[int]
    CONTROLNET_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    PREVIEWS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_QUALITY_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    EDIT_MODE_FIELD_NUMBER: _ClassVar[int]
    PROMPT_FIELD_NUMBER: _ClassVar[int]
    NEGATIVE_PROMPT_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    source_image: _common_pb2.Image
    instruction: str
    seed: int
    variants: int
    width: int
    height: int
    sampler: _common_pb2.SamplerSettings
    loras: _containers.RepeatedCompositeFieldContainer[_common_pb2.LoraSpec]
    controlnet: _common_pb2.ControlNetSpec
    description: str
    workflow: str
    plan: _common_pb2.PromptPlan
    previews: bool
    output_format: _common_pb2.OutputFormat
    output_quality: int
    mask: _common_pb2.Image
    edit_mode: _common_pb2.EditMode
    prompt: str
    negative_prompt: str
    scale: float
    def __init__(self, source_image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., instruction: _Optional[str] = ..., seed: _Optional[int] = ..., variants: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., sampler: _Optional[_Union[_common_pb2.SamplerSettings, _Mapping]] = ..., loras: _Optional[_Iterable[_Union[_common_pb2.LoraSpec, _Mapping]]] = ..., controlnet: _Optional[_Union[_common_pb2.ControlNetSpec, _Mapping]] = ..., description: _Optional[str] = ..., workflow: _Optional[str] = ..., plan: _Optional[_Union[_common_pb2.PromptPlan, _Mapping]] = ..., previews: _Optional[bool] = ..., output_format: _Optional[_Union[_common_pb2.OutputFormat, str]] = ..., output_quality: _Optional[int] = ..., mask: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., edit_mode: _Optional[_Union[_common_pb2.EditMode, str]] = ..., prompt: _Optional[str] = ..., negative_prompt: _Optional[str] = ..., scale: _Optional[float] = ...) -> None: ...

class AnalysisReady(_message.Message):
    __slots__ = ("analysis", "reused")
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    analysis: _common_pb2.ImageAnalysis
    reused: bool
    def __init__(self, analysis: _Optional[_Union[_common_pb2.ImageAnalysis, _Mapping]] = ..., reused: _Optional[bool] = ...) -> None: ...

class PlanReady(_message.Message):
    __slots__ = ("plan", "reused")
    PLAN_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    plan: _common_pb2.PromptPlan
    reused: bool
    def __init__(self, plan: _Optional[_Union[_common_pb2.PromptPlan, _Mapping]] = ..., reused: _Optional[bool] = ...) -> None: ...

class StageTiming(_message.Message):
    __slots__ = ("stage", "millis")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MILLIS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    millis: float
    def __init__(self, stage: _Optional[str] = ..., millis: _Optional[float] = ...) -> None: ...

class Completed(_message.Message):
    __slots__ = ("timings", "request_id", "seed", "variants")
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    timings: _containers.RepeatedCompositeFieldContainer[StageTiming]
    request_id: str
    seed: int
    variants: int
    def __init__(self, timings: _Optional[_Iterable[_Union[StageTiming, _Mapping]]] = ..., request_id: _Optional[str] = ..., seed: _Optional[int] = ..., variants: _Optional[int] = ...) -> None: ...

class GenerateResponse(_message.Message):
    __slots__ = ("analysis", "plan", "queued", "progress", "result", "preview", "warning", "completed", "accepted", "stage", "heartbeat")
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    analysis: AnalysisReady
    plan: PlanReady
    queued: _common_pb2.RenderQueued
    progress: _common_pb2.RenderProgress
    result: _common_pb2.VariantResult
    preview: _common_pb2.Preview
    warning: _common_pb2.Warning
    completed: Completed
    accepted: Accepted
    stage: StageStarted
    heartbeat: Heartbeat
    def __init__(self, analysis: _Optional[_Union[AnalysisReady, _Mapping]] = ..., plan: _Optional[_Union[PlanReady, _Mapping]] = ..., queued: _Optional[_Union[_common_pb2.RenderQueued, _Mapping]] = ..., progress: _Optional[_Union[_common_pb2.RenderProgress, _Mapping]] = ..., result: _Optional[_Union[_common_pb2.VariantResult, _Mapping]] = ..., preview: _Optional[_Union[_common_pb2.Preview, _Mapping]] = ..., warning: _Optional[_Union[_common_pb2.Warning, _Mapping]] = ..., completed: _Optional[_Union[Completed, _Mapping]] = ..., accepted: _Optional[_Union[Accepted, _Mapping]] = ..., stage: _Optional[_Union[StageStarted, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class Accepted(_message.Message):
    __slots__ = ("request_id", "seed", "variants", "mode", "workflow")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    WORKFLOW_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    seed: int
    variants: int
    mode: _common_pb2.GenerationMode
    workflow: str
    def __init__(self, request_id: _Optional[str] = ..., seed: _Optional[int] = ..., variants: _Optional[int] = ..., mode: _Optional[_Union[_common_pb2.GenerationMode, str]] = ..., workflow: _Optional[str] = ...) -> None: ...

class StageStarted(_message.Message):
    __slots__ = ("stage", "model", "cached")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CACHED_FIELD_NUMBER: _ClassVar[int]
    stage: str
    model: str
    cached: bool
    def __init__(self, stage: _Optional[str] = ..., model: _Optional[str] = ..., cached: _Optional[bool] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("stage", "elapsed_millis")
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MILLIS_FIELD_NUMBER: _ClassVar[int]
    stage: str
    elapsed_millis: float
    def __init__(self, stage: _Optional[str] = ..., elapsed_millis: _Optional[float] = ...) -> None: ...

class PlanRequest(_message.Message):
    __slots__ = ("source_image", "instruction", "description", "sampler")
    SOURCE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    SAMPLER_FIELD_NUMBER: _ClassVar[int]
    source_image: _common_pb2.Image
    instruction: str
    description: str
    sampler: _common_pb2.SamplerSettings
    def __init__(self, source_image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., instruction: _Optional[str] = ..., description: _Optional[str] = ..., sampler: _Optional[_Union[_common_pb2.SamplerSettings, _Mapping]] = ...) -> None: ...

class PlanResponse(_message.Message):
    __slots__ = ("analysis", "plan", "warnings", "reused")
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    analysis: _common_pb2.ImageAnalysis
    plan: _common_pb2.PromptPlan
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    reused: bool
    def __init__(self, analysis: _Optional[_Union[_common_pb2.ImageAnalysis, _Mapping]] = ..., plan: _Optional[_Union[_common_pb2.PromptPlan, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ..., reused: _Optional[bool] = ...) -> None: ...

class SubmitGenerateRequest(_message.Message):
    __slots__ = ("generate", "request_id", "webhook")
    GENERATE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    WEBHOOK_FIELD_NUMBER: _ClassVar[int]
    generate: GenerateRequest
    request_id: str
    webhook: Webhook
    def __init__(self, generate: _Optional[_Union[GenerateRequest, _Mapping]] = ..., request_id: _Optional[str] = ..., webhook: _Optional[_Union[Webhook, _Mapping]] = ...) -> None: ...

class Webhook(_message.Message):
    __slots__ = ("url", "events")
    URL_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    url: str
    events: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, url: _Optional[str] = ..., events: _Optional[_Iterable[str]] = ...) -> None: ...

class VariantProgress(_message.Message):
    __slots__ = ("variant", "queue_position", "step", "total_steps", "done")
    VARIANT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_POSITION_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    TOTAL_STEPS_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    variant: int
    queue_position: int
    step: int
    total_steps: int
    done: bool
    def __init__(self, variant: _Optional[int] = ..., queue_position: _Optional[int] = ..., step: _Optional[int] = ..., total_steps: _Optional[int] = ..., done: _Optional[bool] = ...) -> None: ...

class SubmitGenerateMetadata(_message.Message):
    __slots__ = ("state", "stage", "variants", "warnings", "events", "seed", "request_id", "attempts", "create_time", "update_time", "end_time")
    STATE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    VARIANTS_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    state: JobState
    stage: str
    variants: _containers.RepeatedCompositeFieldContainer[VariantProgress]
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    events: int
    seed: int
    request_id: str
    attempts: int
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, state: _Optional[_Union[JobState, str]] = ..., stage: _Optional[str] = ..., variants: _Optional[_Iterable[_Union[VariantProgress, _Mapping]]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ..., events: _Optional[int] = ..., seed: _Optional[int] = ..., request_id: _Optional[str] = ..., attempts: _Optional[int] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubmitGenerateResponse(_message.Message):
    __slots__ = ("results", "analysis", "plan", "warnings", "completed")
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    PLAN_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[_common_pb2.VariantResult]
    analysis: _common_pb2.ImageAnalysis
    plan: _common_pb2.PromptPlan
    warnings: _containers.RepeatedCompositeFieldContainer[_common_pb2.Warning]
    completed: Completed
    def __init__(self, results: _Optional[_Iterable[_Union[_common_pb2.VariantResult, _Mapping]]] = ..., analysis: _Optional[_Union[_common_pb2.ImageAnalysis, _Mapping]] = ..., plan: _Optional[_Union[_common_pb2.PromptPlan, _Mapping]] = ..., warnings: _Optional[_Iterable[_Union[_common_pb2.Warning, _Mapping]]] = ..., completed: _Optional[_Union[Completed, _Mapping]] = ...) -> None: ...

class WatchOperationRequest(_message.Message):
    __slots__ = ("name", "after_event")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AFTER_EVENT_FIELD_NUMBER: _ClassVar[int]
    name: str
    after_event: int
    def __init__(self, name: _Optional[str] = ..., after_event: _Optional[int] = ...) -> None: ...

class GetCapabilitiesRequest(_message.Message):
    __slots__ = ("refresh",)
    REFRESH_FIELD_NUMBER: _ClassVar[int]
    refresh: bool
    def __init__(self, refresh: _Optional[bool] = ...) -> None: ...

class GetCapabilitiesResponse(_message.Message):
    __slots__ = ("workflows", "loras", "controlnets", "controlnet_models", "samplers", "schedulers", "render_backends", "limits", "language_models")
    WORKFLOWS_FIELD_NUMBER: _ClassVar[int]
    LORAS_FIELD_NUMBER: _ClassVar[int]
    CONTROLNETS_FIELD_NUMBER: _ClassVar[int]
    CONTROLNET_MODELS_FIELD_NUMBER: _ClassVar[int]
    SAMPLERS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULERS_FIELD_NUMBER: _ClassVar[int]
    RENDER_BACKENDS_FIELD_NUMBER: _ClassVar[int]
    LIMITS_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_MODELS_FIELD_NUMBER: _ClassVar[int]
    workflows: _containers.RepeatedCompositeFieldContainer[WorkflowCapability]
    loras: _containers.RepeatedScalarFieldContainer[str]
    controlnets: _containers.RepeatedCompositeFieldContainer[ControlNetCapability]
    controlnet_models: _containers.RepeatedScalarFieldContainer[str]
    samplers: _containers.RepeatedScalarFieldContainer[str]
    schedulers: _containers.RepeatedScalarFieldContainer[str]
    render_backends: _containers.RepeatedCompositeFieldContainer[RenderBackendCapability]
    limits: RequestLimits
    language_models: _containers.RepeatedCompositeFieldContainer[LanguageModel]
    def __init__(self, workflows: _Optional[_Iterable[_Union[WorkflowCapability, _Mapping]]] = ..., loras: _Optional[_Iterable[str]] = ..., controlnets: _Optional[_Iterable[_Union[ControlNetCapability, _Mapping]]] = ..., controlnet_models: _Optional[_Iterable[str]] = ..., samplers: _Optional[_Iterable[str]] = ..., schedulers: _Optional[_Iterable[str]] = ..., render_backends: _Optional[_Iterable[_Union[RenderBackendCapability, _Mapping]]] = ..., limits: _Optional[_Union[RequestLimits, _Mapping]] = ..., language_models: _Optional[_Iterable[_Union[LanguageModel, _Mapping]]] = ...) -> None: ...

class WorkflowCapability(_message.Message):
    __slots__ = ("name", "mode", "description", "parameters", "output_size", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    PARAMETERS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_SIZE_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    mode: _common_pb2.GenerationMode
    description: str
    parameters: _containers.RepeatedScalarFieldContainer[str]
    output_size: str
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., mode: _Optional[_Union[_common_pb2.GenerationMode, str]] = ..., description: _Optional[str] = ..., parameters: _Optional[_Iterable[str]] = ..., output_size: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ControlNetCapability(_message.Message):
    __slots__ = ("type", "default_model", "available")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    type: _common_pb2.ControlType
    default_model: str
    available: bool
    def __init__(self, type: _Optional[_Union[_common_pb2.ControlType, str]] = ..., default_model: _Optional[str] = ..., available: _Optional[bool] = ...) -> None: ...

class RenderBackendCapability(_message.Message):
    __slots__ = ("name", "reachable", "error", "edit_modes")
    NAME_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    EDIT_MODES_FIELD_NUMBER: _ClassVar[int]
    name: str
    reachable: bool
    error: str
    edit_modes: _containers.RepeatedScalarFieldContainer[_common_pb2.EditMode]
    def __init__(self, name: _Optional[str] = ..., reachable: _Optional[bool] = ..., error: _Optional[str] = ..., edit_modes: _Optional[_Iterable[_Union[_common_pb2.EditMode, str]]] = ...) -> None: ...

class RequestLimits(_message.Message):
    __slots__ = ("max_image_side", "max_image_bytes", "max_megapixels", "txt2img_min_side", "txt2img_max_side", "max_variants", "max_loras", "max_instruction_chars")
    MAX_IMAGE_SIDE_FIELD_NUMBER: _ClassVar[int]
    MAX_IMAGE_BYTES_FIELD_NUMBER: _ClassVar[int]
    MAX_MEGAPIXELS_FIELD_NUMBER: _ClassVar[int]
    TXT2IMG_MIN_SIDE_FIELD_NUMBER: _ClassVar[int]
    TXT2IMG_MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    MAX_VARIANTS_FIELD_NUMBER: _ClassVar[int]
    MAX_LORAS_FIELD_NUMBER: _ClassVar[int]
    MAX_INSTRUCTION_CHARS_FIELD_NUMBER: _ClassVar[int]
    max_image_side: int
    max_image_bytes: int
    max_megapixels: float
    txt2img_min_side: int
    txt2img_max_side: int
    max_variants: int
    max_loras: int
    max_instruction_chars: int
    def __init__(self, max_image_side: _Optional[int] = ..., max_image_bytes: _Optional[int] = ..., max_megapixels: _Optional[float] = ..., txt2img_min_side: _Optional[int] = ..., txt2img_max_side: _Optional[int] = ..., max_variants: _Optional[int] = ..., max_loras: _Optional[int] = ..., max_instruction_chars: _Optional[int] = ...) -> None: ...

class LanguageModel(_message.Message):
    __slots__ = ("service", "model", "backend", "state", "reason")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    service: str
    model: str
    backend: str
    state: str
    reason: str
    def __init__(self, service: _Optional[str] = ..., model: _Optional[str] = ..., backend: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
