from imagegen.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PlanPromptRequest(_message.Message):
    __slots__ = ("instruction", "analysis", "mode", "overrides")
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    instruction: str
    analysis: _common_pb2.ImageAnalysis
    mode: _common_pb2.GenerationMode
    overrides: _common_pb2.SamplerSettings
    def __init__(self, instruction: _Optional[str] = ..., analysis: _Optional[_Union[_common_pb2.ImageAnalysis, _Mapping]] = ..., mode: _Optional[_Union[_common_pb2.GenerationMode, str]] = ..., overrides: _Optional[_Union[_common_pb2.SamplerSettings, _Mapping]] = ...) -> None: ...

class PlanPromptResponse(_message.Message):
    __slots__ = ("plan",)
    PLAN_FIELD_NUMBER: _ClassVar[int]
    plan: _common_pb2.PromptPlan
    def __init__(self, plan: _Optional[_Union[_common_pb2.PromptPlan, _Mapping]] = ...) -> None: ...

class ReleaseModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ReleaseModelsResponse(_message.Message):
    __slots__ = ("released_models", "held_models", "unsupported_reason")
    RELEASED_MODELS_FIELD_NUMBER: _ClassVar[int]
    HELD_MODELS_FIELD_NUMBER: _ClassVar[int]
    UNSUPPORTED_REASON_FIELD_NUMBER: _ClassVar[int]
    released_models: _containers.RepeatedScalarFieldContainer[str]
    held_models: _containers.RepeatedScalarFieldContainer[str]
    unsupported_reason: str
    def __init__(self, released_models: _Optional[_Iterable[str]] = ..., held_models: _Optional[_Iterable[str]] = ..., unsupported_reason: _Optional[str] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetModelInfoResponse(_message.Message):
    __slots__ = ("model", "backend", "state", "reason")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    model: str
    backend: str
    state: str
    reason: str
    def __init__(self, model: _Optional[str] = ..., backend: _Optional[str] = ..., state: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...
