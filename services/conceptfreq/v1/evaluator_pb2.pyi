from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class StartEvaluationRequest(_message.Message):
    __slots__ = ("model", "pretrained", "data", "prompts", "vocabulary_version")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    model: str
    pretrained: str
    data: str
    prompts: str
    vocabulary_version: str
    def __init__(self, model: _Optional[str] = ..., pretrained: _Optional[str] = ..., data: _Optional[str] = ..., prompts: _Optional[str] = ..., vocabulary_version: _Optional[str] = ...) -> None: ...

class StartEvaluationResponse(_message.Message):
    __slots__ = ("evaluation_id", "shards")
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    SHARDS_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    shards: int
    def __init__(self, evaluation_id: _Optional[str] = ..., shards: _Optional[int] = ...) -> None: ...

class GetEvaluationRequest(_message.Message):
    __slots__ = ("evaluation_id",)
    EVALUATION_ID_FIELD_NUMBER: _ClassVar[int]
    evaluation_id: str
    def __init__(self, evaluation_id: _Optional[str] = ...) -> None: ...

class ClassResult(_message.Message):
    __slots__ = ("concept_id", "name", "correct_top1", "correct_top5", "total")
    CONCEPT_ID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    CORRECT_TOP1_FIELD_NUMBER: _ClassVar[int]
    CORRECT_TOP5_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    concept_id: int
    name: str
    correct_top1: int
    correct_top5: int
    total: int
    def __init__(self, concept_id: _Optional[int] = ..., name: _Optional[str] = ..., correct_top1: _Optional[int] = ..., correct_top5: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class Evaluation(_message.Message):
    __slots__ = ("evaluation_id", "model", "pretrained", "data", "prompts", "shards_done", "shards_total", "top1", "mean_per_class_recall", "classes")
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
    def __init__(self, evaluation_id: _Optional[str] = ..., model: _Optional[str] = ..., pretrained: _Optional[str] = ..., data: _Optional[str] = ..., prompts: _Optional[str] = ..., shards_done: _Optional[int] = ..., shards_total: _Optional[int] = ..., top1: _Optional[float] = ..., mean_per_class_recall: _Optional[float] = ..., classes: _Optional[_Iterable[_Union[ClassResult, _Mapping]]] = ...) -> None: ...

class ListEvaluationsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListEvaluationsResponse(_message.Message):
    __slots__ = ("evaluations",)
    EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    evaluations: _containers.RepeatedCompositeFieldContainer[Evaluation]
    def __init__(self, evaluations: _Optional[_Iterable[_Union[Evaluation, _Mapping]]] = ...) -> None: ...
