"""ReportService: gRPC over reporter/analysis. `conceptfreq serve reporter` or `python -m conceptfreq.reporter`.

The servicer validates, delegates and converts; `grpc_errors` maps UserError to INVALID_ARGUMENT,
NotFoundError to NOT_FOUND and UnavailableError (store down) to UNAVAILABLE.
"""

from __future__ import annotations

import json
import math

from conceptfreq.adapters.grpc_server import Registration, grpc_errors
from conceptfreq.core.trends import jsonable
from conceptfreq.errors import UserError
from conceptfreq.reporter import analysis
from conceptfreq.reporter.report import build_report
from conceptfreq.reporter.source import ReportSource
from conceptfreq.v1 import report_pb2 as pb
from conceptfreq.v1 import report_pb2_grpc as pb_grpc

FORMATS = {"html": "text/html; charset=utf-8", "png": "image/png"}
MAX_K = 100_000


def _interval(pair) -> pb.Interval | None:
    if not pair or pair[0] is None or pair[1] is None:
        return None
    return pb.Interval(lower=pair[0], upper=pair[1])


def _number(value, default: float = 0.0) -> float:
    return default if value is None else float(value)


def _selection(request: pb.FitTrendRequest, default_method: str) -> tuple[analysis.Selection, analysis.FitOptions]:
    if not request.dataset:
        raise UserError("dataset is required")
    if not request.model:
        raise UserError("model is required")
    selection = analysis.Selection(request.dataset, request.model, request.count_kind or "matched",
                                   request.prompts or "ensemble", request.rule or None, list(request.downstream) or None,
                                   request.pretrained or None)
    options = analysis.FitOptions(request.method or default_method, request.confidence_level or 0.95,
                                  request.bootstrap_resamples or 1000, request.seed, request.robust or "huber")
    return selection.validate(), options.validate()


def fit_response(fit: dict) -> pb.FitTrendResponse:
    exponential = fit.get("exponential") or {}
    multiplier = exponential.get("multiplier")
    return pb.FitTrendResponse(
        pearson=_number(fit["pearson"]), p_value=_number(fit["p_value"]), n_concepts=fit["n_concepts"],
        slope_per_decade=fit["slope_per_decade"], method=fit["method"], slope_unit=fit["slope_unit"],
        intercept=fit["intercept"], slope_ci=_interval(fit.get("slope_ci")), r2=_number(fit.get("r2")),
        spearman=_number(fit.get("spearman")),
        frequency_multiplier_for_10_points=math.inf if exponential and multiplier is None else _number(multiplier),
        frequency_multiplier_ci=_interval(exponential.get("multiplier_ci")),
        robust_slope_per_decade=_number((fit.get("robust") or {}).get("slope_per_decade")),
        bins=[pb.BinMean(edge_frequency=b["edge_frequency"], mean_accuracy=_number(b["mean_accuracy"]), concepts=b["n"],
                         inner=b["inner"]) for b in fit.get("bins", [])],
        count_rule=fit["selection"]["count"], downstream=fit["selection"]["downstream"],
        details_json=json.dumps(jsonable(fit), allow_nan=False))


class ReportServicer(pb_grpc.ReportServiceServicer):
    def __init__(self, source: ReportSource):
        self.source = source  # PaperArtifacts or StoreSource

    @grpc_errors
    def FitTrend(self, request, context):
        selection, options = _selection(request, "binned")
        return fit_response(analysis.fit_trend(self.source, selection, options))

    @grpc_errors
    def Predict(self, request, context):
        selection, options = _selection(request.trend, "logit")
        result = analysis.predict(self.source, selection, options, concepts=list(request.concepts),
                                  frequencies=list(request.frequencies))
        predictions = [pb.Prediction(concept=p["concept"] or "", frequency=p["frequency"], accuracy=p["accuracy"],
                                     prediction_interval=pb.Interval(lower=p["lower"], upper=p["upper"]),
                                     confidence_interval=pb.Interval(lower=p["mean_lower"], upper=p["mean_upper"]),
                                     observed_accuracy=p["observed_accuracy"])
                       for p in result["predictions"]]
        return pb.PredictResponse(method=result["method"], confidence_level=result["confidence_level"], predictions=predictions)

    @grpc_errors
    def DataBudget(self, request, context):
        selection, options = _selection(request.trend, "logit")
        current = request.current_frequency if request.HasField("current_frequency") else None
        result = analysis.budget(self.source, selection, options, concept=request.concept or None,
                                 target=request.target_accuracy, current=current)
        adjusted = (result.get("concept_adjusted") or {}).get("required_frequency")
        interval = result.get("interval") or [None, None]
        return pb.DataBudgetResponse(
            concept=result["concept"] or "", target_accuracy=result["target_accuracy"], reachable=result["reachable"],
            required_frequency=_number(result.get("required_frequency")),
            required_frequency_interval=pb.Interval(lower=_number(interval[0]), upper=_number(interval[1])),
            current_frequency=_number(result.get("current_frequency")), additional_samples=result.get("additional_samples") or 0,
            multiplier=_number(result.get("multiplier")), concept_adjusted_frequency=adjusted, note=result.get("note", ""))

    @grpc_errors
    def LongTail(self, request, context):
        if request.k > MAX_K:
            raise UserError(f"k must be at most {MAX_K}")
        tie_break = [] if request.no_tie_break else (list(request.tie_break) or None)
        options = analysis.LongTailOptions(list(request.datasets) or None, request.k or 300, request.count_kind or "matched",
                                           request.rule or None, request.normalize or "max", request.combine or "geomean",
                                           list(request.downstream) or None, list(request.concepts) or None,
                                           request.min_evaluations, request.model or None, request.prompts or "ensemble",
                                           list(request.reference) or None, tie_break)
        result = analysis.long_tail(self.source, options)
        cross = analysis.cross_dataset(self.source, result["datasets"], options.count, options.rule, options.downstream)
        concepts = [pb.LongTailConcept(name=c["name"], score=c["score"], counts=[
            pb.DatasetCount(dataset=d, count=c["counts"][d], normalized=c["normalized"][d],
                            predicted_accuracy=c.get("predicted", {}).get(d, {}).get("accuracy"))
            for d in result["datasets"]]) for c in result["concepts"]]
        datasets, matrix = cross["datasets"], cross["spearman"]
        pairs = [pb.SpearmanPair(a=datasets[i], b=datasets[j], rho=_number(matrix[i][j], math.nan))
                 for i in range(len(datasets)) for j in range(i + 1, len(datasets))]
        overlap = result.get("reference_overlap") or {}
        return pb.LongTailResponse(concepts=concepts, candidates=result["candidates"],
                                   reference_overlap=overlap.get("overlap", 0), reference_size=overlap.get("reference_size", 0),
                                   reference_in_candidates=overlap.get("reference_in_candidates", 0), spearman=pairs,
                                   shared_concepts=cross["n_concepts"])

    @grpc_errors
    def RenderReport(self, request, context):
        fmt = request.format or "html"
        if fmt not in FORMATS:
            raise UserError(f"unknown format {fmt!r}: choose html or png")
        if not request.dataset:
            raise UserError("dataset is required")
        if request.k > MAX_K:
            raise UserError(f"k must be at most {MAX_K}")
        count, rule, prompts = request.count_kind or "matched", request.rule or None, request.prompts or "ensemble"
        long_tail = analysis.LongTailOptions(list(request.longtail_datasets) or None, request.k or 300, count, rule, prompts=prompts)
        report = build_report(self.source, request.dataset, list(request.models) or None, count, prompts,
                              analysis.FitOptions(method=request.method or "binned"), rule=rule, long_tail=long_tail)
        figures = list(report.images)
        if fmt == "html":
            content = report.html.encode("utf-8")
        else:
            name = request.figure or figures[0]
            if name not in report.images:
                raise UserError(f"unknown figure {name!r}: this report has {', '.join(figures)}")
            content = report.images[name]
        return pb.RenderReportResponse(content=content, content_type=FORMATS[fmt], figures=figures)


def registration(source: ReportSource) -> Registration:
    return Registration(pb_grpc.add_ReportServiceServicer_to_server, ReportServicer(source), "conceptfreq.v1.ReportService")
