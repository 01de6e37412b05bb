from imagegen.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AnalyzeImageRequest(_message.Message):
    __slots__ = ("image", "description")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    image: _common_pb2.Image
    description: str
    def __init__(self, image: _Optional[_Union[_common_pb2.Image, _Mapping]] = ..., description: _Optional[str] = ...) -> None: ...

class AnalyzeImageResponse(_message.Message):
    __slots__ = ("analysis",)
    ANALYSIS_FIELD_NUMBER: _ClassVar[int]
    analysis: _common_pb2.ImageAnalysis
    def __init__(self, analysis: _Optional[_Union[_common_pb2.ImageAnalysis, _Mapping]] = ...) -> None: ...

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
