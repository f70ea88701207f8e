"""The generated protobuf code must match proto/: a stale checkout fails here, not in production."""

from conceptfreq import protogen


def test_generated_code_is_fresh():
    stale = protogen.stale_files()
    assert not stale, f"stale generated code {stale}: run `make proto`"


def test_every_service_is_generated():
    from conceptfreq.v1 import evaluator_pb2_grpc, frequency_pb2_grpc, parser_pb2_grpc, report_pb2_grpc, tagger_pb2_grpc

    for module, service in [(frequency_pb2_grpc, "FrequencyService"), (parser_pb2_grpc, "ParserService"),
                            (tagger_pb2_grpc, "TaggerService"), (evaluator_pb2_grpc, "EvaluatorService"),
                            (report_pb2_grpc, "ReportService")]:
        assert hasattr(module, f"add_{service}Servicer_to_server")
