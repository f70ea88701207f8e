from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ConceptFrequency(_message.Message):
    __slots__ = ("concept_id", "name", "text", "image", "matched")
    CONCEPT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    concept_id: int
    name: str
    text: int
    image: int
    matched: int
    def __init__(self, concept_id: _Optional[int] = ..., name: _Optional[str] = ..., text: _Optional[int] = ..., image: _Optional[int] = ..., matched: _Optional[int] = ...) -> None: ...

class GetFrequenciesRequest(_message.Message):
    __slots__ = ("dataset", "concepts", "vocabulary_version", "image_rule")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_RULE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    concepts: _containers.RepeatedScalarFieldContainer[str]
    vocabulary_version: str
    image_rule: str
    def __init__(self, dataset: _Optional[str] = ..., concepts: _Optional[_Iterable[str]] = ..., vocabulary_version: _Optional[str] = ..., image_rule: _Optional[str] = ...) -> None: ...

class GetFrequenciesResponse(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "frequencies", "unknown", "samples", "image_rule")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FREQUENCIES_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_RULE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    frequencies: _containers.RepeatedCompositeFieldContainer[ConceptFrequency]
    unknown: _containers.RepeatedScalarFieldContainer[str]
    samples: int
    image_rule: str
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., frequencies: _Optional[_Iterable[_Union[ConceptFrequency, _Mapping]]] = ..., unknown: _Optional[_Iterable[str]] = ..., samples: _Optional[int] = ..., image_rule: _Optional[str] = ...) -> None: ...

class TopConceptsRequest(_message.Message):
    __slots__ = ("dataset", "k", "rarest", "kind", "vocabulary_version")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    RAREST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    k: int
    rarest: bool
    kind: str
    vocabulary_version: str
    def __init__(self, dataset: _Optional[str] = ..., k: _Optional[int] = ..., rarest: bool = ..., kind: _Optional[str] = ..., vocabulary_version: _Optional[str] = ...) -> None: ...

class TopConceptsResponse(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "frequencies")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FREQUENCIES_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    frequencies: _containers.RepeatedCompositeFieldContainer[ConceptFrequency]
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., frequencies: _Optional[_Iterable[_Union[ConceptFrequency, _Mapping]]] = ...) -> None: ...

class ListDatasetsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class DatasetSummary(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "shards_done", "shards_failed", "samples")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARDS_DONE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FAILED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    shards_done: int
    shards_failed: int
    samples: int
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., shards_done: _Optional[int] = ..., shards_failed: _Optional[int] = ..., samples: _Optional[int] = ...) -> None: ...

class ListDatasetsResponse(_message.Message):
    __slots__ = ("datasets",)
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetSummary]
    def __init__(self, datasets: _Optional[_Iterable[_Union[DatasetSummary, _Mapping]]] = ...) -> None: ...
