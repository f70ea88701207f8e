"""A Python client of the query service, for notebooks and training jobs:

    from conceptfreq.client import FrequencyClient

    with FrequencyClient("query.conceptfreq:50051", token_file="/var/run/token") as client:
        answer = client.frequencies("laion400m", ["tench", "great white shark"])
        answer.frequencies[0].text, answer.samples, answer.freshness.computed_at_ms
        by_dataset = client.batch(["cc3m", "cc12m"], classnames)         # up to 10,000 concepts at once

Every call has a deadline (`timeout_s`) and is retried with backoff while the server is
UNAVAILABLE (a rolling restart, a pod moving); other errors are raised at once as grpc.RpcError
with the server's status code and one-line message.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Callable, Sequence

import grpc

from conceptfreq.v1 import frequency_pb2 as pb
from conceptfreq.v1 import frequency_pb2_grpc as pb_grpc


class FrequencyClient:
    def __init__(self, address: str, *, timeout_s: float = 10.0, retries: int = 4, ca_file: str = "",
                 cert_file: str = "", key_file: str = "", token: str = "", token_file: str = ""):
        """`ca_file` turns on TLS (the server's CA); `cert_file` and `key_file` add a client
        certificate (mutual TLS); `token` or `token_file` sends `authorization: Bearer ...`."""
        self.timeout_s, self.retries = timeout_s, retries
        token = token or (Path(token_file).read_text().strip() if token_file else "")
        self._metadata = (("authorization", f"Bearer {token}"),) if token else ()
        if ca_file or cert_file:
            read = lambda path: Path(path).read_bytes() if path else None  # noqa: E731
            credentials = grpc.ssl_channel_credentials(read(ca_file), read(key_file), read(cert_file))
            self._channel = grpc.secure_channel(address, credentials)
        else:
            self._channel = grpc.insecure_channel(address)
        self._stub = pb_grpc.FrequencyServiceStub(self._channel)

    def _call(self, method: Callable, request):
        delay = 0.2
        for attempt in range(self.retries + 1):
            try:
                return method(request, timeout=self.timeout_s, metadata=self._metadata)
            except grpc.RpcError as error:
                if error.code() != grpc.StatusCode.UNAVAILABLE or attempt == self.retries:
                    raise
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    def frequencies(self, dataset: str, concepts: Sequence[str], *, vocabulary_version: str = "",
                    image_rule: str = "") -> pb.GetFrequenciesResponse:
        return self._call(self._stub.GetFrequencies, pb.GetFrequenciesRequest(
            dataset=dataset, concepts=list(concepts), vocabulary_version=vocabulary_version, image_rule=image_rule))

    def batch(self, datasets: Sequence[str], concepts: Sequence[str], *, vocabulary_version: str = "",
              image_rule: str = "") -> dict[str, pb.GetFrequenciesResponse]:
        response = self._call(self._stub.BatchGetFrequencies, pb.BatchGetFrequenciesRequest(
            datasets=list(datasets), concepts=list(concepts), vocabulary_version=vocabulary_version, image_rule=image_rule))
        return {r.dataset: r for r in response.results}

    def top(self, dataset: str, k: int = 20, *, rarest: bool = False, kind: str = "text", page_token: str = "") -> pb.TopConceptsResponse:
        return self._call(self._stub.TopConcepts, pb.TopConceptsRequest(dataset=dataset, k=k, rarest=rarest, kind=kind,
                                                                        page_token=page_token))

    def search(self, query: str, *, dataset: str = "", limit: int = 20) -> pb.SearchConceptsResponse:
        return self._call(self._stub.SearchConcepts, pb.SearchConceptsRequest(query=query, dataset=dataset, limit=limit))

    def compare(self, concept: str, datasets: Sequence[str] = ()) -> pb.CompareDatasetsResponse:
        return self._call(self._stub.CompareDatasets, pb.CompareDatasetsRequest(concept=concept, datasets=list(datasets)))

    def samples(self, dataset: str, concept: str, *, kind: str = "text", page_size: int = 100, page_token: str = "") -> pb.GetSamplesResponse:
        return self._call(self._stub.GetSamples, pb.GetSamplesRequest(dataset=dataset, concept=concept, kind=kind,
                                                                      page_size=page_size, page_token=page_token))

    def datasets(self) -> pb.ListDatasetsResponse:
        return self._call(self._stub.ListDatasets, pb.ListDatasetsRequest())

    def vocabularies(self) -> pb.ListVocabulariesResponse:
        return self._call(self._stub.ListVocabularies, pb.ListVocabulariesRequest())

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "FrequencyClient":
        return self

    def __exit__(self, *_) -> None:
        self.close()
