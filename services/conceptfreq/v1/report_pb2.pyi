from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class FitTrendRequest(_message.Message):
    __slots__ = ("dataset", "model", "count_kind", "prompts", "method")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    COUNT_KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    model: str
    count_kind: str
    prompts: str
    method: str
    def __init__(self, dataset: _Optional[str] = ..., model: _Optional[str] = ..., count_kind: _Optional[str] = ..., prompts: _Optional[str] = ..., method: _Optional[str] = ...) -> None: ...

class FitTrendResponse(_message.Message):
    __slots__ = ("pearson", "p_value", "n_concepts", "slope_per_decade")
    PEARSON_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    N_CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    SLOPE_PER_DECADE_FIELD_NUMBER: _ClassVar[int]
    pearson: float
    p_value: float
    n_concepts: int
    slope_per_decade: float
    def __init__(self, pearson: _Optional[float] = ..., p_value: _Optional[float] = ..., n_concepts: _Optional[int] = ..., slope_per_decade: _Optional[float] = ...) -> None: ...
