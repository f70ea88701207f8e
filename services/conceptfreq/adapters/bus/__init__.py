"""Open the event bus named by a URL.

- `kafka://host:9092[,host2:9092][?session_timeout_ms=...]`: Kafka (or a Kafka-protocol broker)
- `inproc://[name]`: in-process topics, the one-machine default; same semantics (base.py)

Topics: `shards` (ShardEvent), `shard-results` (StageResult), `dead-letter` (DeadLetter); names
and partitions are configurable (Topics).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from conceptfreq.adapters.bus.base import Bus, CommitFailed, Consumer, Message, Producer, Topics
from conceptfreq.adapters.bus.inproc import InprocBus
from conceptfreq.errors import UserError

DEFAULT_BUS_URL = "inproc://"


def _kafka(url: str) -> Bus:
    from conceptfreq.adapters.bus.kafka import open_kafka  # kafka-python loads only when used

    return open_kafka(url)


def _inproc(url: str) -> Bus:
    parts = urlsplit(url)
    return InprocBus((parts.netloc + parts.path).strip("/") or "default")


BUS_SCHEMES = {"kafka": _kafka, "inproc": _inproc}


def open_bus(url: str | None = None) -> Bus:
    url = url or DEFAULT_BUS_URL
    opener = BUS_SCHEMES.get(urlsplit(url).scheme)
    if opener is None:
        raise UserError(f"unknown bus URL {url!r}: use kafka://host:9092 or inproc://")
    return opener(url)


__all__ = ["Bus", "BUS_SCHEMES", "CommitFailed", "Consumer", "DEFAULT_BUS_URL", "Message", "Producer", "Topics", "open_bus"]
