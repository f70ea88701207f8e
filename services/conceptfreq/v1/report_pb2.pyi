from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FitTrendRequest(_message.Message):
    __slots__ = ("dataset", "model", "count_kind", "prompts", "method", "rule", "downstream", "pretrained", "confidence_level", "bootstrap_resamples", "seed", "robust")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    COUNT_KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    DOWNSTREAM_FIELD_NUMBER: _ClassVar[int]
    PRETRAINED_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    BOOTSTRAP_RESAMPLES_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    ROBUST_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    model: str
    count_kind: str
    prompts: str
    method: str
    rule: str
    downstream: _containers.RepeatedScalarFieldContainer[str]
    pretrained: str
    confidence_level: float
    bootstrap_resamples: int
    seed: int
    robust: str
    def __init__(self, dataset: _Optional[str] = ..., model: _Optional[str] = ..., count_kind: _Optional[str] = ..., prompts: _Optional[str] = ..., method: _Optional[str] = ..., rule: _Optional[str] = ..., downstream: _Optional[_Iterable[str]] = ..., pretrained: _Optional[str] = ..., confidence_level: _Optional[float] = ..., bootstrap_resamples: _Optional[int] = ..., seed: _Optional[int] = ..., robust: _Optional[str] = ...) -> None: ...

class Interval(_message.Message):
    __slots__ = ("lower", "upper")
    LOWER_FIELD_NUMBER: _ClassVar[int]
    UPPER_FIELD_NUMBER: _ClassVar[int]
    lower: float
    upper: float
    def __init__(self, lower: _Optional[float] = ..., upper: _Optional[float] = ...) -> None: ...

class BinMean(_message.Message):
    __slots__ = ("edge_frequency", "mean_accuracy", "concepts", "inner")
    EDGE_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    MEAN_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    INNER_FIELD_NUMBER: _ClassVar[int]
    edge_frequency: float
    mean_accuracy: float
    concepts: int
    inner: bool
    def __init__(self, edge_frequency: _Optional[float] = ..., mean_accuracy: _Optional[float] = ..., concepts: _Optional[int] = ..., inner: bool = ...) -> None: ...

class FitTrendResponse(_message.Message):
    __slots__ = ("pearson", "p_value", "n_concepts", "slope_per_decade", "method", "slope_unit", "intercept", "slope_ci", "r2", "spearman", "frequency_multiplier_for_10_points", "frequency_multiplier_ci", "robust_slope_per_decade", "bins", "count_rule", "downstream", "details_json")
    PEARSON_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    N_CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    SLOPE_PER_DECADE_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    SLOPE_UNIT_FIELD_NUMBER: _ClassVar[int]
    INTERCEPT_FIELD_NUMBER: _ClassVar[int]
    SLOPE_CI_FIELD_NUMBER: _ClassVar[int]
    R2_FIELD_NUMBER: _ClassVar[int]
    SPEARMAN_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_MULTIPLIER_FOR_10_POINTS_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_MULTIPLIER_CI_FIELD_NUMBER: _ClassVar[int]
    ROBUST_SLOPE_PER_DECADE_FIELD_NUMBER: _ClassVar[int]
    BINS_FIELD_NUMBER: _ClassVar[int]
    COUNT_RULE_FIELD_NUMBER: _ClassVar[int]
    DOWNSTREAM_FIELD_NUMBER: _ClassVar[int]
    DETAILS_JSON_FIELD_NUMBER: _ClassVar[int]
    pearson: float
    p_value: float
    n_concepts: int
    slope_per_decade: float
    method: str
    slope_unit: str
    intercept: float
    slope_ci: Interval
    r2: float
    spearman: float
    frequency_multiplier_for_10_points: float
    frequency_multiplier_ci: Interval
    robust_slope_per_decade: float
    bins: _containers.RepeatedCompositeFieldContainer[BinMean]
    count_rule: str
    downstream: _containers.RepeatedScalarFieldContainer[str]
    details_json: str
    def __init__(self, pearson: _Optional[float] = ..., p_value: _Optional[float] = ..., n_concepts: _Optional[int] = ..., slope_per_decade: _Optional[float] = ..., method: _Optional[str] = ..., slope_unit: _Optional[str] = ..., intercept: _Optional[float] = ..., slope_ci: _Optional[_Union[Interval, _Mapping]] = ..., r2: _Optional[float] = ..., spearman: _Optional[float] = ..., frequency_multiplier_for_10_points: _Optional[float] = ..., frequency_multiplier_ci: _Optional[_Union[Interval, _Mapping]] = ..., robust_slope_per_decade: _Optional[float] = ..., bins: _Optional[_Iterable[_Union[BinMean, _Mapping]]] = ..., count_rule: _Optional[str] = ..., downstream: _Optional[_Iterable[str]] = ..., details_json: _Optional[str] = ...) -> None: ...

class PredictRequest(_message.Message):
    __slots__ = ("trend", "concepts", "frequencies")
    TREND_FIELD_NUMBER: _ClassVar[int]
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    FREQUENCIES_FIELD_NUMBER: _ClassVar[int]
    trend: FitTrendRequest
    concepts: _containers.RepeatedScalarFieldContainer[str]
    frequencies: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, trend: _Optional[_Union[FitTrendRequest, _Mapping]] = ..., concepts: _Optional[_Iterable[str]] = ..., frequencies: _Optional[_Iterable[float]] = ...) -> None: ...

class Prediction(_message.Message):
    __slots__ = ("concept", "frequency", "accuracy", "prediction_interval", "confidence_interval", "observed_accuracy")
    CONCEPT_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PREDICTION_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    OBSERVED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    concept: str
    frequency: float
    accuracy: float
    prediction_interval: Interval
    confidence_interval: Interval
    observed_accuracy: float
    def __init__(self, concept: _Optional[str] = ..., frequency: _Optional[float] = ..., accuracy: _Optional[float] = ..., prediction_interval: _Optional[_Union[Interval, _Mapping]] = ..., confidence_interval: _Optional[_Union[Interval, _Mapping]] = ..., observed_accuracy: _Optional[float] = ...) -> None: ...

class PredictResponse(_message.Message):
    __slots__ = ("method", "confidence_level", "predictions")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    CONFIDENCE_LEVEL_FIELD_NUMBER: _ClassVar[int]
    PREDICTIONS_FIELD_NUMBER: _ClassVar[int]
    method: str
    confidence_level: float
    predictions: _containers.RepeatedCompositeFieldContainer[Prediction]
    def __init__(self, method: _Optional[str] = ..., confidence_level: _Optional[float] = ..., predictions: _Optional[_Iterable[_Union[Prediction, _Mapping]]] = ...) -> None: ...

class DataBudgetRequest(_message.Message):
    __slots__ = ("trend", "concept", "target_accuracy", "current_frequency")
    TREND_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    trend: FitTrendRequest
    concept: str
    target_accuracy: float
    current_frequency: float
    def __init__(self, trend: _Optional[_Union[FitTrendRequest, _Mapping]] = ..., concept: _Optional[str] = ..., target_accuracy: _Optional[float] = ..., current_frequency: _Optional[float] = ...) -> None: ...

class DataBudgetResponse(_message.Message):
    __slots__ = ("concept", "target_accuracy", "reachable", "required_frequency", "required_frequency_interval", "current_frequency", "additional_samples", "multiplier", "concept_adjusted_frequency", "note")
    CONCEPT_FIELD_NUMBER: _ClassVar[int]
    TARGET_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    REACHABLE_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_FREQUENCY_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    ADDITIONAL_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    MULTIPLIER_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_ADJUSTED_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    concept: str
    target_accuracy: float
    reachable: bool
    required_frequency: float
    required_frequency_interval: Interval
    current_frequency: float
    additional_samples: int
    multiplier: float
    concept_adjusted_frequency: float
    note: str
    def __init__(self, concept: _Optional[str] = ..., target_accuracy: _Optional[float] = ..., reachable: bool = ..., required_frequency: _Optional[float] = ..., required_frequency_interval: _Optional[_Union[Interval, _Mapping]] = ..., current_frequency: _Optional[float] = ..., additional_samples: _Optional[int] = ..., multiplier: _Optional[float] = ..., concept_adjusted_frequency: _Optional[float] = ..., note: _Optional[str] = ...) -> None: ...

class LongTailRequest(_message.Message):
    __slots__ = ("datasets", "k", "count_kind", "rule", "normalize", "combine", "downstream", "concepts", "min_evaluations", "model", "prompts", "reference", "tie_break", "no_tie_break")
    DATASETS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    COUNT_KIND_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    NORMALIZE_FIELD_NUMBER: _ClassVar[int]
    COMBINE_FIELD_NUMBER: _ClassVar[int]
    DOWNSTREAM_FIELD_NUMBER: _ClassVar[int]
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    MIN_EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    TIE_BREAK_FIELD_NUMBER: _ClassVar[int]
    NO_TIE_BREAK_FIELD_NUMBER: _ClassVar[int]
    datasets: _containers.RepeatedScalarFieldContainer[str]
    k: int
    count_kind: str
    rule: str
    normalize: str
    combine: str
    downstream: _containers.RepeatedScalarFieldContainer[str]
    concepts: _containers.RepeatedScalarFieldContainer[str]
    min_evaluations: int
    model: str
    prompts: str
    reference: _containers.RepeatedScalarFieldContainer[str]
    tie_break: _containers.RepeatedScalarFieldContainer[str]
    no_tie_break: bool
    def __init__(self, datasets: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ..., count_kind: _Optional[str] = ..., rule: _Optional[str] = ..., normalize: _Optional[str] = ..., combine: _Optional[str] = ..., downstream: _Optional[_Iterable[str]] = ..., concepts: _Optional[_Iterable[str]] = ..., min_evaluations: _Optional[int] = ..., model: _Optional[str] = ..., prompts: _Optional[str] = ..., reference: _Optional[_Iterable[str]] = ..., tie_break: _Optional[_Iterable[str]] = ..., no_tie_break: bool = ...) -> None: ...

class DatasetCount(_message.Message):
    __slots__ = ("dataset", "count", "normalized", "predicted_accuracy")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    COUNT_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    PREDICTED_ACCURACY_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    count: int
    normalized: float
    predicted_accuracy: float
    def __init__(self, dataset: _Optional[str] = ..., count: _Optional[int] = ..., normalized: _Optional[float] = ..., predicted_accuracy: _Optional[float] = ...) -> None: ...

class LongTailConcept(_message.Message):
    __slots__ = ("name", "score", "counts")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    name: str
    score: float
    counts: _containers.RepeatedCompositeFieldContainer[DatasetCount]
    def __init__(self, name: _Optional[str] = ..., score: _Optional[float] = ..., counts: _Optional[_Iterable[_Union[DatasetCount, _Mapping]]] = ...) -> None: ...

class SpearmanPair(_message.Message):
    __slots__ = ("a", "b", "rho")
    A_FIELD_NUMBER: _ClassVar[int]
    B_FIELD_NUMBER: _ClassVar[int]
    RHO_FIELD_NUMBER: _ClassVar[int]
    a: str
    b: str
    rho: float
    def __init__(self, a: _Optional[str] = ..., b: _Optional[str] = ..., rho: _Optional[float] = ...) -> None: ...

class LongTailResponse(_message.Message):
    __slots__ = ("concepts", "candidates", "reference_overlap", "reference_size", "reference_in_candidates", "spearman", "shared_concepts")
    CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_OVERLAP_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_SIZE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_IN_CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    SPEARMAN_FIELD_NUMBER: _ClassVar[int]
    SHARED_CONCEPTS_FIELD_NUMBER: _ClassVar[int]
    concepts: _containers.RepeatedCompositeFieldContainer[LongTailConcept]
    candidates: int
    reference_overlap: int
    reference_size: int
    reference_in_candidates: int
    spearman: _containers.RepeatedCompositeFieldContainer[SpearmanPair]
    shared_concepts: int
    def __init__(self, concepts: _Optional[_Iterable[_Union[LongTailConcept, _Mapping]]] = ..., candidates: _Optional[int] = ..., reference_overlap: _Optional[int] = ..., reference_size: _Optional[int] = ..., reference_in_candidates: _Optional[int] = ..., spearman: _Optional[_Iterable[_Union[SpearmanPair, _Mapping]]] = ..., shared_concepts: _Optional[int] = ...) -> None: ...

class RenderReportRequest(_message.Message):
    __slots__ = ("dataset", "models", "count_kind", "prompts", "method", "rule", "format", "figure", "longtail_datasets", "k")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    MODELS_FIELD_NUMBER: _ClassVar[int]
    COUNT_KIND_FIELD_NUMBER: _ClassVar[int]
    PROMPTS_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    FIGURE_FIELD_NUMBER: _ClassVar[int]
    LONGTAIL_DATASETS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    models: _containers.RepeatedScalarFieldContainer[str]
    count_kind: str
    prompts: str
    method: str
    rule: str
    format: str
    figure: str
    longtail_datasets: _containers.RepeatedScalarFieldContainer[str]
    k: int
    def __init__(self, dataset: _Optional[str] = ..., models: _Optional[_Iterable[str]] = ..., count_kind: _Optional[str] = ..., prompts: _Optional[str] = ..., method: _Optional[str] = ..., rule: _Optional[str] = ..., format: _Optional[str] = ..., figure: _Optional[str] = ..., longtail_datasets: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ...) -> None: ...

class RenderReportResponse(_message.Message):
    __slots__ = ("content", "content_type", "figures")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    FIGURES_FIELD_NUMBER: _ClassVar[int]
    content: bytes
    content_type: str
    figures: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, content: _Optional[bytes] = ..., content_type: _Optional[str] = ..., figures: _Optional[_Iterable[str]] = ...) -> None: ...
