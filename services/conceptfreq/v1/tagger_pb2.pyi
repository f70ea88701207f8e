from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TagImagesRequest(_message.Message):
    __slots__ = ("images", "top_k", "vocabulary_version", "rule")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    top_k: int
    vocabulary_version: str
    rule: str
    def __init__(self, images: _Optional[_Iterable[bytes]] = ..., top_k: _Optional[int] = ..., vocabulary_version: _Optional[str] = ..., rule: _Optional[str] = ...) -> None: ...

class ConceptScore(_message.Message):
    __slots__ = ("concept_id", "name", "score", "probability")
    CONCEPT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    concept_id: int
    name: str
    score: float
    probability: float
    def __init__(self, concept_id: _Optional[int] = ..., name: _Optional[str] = ..., score: _Optional[float] = ..., probability: _Optional[float] = ...) -> None: ...

class ImageTags(_message.Message):
    __slots__ = ("top", "hits", "error", "note")
    TOP_FIELD_NUMBER: _ClassVar[int]
    HITS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    top: _containers.RepeatedCompositeFieldContainer[ConceptScore]
    hits: _containers.RepeatedScalarFieldContainer[int]
    error: str
    note: str
    def __init__(self, top: _Optional[_Iterable[_Union[ConceptScore, _Mapping]]] = ..., hits: _Optional[_Iterable[int]] = ..., error: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class TagImagesResponse(_message.Message):
    __slots__ = ("vocabulary_version", "model", "rule", "results")
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    vocabulary_version: str
    model: str
    rule: str
    results: _containers.RepeatedCompositeFieldContainer[ImageTags]
    def __init__(self, vocabulary_version: _Optional[str] = ..., model: _Optional[str] = ..., rule: _Optional[str] = ..., results: _Optional[_Iterable[_Union[ImageTags, _Mapping]]] = ...) -> None: ...
