"""Flags shared by several commands and services. Every flag has an environment variable, so the
same image is configured by flags on a laptop and by env in a Helm chart."""

from __future__ import annotations

import argparse
import dataclasses
import os
from typing import TYPE_CHECKING, TypeVar

# The bus, image, tagging and pipeline modules are imported by the functions that add their flags:
# `conceptfreq match` (add_vocab only) starts 0.1 s sooner without them.
if TYPE_CHECKING:
    from conceptfreq.adapters.bus import Topics


def env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"CONCEPTFREQ_{name}", default)


def add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", default=None, metavar="URL",
                        help="count store: clickhouse://host:9000/db or chdb:///dir "
                             "(env CONCEPTFREQ_STORE; default: embedded chDB under ~/.local/share/conceptfreq)")


def store_url(args: argparse.Namespace) -> str:
    # Imported here: the store client costs 0.3 s of start-up that commands without a store (match) need not pay.
    from conceptfreq.adapters.store import default_store_url

    return args.store or default_store_url()


def add_vocab(parser: argparse.ArgumentParser, help_suffix: str = "") -> None:
    parser.add_argument("--vocab", default=env("VOCAB"), metavar="FILE",
                        help="vocabulary file (.txt name|alias lines, .json, .csv), or `paper` for the paper's full concept set "
                             "(env CONCEPTFREQ_VOCAB; default: the packaged downstream-class vocabulary)" + help_suffix)


def add_dataset(parser: argparse.ArgumentParser, required: bool = True) -> None:
    parser.add_argument("--dataset", required=required, metavar="NAME", help="dataset name, e.g. cc3m")


def add_server(parser: argparse.ArgumentParser, default_port: int) -> None:
    parser.add_argument("--host", default=env("GRPC_HOST", "0.0.0.0"), help="gRPC listen address (env CONCEPTFREQ_GRPC_HOST)")
    parser.add_argument("--port", type=int, default=int(env("GRPC_PORT", str(default_port))),
                        help=f"gRPC port (env CONCEPTFREQ_GRPC_PORT; default {default_port})")
    parser.add_argument("--metrics-port", type=int, default=int(env("METRICS_PORT", "9100")),
                        help="Prometheus /metrics port, 0 to disable (env CONCEPTFREQ_METRICS_PORT; default 9100)")
    add_security(parser)


def add_security(parser: argparse.ArgumentParser) -> None:
    """The flags of the gRPC server's TLS, mutual TLS and token (adapters/grpc_security.py)."""
    parser.add_argument("--tls-cert", default=env("TLS_CERT", ""), metavar="FILE",
                        help="serve gRPC over TLS with this PEM certificate (env CONCEPTFREQ_TLS_CERT)")
    parser.add_argument("--tls-key", default=env("TLS_KEY", ""), metavar="FILE",
                        help="the certificate's PEM private key (env CONCEPTFREQ_TLS_KEY)")
    parser.add_argument("--tls-client-ca", default=env("TLS_CLIENT_CA", ""), metavar="FILE",
                        help="mutual TLS: accept only clients with a certificate from this CA (env CONCEPTFREQ_TLS_CLIENT_CA)")
    parser.add_argument("--auth-token-file", default=env("AUTH_TOKEN_FILE", ""), metavar="FILE",
                        help="require `authorization: Bearer <token>` with the token in this file; health checks stay open "
                             "(env CONCEPTFREQ_AUTH_TOKEN_FILE)")
    parser.add_argument("--health-port", type=int, default=int(env("HEALTH_PORT", "0")), metavar="PORT",
                        help="with TLS: serve plaintext gRPC health checks alone on this port, for probes that "
                             "cannot speak TLS (env CONCEPTFREQ_HEALTH_PORT; 0: none)")


def add_bus(parser: argparse.ArgumentParser) -> None:
    from conceptfreq.adapters.bus import DEFAULT_BUS_URL, Topics

    defaults = Topics()
    parser.add_argument("--bus", default=env("BUS", DEFAULT_BUS_URL), metavar="URL",
                        help="event bus: kafka://host:9092[,host:9092][?session_timeout_ms=...] or inproc:// "
                             f"(env CONCEPTFREQ_BUS; default {DEFAULT_BUS_URL}, in-process)")
    parser.add_argument("--topic-shards", default=env("TOPIC_SHARDS", defaults.shards), metavar="NAME",
                        help=f"topic of ShardEvents (env CONCEPTFREQ_TOPIC_SHARDS; default {defaults.shards})")
    parser.add_argument("--topic-results", default=env("TOPIC_RESULTS", defaults.results), metavar="NAME",
                        help=f"topic of StageResults (env CONCEPTFREQ_TOPIC_RESULTS; default {defaults.results})")
    parser.add_argument("--topic-dead-letter", default=env("TOPIC_DEAD_LETTER", defaults.dead_letter), metavar="NAME",
                        help=f"topic of DeadLetters (env CONCEPTFREQ_TOPIC_DEAD_LETTER; default {defaults.dead_letter})")
    parser.add_argument("--partitions", type=int, default=int(env("PARTITIONS", str(defaults.partitions))), metavar="N",
                        help="partitions of topics this command creates; caps the consumers sharing a topic "
                             f"(env CONCEPTFREQ_PARTITIONS; default {defaults.partitions})")


def topics(args: argparse.Namespace) -> Topics:
    from conceptfreq.adapters.bus import Topics

    return Topics(args.topic_shards, args.topic_results, args.topic_dead_letter, args.partitions)


def add_inference(parser: argparse.ArgumentParser, model_flags: bool = True) -> None:
    """--inference URL, and (model_flags) --model, --pretrained, --precision: which open_clip model
    embeds images and texts, and where it runs (see conceptfreq.adapters.inference)."""
    from conceptfreq.adapters.inference import DEFAULT_INFERENCE_URL

    parser.add_argument("--inference", default=env("INFERENCE", DEFAULT_INFERENCE_URL), metavar="URL",
                        help="inference backend: torch://[cpu|cuda|cuda:N] (in process) or triton://host:8001 "
                             f"(env CONCEPTFREQ_INFERENCE; default {DEFAULT_INFERENCE_URL})")
    if model_flags:
        parser.add_argument("--model", default=env("MODEL", "ViT-B-32"), metavar="NAME",
                            help="open_clip model, e.g. ViT-B-32, RN50, ViT-L-14 (env CONCEPTFREQ_MODEL; default ViT-B-32)")
        parser.add_argument("--pretrained", default=env("PRETRAINED"), metavar="TAG|FILE",
                            help="weights: an open_clip tag (e.g. laion400m_e32), a checkpoint file, or 'random' for "
                                 "seeded random weights (env CONCEPTFREQ_PRETRAINED)")
        parser.add_argument("--precision", default=env("PRECISION", "fp32"), choices=["fp32", "fp16", "bf16"],
                            help="compute precision (env CONCEPTFREQ_PRECISION; default fp32)")


def pretrained(args: argparse.Namespace) -> str | None:
    """--pretrained with 'random' (or nothing) meaning seeded random weights."""
    value = (getattr(args, "pretrained", None) or "").strip()
    return None if value in ("", "random") else value


def add_tagging(parser: argparse.ArgumentParser) -> None:
    """What build_tagger reads (pipeline/config.py TaggingConfig): the model, where it runs, the rule, prompts and decoding. Shared with
    embedded `ingest`, which runs this same tagger in process, so both take the same flags and env."""
    from conceptfreq.adapters.images import DEFAULT_MAX_PIXELS, EXECUTORS, IMAGE_DECODERS
    from conceptfreq.core.prompts import PROMPT_MODES
    from conceptfreq.core.tagging import DEFAULT_RULE, DEFAULT_TOP_K, SCORE_KINDS

    add_inference(parser)
    parser.add_argument("--rule", default=env("TAGGER_RULE", DEFAULT_RULE), metavar="RULE",
                        help="tagging rule recorded for datasets that have none yet: softmax:p=P | cosine:t=T | topk:k=K "
                             f"(env CONCEPTFREQ_TAGGER_RULE; default {DEFAULT_RULE}); `retag` changes it later")
    parser.add_argument("--thresholds", default=env("TAGGER_THRESHOLDS"), metavar="FILE",
                        help="per-concept thresholds instead of --rule (JSON or concept,threshold lines; env CONCEPTFREQ_TAGGER_THRESHOLDS)")
    parser.add_argument("--threshold-score", default=env("TAGGER_THRESHOLD_SCORE", "cosine"), choices=SCORE_KINDS,
                        help="what --thresholds apply to (env CONCEPTFREQ_TAGGER_THRESHOLD_SCORE; default cosine)")
    parser.add_argument("--top-k", type=int, default=int(env("TAGGER_TOP_K", str(DEFAULT_TOP_K))),
                        help=f"concept scores stored per image, for re-thresholding (env CONCEPTFREQ_TAGGER_TOP_K; default {DEFAULT_TOP_K})")
    parser.add_argument("--prompts", default=env("TAGGER_PROMPTS", "ensemble"), choices=sorted(PROMPT_MODES),
                        help="concept prompts (env CONCEPTFREQ_TAGGER_PROMPTS; default ensemble: open_clip's 80 templates)")
    parser.add_argument("--template", action="append", default=[], metavar="TEMPLATE",
                        help="extra prompt template with {} for the concept name (repeatable; added to the ensemble)")
    parser.add_argument("--batch-size", type=int, default=int(env("TAGGER_BATCH_SIZE", "0")) or None,
                        help="images per inference call (env CONCEPTFREQ_TAGGER_BATCH_SIZE; default: the backend's)")
    parser.add_argument("--decode-workers", type=int, default=int(env("TAGGER_DECODE_WORKERS", "4")),
                        help="image decoding workers (env CONCEPTFREQ_TAGGER_DECODE_WORKERS; default 4)")
    parser.add_argument("--decode-executor", default=env("TAGGER_DECODE_EXECUTOR", "thread"), choices=sorted(EXECUTORS),
                        help="decode in threads or processes (env CONCEPTFREQ_TAGGER_DECODE_EXECUTOR; default thread)")
    parser.add_argument("--max-pixels", type=int, default=int(env("TAGGER_MAX_PIXELS", str(DEFAULT_MAX_PIXELS))),
                        help=f"larger images are skipped as decompression bombs (env CONCEPTFREQ_TAGGER_MAX_PIXELS; default {DEFAULT_MAX_PIXELS:,})")
    parser.add_argument("--no-draft", action="store_true", default=env("TAGGER_NO_DRAFT", "") not in ("", "0"),
                        help="decode JPEGs at full size instead of libjpeg's reduced-size draft (env CONCEPTFREQ_TAGGER_NO_DRAFT)")
    parser.add_argument("--image-decoder", default=env("TAGGER_IMAGE_DECODER", "auto"), choices=IMAGE_DECODERS,
                        help="auto: nvJPEG on the GPU when the in-process model runs on CUDA, else Pillow in the decode workers; "
                             "pil: always the workers; torchvision: decode on the in-process model's device "
                             "(env CONCEPTFREQ_TAGGER_IMAGE_DECODER; default auto)")
    parser.add_argument("--cache-dir", default=env("CACHE_DIR"),
                        help="concept-embedding cache (env CONCEPTFREQ_CACHE_DIR; default ~/.cache/conceptfreq)")


def add_eval_topic(parser: argparse.ArgumentParser) -> None:
    from conceptfreq.pipeline.config import EVAL_SHARDS_TOPIC

    parser.add_argument("--topic-eval-shards", default=env("TOPIC_EVAL_SHARDS", EVAL_SHARDS_TOPIC), metavar="NAME",
                        help=f"topic of EvalShardEvents (env CONCEPTFREQ_TOPIC_EVAL_SHARDS; default {EVAL_SHARDS_TOPIC})")


def add_caption_source(parser: argparse.ArgumentParser) -> None:
    """Where the text stage finds a shard's captions."""
    parser.add_argument("--caption-column", default="", metavar="NAME",
                        help="caption column of parquet shards (default: the first of caption, TEXT, text)")
    from conceptfreq.adapters.shards.training import CAPTIONS_FROM

    parser.add_argument("--captions-from", choices=CAPTIONS_FROM, default="shard",
                        help="text stage: read captions from the shard itself (default), or from the img2dataset "
                             "parquet beside each NNNNN.tar (sidecar: same samples, the tar is not read)")


def add_run(parser: argparse.ArgumentParser, what: str) -> None:
    """How an announced run is carried out (pipeline/config.py RunConfig), and the in-process tagger."""
    parser.add_argument("--wait", action="store_true", help=f"with Kafka: wait until {what} are done or failed")
    parser.add_argument("--timeout", dest="timeout_s", type=float, default=0, help="give up waiting after this many seconds (0: never)")
    parser.add_argument("--parsers", type=int, default=1, help="in-process bus only: parser threads to run (default 1)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    add_tagging(parser.add_argument_group("image stage, in-process bus only (on Kafka the tagger service has these flags)"))


C = TypeVar("C")


def config_from(cls: type[C], args: argparse.Namespace, **overrides) -> C:
    """A typed configuration (pipeline/config.py) from the flags of the same names: the one place a
    Namespace turns into configuration, so nothing past the command line reads argparse."""
    values = {f.name: getattr(args, f.name) for f in dataclasses.fields(cls) if hasattr(args, f.name)}
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return cls(**{**values, **overrides})
