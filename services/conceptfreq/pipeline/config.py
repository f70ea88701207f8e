"""Typed configuration of the pipeline's parts, built once from the command line or the
environment (commands/options.py `config_from`), never an argparse Namespace passed down."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from conceptfreq.adapters.bus import DEFAULT_BUS_URL, Topics
from conceptfreq.adapters.images import DEFAULT_MAX_PIXELS
from conceptfreq.core.tagging import DEFAULT_RULE, DEFAULT_TOP_K

if TYPE_CHECKING:
    from conceptfreq.adapters.grpc_security import ServerSecurity


@dataclass(frozen=True)
class ModelConfig:
    """Which open_clip model embeds images and texts, and where it runs (adapters/inference)."""

    inference: str = "torch://"
    model: str = "ViT-B-32"
    pretrained: str | None = None   # an open_clip tag, a checkpoint file, or 'random'/None: seeded random weights
    precision: str = "fp32"

    @property
    def weights(self) -> str | None:
        value = (self.pretrained or "").strip()
        return None if value in ("", "random") else value


@dataclass(frozen=True)
class TaggingConfig(ModelConfig):
    """The image stage: the model, the rule recorded for new datasets, prompts and decoding."""

    vocab: str | None = None              # serves gRPC requests without a vocabulary and names in a thresholds file
    rule: str = DEFAULT_RULE
    thresholds: str | None = None         # per-concept thresholds file instead of `rule`
    threshold_score: str = "cosine"
    top_k: int = DEFAULT_TOP_K
    prompts: str = "ensemble"
    template: tuple[str, ...] = ()
    batch_size: int | None = None
    decode_workers: int = 4
    decode_executor: str = "thread"
    max_pixels: int = DEFAULT_MAX_PIXELS
    no_draft: bool = False
    image_decoder: str = "auto"           # auto | pil | torchvision (tagger/stage.py IMAGE_DECODERS)
    cache_dir: str | None = None


@dataclass(frozen=True)
class RunConfig:
    """How an announced run is carried out: on the in-process bus, by this process's own threads;
    on Kafka, by the cluster's services, which `wait` follows."""

    parsers: int = 1
    wait: bool = False
    timeout_s: float = 0


# --- the long-lived services ------------------------------------------------------------------------

_TOPICS = Topics()
EVAL_SHARDS_TOPIC = "eval-shards"


@dataclass(frozen=True)
class ServerConfig:
    """What every service has: its store, its gRPC address and its /metrics port."""

    store: str | None = None        # a store URL; None: $CONCEPTFREQ_STORE or the embedded default
    host: str = "0.0.0.0"
    port: int = 0
    metrics_port: int = 9100
    tls_cert: str = ""              # TLS, mutual TLS (tls_client_ca) and a bearer token: adapters/grpc_security.py
    tls_key: str = ""
    tls_client_ca: str = ""
    auth_token_file: str = ""
    health_port: int = 0

    @property
    def store_url(self) -> str:
        from conceptfreq.adapters.store import default_store_url  # the store client only where a store is opened

        return self.store or default_store_url()

    @property
    def security(self) -> ServerSecurity:
        from conceptfreq.adapters.grpc_security import ServerSecurity  # grpc only in the services that serve

        return ServerSecurity(self.tls_cert, self.tls_key, self.tls_client_ca, self.auth_token_file, self.health_port)


@dataclass(frozen=True)
class BusConfig:
    """Where a bus worker consumes and publishes."""

    bus: str = DEFAULT_BUS_URL
    topic_shards: str = _TOPICS.shards
    topic_results: str = _TOPICS.results
    topic_dead_letter: str = _TOPICS.dead_letter
    partitions: int = _TOPICS.partitions
    group: str = ""

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_shards, self.topic_results, self.topic_dead_letter, self.partitions)


@dataclass(frozen=True)
class QueryServiceConfig(ServerConfig):
    max_staleness_s: float = 1.0         # the in-memory totals are checked for a newer snapshot this often


@dataclass(frozen=True)
class ReporterServiceConfig(ServerConfig):
    paper_artifacts: str | None = None   # serve the paper's artifacts instead of the store


@dataclass(frozen=True)
class ParserServiceConfig(ServerConfig, BusConfig):
    vocab: str | None = None             # for gRPC requests that name no vocabulary
    method: str = "phrase"


@dataclass(frozen=True)
class CounterServiceConfig(ServerConfig, BusConfig):
    batch_seconds: float = 1.0


@dataclass(frozen=True)
class TaggerServiceConfig(ServerConfig, BusConfig, TaggingConfig):
    pass


@dataclass(frozen=True)
class EvaluatorServiceConfig(ServerConfig, BusConfig):
    topic_eval_shards: str = EVAL_SHARDS_TOPIC
    vocab: str | None = None
    inference: str = "torch://"
    batch_size: int | None = None
    workers: int = 4
    cache_dir: str | None = None
