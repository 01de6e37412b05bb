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
