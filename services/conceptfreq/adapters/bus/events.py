"""Building and reading the bus payloads (pure: protobuf in, protobuf out, no I/O)."""

from __future__ import annotations

from typing import Sequence, TypeVar

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtoMessage

from conceptfreq.core.counting import DONE, FAILED, ShardResult
from conceptfreq.v1 import events_pb2 as pb

M = TypeVar("M", bound=ProtoMessage)


class PermanentError(Exception):
    """This message can never be processed: dead-letter it, mark its shard failed, move on.
    `kind` says why in one word (the DeadLetter's error_type and the ledger's reason prefix)."""

    kind = "internal"

    def __init__(self, message: str, kind: str | None = None):
        super().__init__(message)
        if kind:
            self.kind = kind


class BadEvent(PermanentError):
    kind = "bad_event"


class BadShard(PermanentError):
    kind = "bad_shard"


class UnknownVocabulary(PermanentError):
    kind = "unknown_vocabulary"


_STATES = {DONE: pb.SHARD_STATE_DONE, FAILED: pb.SHARD_STATE_FAILED}


def shard_key(dataset: str, shard_url: str) -> bytes:
    """The bus key of everything about one shard: its events stay in order on one partition."""
    return f"{dataset}/{shard_url}".encode()


def shard_event(dataset: str, shard_url: str, vocabulary_version: str, *, announced_at_ms: int, size_bytes: int | None = None,
                checksum: str = "", format: str = "", caption_column: str = "", stages: Sequence[str] = (),
                force: bool = False, captions_from: str = "") -> pb.ShardEvent:
    return pb.ShardEvent(dataset=dataset, shard_url=shard_url, vocabulary_version=vocabulary_version, format=format or "",
                         size_bytes=size_bytes or 0, checksum=checksum or "", announced_at_ms=announced_at_ms,
                         caption_column=caption_column or "", stages=list(stages), force=force,
                         captions_from="" if captions_from == "shard" else captions_from or "")


def decode(message_type: type[M], data: bytes) -> M:
    """Parse a payload; bytes that are not this message raise BadEvent (they would fail forever)."""
    message = message_type()
    try:
        message.ParseFromString(data)
    except DecodeError as error:
        raise BadEvent(f"not a {message_type.DESCRIPTOR.full_name} protobuf: {error}") from None
    return message


def read_shard_event(data: bytes) -> pb.ShardEvent:
    event = decode(pb.ShardEvent, data)
    missing = [name for name in ("dataset", "shard_url", "vocabulary_version") if not getattr(event, name)]
    if missing:
        raise BadEvent(f"ShardEvent without {', '.join(missing)}")
    return event


def read_stage_result(data: bytes) -> pb.StageResult:
    result = decode(pb.StageResult, data)
    missing = [name for name in ("dataset", "vocabulary_version", "shard_url", "stage") if not getattr(result, name)]
    if missing:
        raise BadEvent(f"StageResult without {', '.join(missing)}")
    return result


def wants_stage(event: pb.ShardEvent, stage: str) -> bool:
    return not event.stages or stage in event.stages


def stage_done(result: ShardResult, *, duration_ms: int, announced_at_ms: int) -> pb.StageResult:
    return pb.StageResult(dataset=result.dataset, vocabulary_version=result.vocabulary_version, shard_url=result.shard,
                          stage=result.stage, attempt_id=result.attempt_id, samples=result.samples,
                          skipped=result.skipped_total, skip_reasons=result.skipped, samples_with_hits=len(result.hits),
                          duration_ms=duration_ms, rule=result.rule, state=_STATES[DONE], announced_at_ms=announced_at_ms)


def stage_failed(event: pb.ShardEvent, stage: str, reason: str) -> pb.StageResult:
    return pb.StageResult(dataset=event.dataset, vocabulary_version=event.vocabulary_version, shard_url=event.shard_url,
                          stage=stage, state=_STATES[FAILED], reason=reason, announced_at_ms=event.announced_at_ms)


def dead_letter(original: bytes, *, source_topic: str, consumer_group: str, error: BaseException, failed_at_ms: int,
                dataset: str = "", shard_url: str = "") -> pb.DeadLetter:
    kind = error.kind if isinstance(error, PermanentError) else "internal"
    text = str(error) if isinstance(error, PermanentError) else f"{type(error).__name__}: {error}"
    return pb.DeadLetter(original=original, source_topic=source_topic, consumer_group=consumer_group, error=text,
                         error_type=kind, failed_at_ms=failed_at_ms, dataset=dataset, shard_url=shard_url)
