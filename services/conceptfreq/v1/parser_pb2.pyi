from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ParseCaptionsRequest(_message.Message):
    __slots__ = ("captions", "method", "vocabulary_version")
    CAPTIONS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    captions: _containers.RepeatedScalarFieldContainer[str]
    method: str
    vocabulary_version: str
    def __init__(self, captions: _Optional[_Iterable[str]] = ..., method: _Optional[str] = ..., vocabulary_version: _Optional[str] = ...) -> None: ...

class CaptionConcepts(_message.Message):
    __slots__ = ("concept_ids", "names")
    CONCEPT_IDS_FIELD_NUMBER: _ClassVar[int]
    NAMES_FIELD_NUMBER: _ClassVar[int]
    concept_ids: _containers.RepeatedScalarFieldContainer[int]
    names: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, concept_ids: _Optional[_Iterable[int]] = ..., names: _Optional[_Iterable[str]] = ...) -> None: ...

class ParseCaptionsResponse(_message.Message):
    __slots__ = ("vocabulary_version", "results")
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    vocabulary_version: str
    results: _containers.RepeatedCompositeFieldContainer[CaptionConcepts]
    def __init__(self, vocabulary_version: _Optional[str] = ..., results: _Optional[_Iterable[_Union[CaptionConcepts, _Mapping]]] = ...) -> None: ...
