from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ShardState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SHARD_STATE_UNSPECIFIED: _ClassVar[ShardState]
    SHARD_STATE_PENDING: _ClassVar[ShardState]
    SHARD_STATE_RUNNING: _ClassVar[ShardState]
    SHARD_STATE_DONE: _ClassVar[ShardState]
    SHARD_STATE_FAILED: _ClassVar[ShardState]
SHARD_STATE_UNSPECIFIED: ShardState
SHARD_STATE_PENDING: ShardState
SHARD_STATE_RUNNING: ShardState
SHARD_STATE_DONE: ShardState
SHARD_STATE_FAILED: ShardState

class ShardEvent(_message.Message):
    __slots__ = ("dataset", "shard_url", "vocabulary_version", "format", "size_bytes", "checksum", "announced_at_ms", "caption_column", "stages", "force", "captions_from")
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SHARD_URL_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    CHECKSUM_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    CAPTION_COLUMN_FIELD_NUMBER: _ClassVar[int]
    STAGES_FIELD_NUMBER: _ClassVar[int]
    FORCE_FIELD_NUMBER: _ClassVar[int]
    CAPTIONS_FROM_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    shard_url: str
    vocabulary_version: str
    format: str
    size_bytes: int
    checksum: str
    announced_at_ms: int
    caption_column: str
    stages: _containers.RepeatedScalarFieldContainer[str]
    force: bool
    captions_from: str
    def __init__(self, dataset: _Optional[str] = ..., shard_url: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., format: _Optional[str] = ..., size_bytes: _Optional[int] = ..., checksum: _Optional[str] = ..., announced_at_ms: _Optional[int] = ..., caption_column: _Optional[str] = ..., stages: _Optional[_Iterable[str]] = ..., force: bool = ..., captions_from: _Optional[str] = ...) -> None: ...

class ShardStatus(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "shard_url", "stage", "state", "samples", "skipped", "skip_reasons", "reason", "updated_at_ms", "attempt_id")
    class SkipReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_URL_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SKIP_REASONS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    shard_url: str
    stage: str
    state: ShardState
    samples: int
    skipped: int
    skip_reasons: _containers.ScalarMap[str, int]
    reason: str
    updated_at_ms: int
    attempt_id: str
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., shard_url: _Optional[str] = ..., stage: _Optional[str] = ..., state: _Optional[_Union[ShardState, str]] = ..., samples: _Optional[int] = ..., skipped: _Optional[int] = ..., skip_reasons: _Optional[_Mapping[str, int]] = ..., reason: _Optional[str] = ..., updated_at_ms: _Optional[int] = ..., attempt_id: _Optional[str] = ...) -> None: ...

class StageResult(_message.Message):
    __slots__ = ("dataset", "vocabulary_version", "shard_url", "stage", "attempt_id", "samples", "skipped", "skip_reasons", "samples_with_hits", "duration_ms", "rule", "state", "reason", "announced_at_ms")
    class SkipReasonsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    DATASET_FIELD_NUMBER: _ClassVar[int]
    VOCABULARY_VERSION_FIELD_NUMBER: _ClassVar[int]
    SHARD_URL_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    ATTEMPT_ID_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_FIELD_NUMBER: _ClassVar[int]
    SKIPPED_FIELD_NUMBER: _ClassVar[int]
    SKIP_REASONS_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_WITH_HITS_FIELD_NUMBER: _ClassVar[int]
    DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    RULE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    ANNOUNCED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    dataset: str
    vocabulary_version: str
    shard_url: str
    stage: str
    attempt_id: str
    samples: int
    skipped: int
    skip_reasons: _containers.ScalarMap[str, int]
    samples_with_hits: int
    duration_ms: int
    rule: str
    state: ShardState
    reason: str
    announced_at_ms: int
    def __init__(self, dataset: _Optional[str] = ..., vocabulary_version: _Optional[str] = ..., shard_url: _Optional[str] = ..., stage: _Optional[str] = ..., attempt_id: _Optional[str] = ..., samples: _Optional[int] = ..., skipped: _Optional[int] = ..., skip_reasons: _Optional[_Mapping[str, int]] = ..., samples_with_hits: _Optional[int] = ..., duration_ms: _Optional[int] = ..., rule: _Optional[str] = ..., state: _Optional[_Union[ShardState, str]] = ..., reason: _Optional[str] = ..., announced_at_ms: _Optional[int] = ...) -> None: ...

class DeadLetter(_message.Message):
    __slots__ = ("original", "source_topic", "consumer_group", "error", "error_type", "failed_at_ms", "dataset", "shard_url")
    ORIGINAL_FIELD_NUMBER: _ClassVar[int]
    SOURCE_TOPIC_FIELD_NUMBER: _ClassVar[int]
    CONSUMER_GROUP_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_TYPE_FIELD_NUMBER: _ClassVar[int]
    FAILED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    DATASET_FIELD_NUMBER: _ClassVar[int]
    SHARD_URL_FIELD_NUMBER: _ClassVar[int]
    original: bytes
    source_topic: str
    consumer_group: str
    error: str
    error_type: str
    failed_at_ms: int
    dataset: str
    shard_url: str
    def __init__(self, original: _Optional[bytes] = ..., source_topic: _Optional[str] = ..., consumer_group: _Optional[str] = ..., error: _Optional[str] = ..., error_type: _Optional[str] = ..., failed_at_ms: _Optional[int] = ..., dataset: _Optional[str] = ..., shard_url: _Optional[str] = ...) -> None: ...
