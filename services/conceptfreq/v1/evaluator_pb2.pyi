from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartEvaluationRequest(_message.Message):
    __slots__ = ("model", "pretrained", "data", "prompts", "vocabulary_version", "precision", "eval_dataset", "format", "classnames", "classnames_from_vocabulary", "extra_templates", "template_set", "label_column", "image_column", "split", "shard_size", "allow_unmapped", "force")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATASET_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CLASSNAMES_FIELD_NUMBER: _ClassVar[int]
    CLASSNAMES_FROM_VOCABULARY_FIELD_NUMBER: _ClassVar[int]
    EXTRA_TEMPLATES_FIELD_NUMBER: _ClassVar[int]
    TEMPLATE_SET_FIELD_NUMBER: _ClassVar[int]
    LABEL_COLUMN_FIELD_NUMBER: _ClassVar[int]
    IMAGE_COLUMN_FIELD_NUMBER: _ClassVar[int]
    SPLIT_FIELD_NUMBER: _ClassVar[int]
    SHARD_SIZE_FIELD_NUMBER: _ClassVar[int]
    ALLOW_UNMAPPED_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    model: str
    pretrained: str
    data: str
    prompts: str
    vocabulary_version: str
    precision: str
    eval_dataset: str
    format: str
    classnames: _containers.RepeatedScalarFieldContainer[str]
    classnames_from_vocabulary: bool
    extra_templates: _containers.RepeatedScalarFieldContainer[str]
    template_set: str
    label_column: str
    image_column: str
    split: str
    shard_size: int
    allow_unmapped: bool
    force: bool
    def __init__(self, model: _Optional[str] = ..., pretrained: _Optional[str] = ..., data: _Optional[str] = ..., prompts: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., precision: _Optional[str] = ..., eval_dataset: _Optional[str] = ..., format: _Optional[str] = ..., classnames: _Optional[_Iterable[str]] = ..., classnames_from_vocabulary: bool = ..., extra_templates: _Optional[_Iterable[str]] = ..., template_set: _Optional[str] = ..., label_column: _Optional[str] = ..., image_column: _Optional[str] = ..., split: _Optional[str] = ..., shard_size: _Optional[int] = ..., allow_unmapped: bool = ..., force: bool = ...) -> None: ...

class StartEvaluationResponse(_message.Message):
    __slots__ = ("evaluation_id", "shards", "classes", "unmapped", "notes", "published")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    UNMAPPED_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    PUBLISHED_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    shards: int
    classes: int
    unmapped: _containers.RepeatedScalarFieldContainer[str]
    notes: _containers.RepeatedScalarFieldContainer[str]
    published: int
    def __init__(self, evaluation_id: _Optional[str] = ..., shards: _Optional[int] = ..., classes: _Optional[int] = ..., unmapped: _Optional[_Iterable[str]] = ..., notes: _Optional[_Iterable[str]] = ..., published: _Optional[int] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id", "summary_only")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_ONLY_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    summary_only: bool
    def __init__(self, evaluation_id: _Optional[str] = ..., summary_only: bool = ...) -> None: ...

class ClassResult(_message.Message):
    __slots__ = ("concept_id", "name", "correct_top1", "correct_top5", "total", "accuracy", "top5_accuracy", "mapped")
    CONCEPT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CORRECT_TOP1_FIELD_NUMBER: _ClassVar[int]
    CORRECT_TOP5_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    TOP5_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    MAPPED_FIELD_NUMBER: _ClassVar[int]
    concept_id: int
    name: str
    correct_top1: int
    correct_top5: int
    total: int
    accuracy: float
    top5_accuracy: float
    mapped: bool
    def __init__(self, concept_id: _Optional[int] = ..., name: _Optional[str] = ..., correct_top1: _Optional[int] = ..., correct_top5: _Optional[int] = ..., total: _Optional[int] = ..., accuracy: _Optional[float] = ..., top5_accuracy: _Optional[float] = ..., mapped: bool = ...) -> None: ...

class ShardFailure(_message.Message):
    __slots__ = ("shard", "reason")
    SHARD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    shard: str
    reason: str
    def __init__(self, shard: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("evaluation_id", "model", "pretrained", "data", "prompts", "shards_done", "shards_total", "top1", "mean_per_class_recall", "classes", "state", "shards_failed", "samples", "skipped", "top5", "eval_dataset", "vocabulary_version", "precision", "model_ids", "created_at_ms", "failures", "task")
    class SkippedEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    SHARDS_DONE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    MEAN_PER_CLASS_RECALL_FIELD_NUMBER: _ClassVar[int]
    CLASSES_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FAILED_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    TOP5_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    MODEL_IDS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FAILURES_FIELD_NUMBER: _ClassVar[int]
    TASK_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    model: str
    pretrained: str
    data: str
    prompts: str
    shards_done: int
    shards_total: int
    top1: float
    mean_per_class_recall: float
    classes: _containers.RepeatedCompositeFieldContainer[ClassResult]
    state: str
    shards_failed: int
    samples: int
    skipped: _containers.ScalarMap[str, int]
    top5: float
    eval_dataset: str
    vocabulary_version: str
    precision: str
    model_ids: _containers.RepeatedScalarFieldContainer[str]
    created_at_ms: int
    failures: _containers.RepeatedCompositeFieldContainer[ShardFailure]
    task: str
    def __init__(self, evaluation_id: _Optional[str] = ..., model: _Optional[str] = ..., pretrained: _Optional[str] = ..., data: _Optional[str] = ..., prompts: _Optional[str] = ..., shards_done: _Optional[int] = ..., shards_total: _Optional[int] = ..., top1: _Optional[float] = ..., mean_per_class_recall: _Optional[float] = ..., classes: _Optional[_Iterable[_Union[ClassResult, _Mapping]]] = ..., state: _Optional[str] = ..., shards_failed: _Optional[int] = ..., samples: _Optional[int] = ..., skipped: _Optional[_Mapping[str, int]] = ..., top5: _Optional[float] = ..., eval_dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., precision: _Optional[str] = ..., model_ids: _Optional[_Iterable[str]] = ..., created_at_ms: _Optional[int] = ..., failures: _Optional[_Iterable[_Union[ShardFailure, _Mapping]]] = ..., task: _Optional[str] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ("model", "eval_dataset")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATASET_FIELD_NUMBER: _ClassVar[int]
    model: str
    eval_dataset: str
    def __init__(self, model: _Optional[str] = ..., eval_dataset: _Optional[str] = ...) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ...) -> None: ...

class EvalShardEvent(_message.Message):
    __slots__ = ("evaluation_id", "shard", "model", "pretrained", "precision", "eval_dataset", "data", "prompts", "vocabulary_version", "announced_at_ms", "force")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    SHARD_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    EVAL_DATASET_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    shard: str
    model: str
    pretrained: str
    precision: str
    eval_dataset: str
    data: str
    prompts: str
    vocabulary_version: str
    announced_at_ms: int
    force: bool
    def __init__(self, evaluation_id: _Optional[str] = ..., shard: _Optional[str] = ..., model: _Optional[str] = ..., pretrained: _Optional[str] = ..., precision: _Optional[str] = ..., eval_dataset: _Optional[str] = ..., data: _Optional[str] = ..., prompts: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., announced_at_ms: _Optional[int] = ..., force: bool = ...) -> None: ...
