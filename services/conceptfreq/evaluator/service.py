"""The evaluator service's two faces over one Evaluator:
- `EvaluateShardEvents`: the bus handler, an EvalShardEvent in, the shard's class counts in the store;
- `EvaluatorServicer`: gRPC EvaluatorService, which plans evaluations, publishes their shards, and
  reports progress and results.

A handled event can never count twice: the store write is idempotent per (evaluation, shard)
(results.py), and the consume loop commits only after it. Triton or the store being away is an
UnavailableError, which the loop retries without committing, so nothing is lost meanwhile.
"""

from __future__ import annotations

import logging
import math

from conceptfreq.adapters.bus import Message
from conceptfreq.adapters.bus.events import BadEvent, BadShard, PermanentError, decode
from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.adapters.shards import ShardError
from conceptfreq.core.evaluation import ClassificationSummary
from conceptfreq.core.vocabulary import Vocabulary
from conceptfreq.errors import NotFoundError, UnavailableError, UserError
from conceptfreq.evaluator.plan import FROM_VOCABULARY, EvalSpec, plan
from conceptfreq.adapters.store import LedgerProgress
from conceptfreq.evaluator.run import DEFAULT_TOPIC, STAGE, Evaluator, submit
from conceptfreq.v1 import evaluator_pb2 as pb
from conceptfreq.v1 import evaluator_pb2_grpc as pb_grpc

log = logging.getLogger(__name__)


class UnknownEvaluation(PermanentError):
    kind = "unknown_evaluation"


def read_eval_event(data: bytes) -> pb.EvalShardEvent:
    event = decode(pb.EvalShardEvent, data)
    if not event.evaluation_id or not event.shard:
        raise BadEvent("EvalShardEvent without evaluation_id or shard")
    return event


class EvaluateShardEvents:
    stage = STAGE

    def __init__(self, evaluator: Evaluator):
        self.evaluator = evaluator
        self._specs: dict[str, EvalSpec] = {}  # a plan never changes under its id (the id hashes it)

    def _spec(self, event: pb.EvalShardEvent) -> EvalSpec:
        spec = self._specs.get(event.evaluation_id) or self.evaluator.results.spec(event.evaluation_id)
        if spec is None:
            raise UnknownEvaluation(f"evaluation {event.evaluation_id!r} is not in the store (submitted to another store?)")
        self._specs[event.evaluation_id] = spec
        if event.shard not in spec.shards:
            raise BadEvent(f"shard {event.shard!r} is not part of evaluation {event.evaluation_id}")
        return spec

    def handle(self, message: Message) -> None:
        event = read_eval_event(message.value)
        spec = self._spec(event)
        try:
            self.evaluator.evaluate_shard(spec, event.shard, force=event.force)
        except ShardError as error:
            raise BadShard(str(error)) from error
        except UnavailableError:
            raise
        except UserError as error:  # an unknown model or weights that cannot be fetched: no retry fixes it
            raise PermanentError(str(error), kind="bad_evaluation") from error

    def give_up(self, message: Message, error: BaseException) -> tuple[str, str]:
        try:
            event = read_eval_event(message.value)
            spec = self._spec(event)
        except PermanentError:
            return "", ""
        self.evaluator.results.fail_shard(spec, event.shard, f"{getattr(error, 'kind', 'internal')}: {error}")
        return spec.eval_dataset, event.shard

    def flush(self) -> None:
        """Nothing to do: each shard's counts are durable before handle returns."""


def _number(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def evaluation_message(spec: EvalSpec, progress: LedgerProgress, summary: ClassificationSummary | None) -> pb.Evaluation:
    state = "running" if not progress.finished else ("failed" if progress.failed else "done")
    message = pb.Evaluation(
        evaluation_id=spec.evaluation_id, task=spec.task, model=spec.model, pretrained=spec.pretrained_label, data=spec.data,
        prompts=spec.prompts.mode, eval_dataset=spec.eval_dataset, vocabulary_version=spec.vocabulary_version,
        precision=spec.precision, shards_done=progress.done, shards_total=progress.shards, shards_failed=progress.failed,
        state=state, skipped=progress.skipped, model_ids=progress.model_ids, created_at_ms=spec.created_at_ms,
        failures=[pb.ShardFailure(shard=s, reason=r) for s, r in progress.failures()])
    if summary is not None:
        message.samples = summary.samples
        message.top1, message.top5 = _number(summary.top1), _number(summary.top5)
        message.mean_per_class_recall = _number(summary.mean_per_class_recall)
    return message


class EvaluatorServicer(pb_grpc.EvaluatorServiceServicer):
    def __init__(self, evaluator: Evaluator, bus, *, topic: str = DEFAULT_TOPIC, partitions: int = 16,
                 vocabulary: Vocabulary | None = None):
        self.evaluator = evaluator
        self.bus = bus
        self.topic = topic
        self.partitions = partitions
        self.vocabulary = vocabulary

    def _vocabulary(self, version: str) -> Vocabulary:
        if version:
            vocabulary = self.evaluator.store.load_vocabulary(version)
            if vocabulary is None:
                raise NotFoundError(f"vocabulary version {version!r} is not in the store")
            return vocabulary
        if self.vocabulary is None:
            raise UserError("this evaluator has no default vocabulary: set vocabulary_version")
        return self.vocabulary

    @grpc_errors
    def StartEvaluation(self, request, context):
        if not request.model or not request.data:
            raise UserError("model and data are required")
        vocabulary = self._vocabulary(request.vocabulary_version)
        classnames = FROM_VOCABULARY if request.classnames_from_vocabulary else (list(request.classnames) or None)
        pretrained = None if request.pretrained in ("", "random") else request.pretrained
        spec, mapping = plan(request.data, model=request.model, pretrained=pretrained, precision=request.precision or "fp32",
                             vocabulary=vocabulary, format=request.format or None, prompts=request.prompts or "ensemble",
                             extra_templates=list(request.extra_templates), template_set=request.template_set or None,
                             classnames=classnames, eval_dataset=request.eval_dataset or None,
                             allow_unmapped=request.allow_unmapped,
                             data_options={"label_column": request.label_column or None, "image_column": request.image_column or None,
                                           "split": request.split or None, "shard_size": request.shard_size or None})
        self.evaluator.store.save_vocabulary(vocabulary)
        published = submit(self.evaluator.results, spec, self.bus, self.topic, partitions=self.partitions, force=request.force)
        notes = mapping.report() if mapping else []
        return pb.StartEvaluationResponse(evaluation_id=spec.evaluation_id, shards=len(spec.shards), classes=len(spec.classnames),
                                          unmapped=mapping.unmapped if mapping else [], notes=notes, published=published)

    @grpc_errors
    def GetEvaluation(self, request, context):
        spec = self.evaluator.spec(request.evaluation_id)
        progress = self.evaluator.results.progress(spec)
        summary = self.evaluator.results.summary(spec)
        message = evaluation_message(spec, progress, summary)
        if not request.summary_only:
            message.classes.extend(pb.ClassResult(
                concept_id=c.concept_id or 0, name=c.name, correct_top1=c.correct_top1, correct_top5=c.correct_top5,
                total=c.total, accuracy=_number(c.accuracy), top5_accuracy=_number(c.top5_accuracy),
                mapped=c.concept_id is not None) for c in summary.worst_first())
        return message

    @grpc_errors
    def ListEvaluations(self, request, context):
        out = []
        for spec in self.evaluator.results.specs(request.model, request.eval_dataset):
            out.append(evaluation_message(spec, self.evaluator.results.progress(spec), self.evaluator.results.summary(spec)))
        return pb.ListEvaluationsResponse(evaluations=out)


def registration(servicer: EvaluatorServicer) -> Registration:
    return Registration(pb_grpc.add_EvaluatorServiceServicer_to_server, servicer, "conceptfreq.v1.EvaluatorService")


__all__ = ["EvaluateShardEvents", "EvaluatorServicer", "evaluation_message", "read_eval_event", "registration"]
