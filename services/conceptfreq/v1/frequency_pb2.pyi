from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class KindRank(_message.Message):
    __slots__ = ("kind", "rank", "percentile")
    KIND_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    PERCENTILE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    rank: int
    percentile: float
    def __init__(self, kind: _Optional[str] = ..., rank: _Optional[int] = ..., percentile: _Optional[float] = ...) -> None: ...

class ConceptFrequency(_message.Message):
    __slots__ = ("concept_id", "name", "text", "image", "matched", "ranks")
    CONCEPT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    RANKS_FIELD_NUMBER: _ClassVar[int]
    concept_id: int
    name: str
    text: int
    image: int
    matched: int
    ranks: _containers.RepeatedCompositeFieldContainer[KindRank]
    def __init__(self, concept_id: _Optional[int] = ..., name: _Optional[str] = ..., text: _Optional[int] = ..., image: _Optional[int] = ..., matched: _Optional[int] = ..., ranks: _Optional[_Iterable[_Union[KindRank, _Mapping]]] = ...) -> None: ...

class Freshness(_message.Message):
    __slots__ = ("snapshot", "computed_at_ms", "checked_at_ms", "max_staleness_ms")
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    COMPUTED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CHECKED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_STALENESS_MS_FIELD_NUMBER: _ClassVar[int]
    snapshot: str
    computed_at_ms: int
    checked_at_ms: int
    max_staleness_ms: int
    def __init__(self, snapshot: _Optional[str] = ..., computed_at_ms: _Optional[int] = ..., checked_at_ms: _Optional[int] = ..., max_staleness_ms: _Optional[int] = ...) -> None: ...

class KindRules(_message.Message):
    __slots__ = ("text", "image", "matched")
    TEXT_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    text: str
    image: str
    matched: str
    def __init__(self, text: _Optional[str] = ..., image: _Optional[str] = ..., matched: _Optional[str] = ...) -> None: ...

class UnknownConcept(_message.Message):
    __slots__ = ("name", "suggestions")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SUGGESTIONS_FIELD_NUMBER: _ClassVar[int]
    name: str
    suggestions: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., suggestions: _Optional[_Iterable[str]] = ...) -> None: ...

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
    __slots__ = ("dataset", "vocabulary_version", "frequencies", "unknown", "samples", "image_rule", "rules", "freshness", "unknown_concepts", "shards")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FREQUENCIES_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    IMAGE_RULE_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_FIELD_NUMBER: _ClassVar[int]
    UNKNOWN_CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    frequencies: _containers.RepeatedCompositeFieldContainer[ConceptFrequency]
    unknown: _containers.RepeatedScalarFieldContainer[str]
    samples: int
    image_rule: str
    rules: KindRules
    freshness: Freshness
    unknown_concepts: _containers.RepeatedCompositeFieldContainer[UnknownConcept]
    shards: int
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., frequencies: _Optional[_Iterable[_Union[ConceptFrequency, _Mapping]]] = ..., unknown: _Optional[_Iterable[str]] = ..., samples: _Optional[int] = ..., image_rule: _Optional[str] = ..., rules: _Optional[_Union[KindRules, _Mapping]] = ..., freshness: _Optional[_Union[Freshness, _Mapping]] = ..., unknown_concepts: _Optional[_Iterable[_Union[UnknownConcept, _Mapping]]] = ..., shards: _Optional[int] = ...) -> None: ...

class BatchGetFrequenciesRequest(_message.Message):
    __slots__ = ("datasets", "concepts", "vocabulary_version", "image_rule", "with_ranks")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_RULE_FIELD_NUMBER: _ClassVar[int]
    WITH_RANKS_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedScalarFieldContainer[str]
    concepts: _containers.RepeatedScalarFieldContainer[str]
    vocabulary_version: str
    image_rule: str
    with_ranks: bool
    def __init__(self, datasets: _Optional[_Iterable[str]] = ..., concepts: _Optional[_Iterable[str]] = ..., vocabulary_version: _Optional[str] = ..., image_rule: _Optional[str] = ..., with_ranks: bool = ...) -> None: ...

class BatchGetFrequenciesResponse(_message.Message):
    __slots__ = ("results",)
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[GetFrequenciesResponse]
    def __init__(self, results: _Optional[_Iterable[_Union[GetFrequenciesResponse, _Mapping]]] = ...) -> None: ...

class TopConceptsRequest(_message.Message):
    __slots__ = ("dataset", "k", "rarest", "kind", "vocabulary_version", "page_token")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    RAREST_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    k: int
    rarest: bool
    kind: str
    vocabulary_version: str
    page_token: str
    def __init__(self, dataset: _Optional[str] = ..., k: _Optional[int] = ..., rarest: bool = ..., kind: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., page_token: _Optional[str] = ...) -> None: ...

class TopConceptsResponse(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "frequencies", "next_page_token", "freshness", "rule")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FREQUENCIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    frequencies: _containers.RepeatedCompositeFieldContainer[ConceptFrequency]
    next_page_token: str
    freshness: Freshness
    rule: str
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., frequencies: _Optional[_Iterable[_Union[ConceptFrequency, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., freshness: _Optional[_Union[Freshness, _Mapping]] = ..., rule: _Optional[str] = ...) -> None: ...

class SearchConceptsRequest(_message.Message):
    __slots__ = ("query", "dataset", "vocabulary_version", "limit")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    query: str
    dataset: str
    vocabulary_version: str
    limit: int
    def __init__(self, query: _Optional[str] = ..., dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., limit: _Optional[int] = ...) -> None: ...

class ConceptMatch(_message.Message):
    __slots__ = ("concept_id", "name", "aliases", "matched", "how")
    CONCEPT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    ALIASES_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    HOW_FIELD_NUMBER: _ClassVar[int]
    concept_id: int
    name: str
    aliases: _containers.RepeatedScalarFieldContainer[str]
    matched: str
    how: str
    def __init__(self, concept_id: _Optional[int] = ..., name: _Optional[str] = ..., aliases: _Optional[_Iterable[str]] = ..., matched: _Optional[str] = ..., how: _Optional[str] = ...) -> None: ...

class SearchConceptsResponse(_message.Message):
    __slots__ = ("vocabulary_version", "matches")
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    MATCHES_FIELD_NUMBER: _ClassVar[int]
    vocabulary_version: str
    matches: _containers.RepeatedCompositeFieldContainer[ConceptMatch]
    def __init__(self, vocabulary_version: _Optional[str] = ..., matches: _Optional[_Iterable[_Union[ConceptMatch, _Mapping]]] = ...) -> None: ...

class CompareDatasetsRequest(_message.Message):
    __slots__ = ("concept", "datasets", "image_rule")
    CONCEPT_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    IMAGE_RULE_FIELD_NUMBER: _ClassVar[int]
    concept: str
    datasets: _containers.RepeatedScalarFieldContainer[str]
    image_rule: str
    def __init__(self, concept: _Optional[str] = ..., datasets: _Optional[_Iterable[str]] = ..., image_rule: _Optional[str] = ...) -> None: ...

class DatasetFrequency(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "frequency", "samples", "text_per_million", "image_per_million", "matched_per_million", "freshness")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    TEXT_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    IMAGE_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    MATCHED_PER_MILLION_FIELD_NUMBER: _ClassVar[int]
    FRESHNESS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    frequency: ConceptFrequency
    samples: int
    text_per_million: float
    image_per_million: float
    matched_per_million: float
    freshness: Freshness
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., frequency: _Optional[_Union[ConceptFrequency, _Mapping]] = ..., samples: _Optional[int] = ..., text_per_million: _Optional[float] = ..., image_per_million: _Optional[float] = ..., matched_per_million: _Optional[float] = ..., freshness: _Optional[_Union[Freshness, _Mapping]] = ...) -> None: ...

class CompareDatasetsResponse(_message.Message):
    __slots__ = ("concept", "datasets")
    CONCEPT_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    concept: str
    datasets: _containers.RepeatedCompositeFieldContainer[DatasetFrequency]
    def __init__(self, concept: _Optional[str] = ..., datasets: _Optional[_Iterable[_Union[DatasetFrequency, _Mapping]]] = ...) -> None: ...

class GetSamplesRequest(_message.Message):
    __slots__ = ("dataset", "concept", "kind", "vocabulary_version", "page_size", "page_token")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    concept: str
    kind: str
    vocabulary_version: str
    page_size: int
    page_token: str
    def __init__(self, dataset: _Optional[str] = ..., concept: _Optional[str] = ..., kind: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class SampleRef(_message.Message):
    __slots__ = ("shard", "key", "caption")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    CAPTION_FIELD_NUMBER: _ClassVar[int]
    shard: str
    key: str
    caption: str
    def __init__(self, shard: _Optional[str] = ..., key: _Optional[str] = ..., caption: _Optional[str] = ...) -> None: ...

class GetSamplesResponse(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "concept_id", "samples", "next_page_token")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    concept_id: int
    samples: _containers.RepeatedCompositeFieldContainer[SampleRef]
    next_page_token: str
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., concept_id: _Optional[int] = ..., samples: _Optional[_Iterable[_Union[SampleRef, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

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

class ListVocabulariesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class VocabularySummary(_message.Message):
    __slots__ = ("version", "name", "concepts", "datasets")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    version: str
    name: str
    concepts: int
    datasets: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, version: _Optional[str] = ..., name: _Optional[str] = ..., concepts: _Optional[int] = ..., datasets: _Optional[_Iterable[str]] = ...) -> None: ...

class ListVocabulariesResponse(_message.Message):
    __slots__ = ("vocabularies",)
    VOCABULARIES_FIELD_NUMBER: _ClassVar[int]
    vocabularies: _containers.RepeatedCompositeFieldContainer[VocabularySummary]
    def __init__(self, vocabularies: _Optional[_Iterable[_Union[VocabularySummary, _Mapping]]] = ...) -> None: ...
