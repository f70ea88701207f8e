"""`kafka://host:port[,host:port...][?option=value&...]`: Apache Kafka (or any Kafka-protocol
broker) through kafka-python.

- Producer: idempotent, acks=all, so a send that `flush` confirmed survives a broker failover
  and a retried send is not written twice.
- Consumers: no auto-commit; `auto_offset_reset=earliest`, so a new group starts at the first
  event instead of skipping what was published before it joined.
- Query options tune the clients, e.g. `?session_timeout_ms=10000&heartbeat_interval_ms=3000`
  (see CLIENT_OPTIONS); integers only, which is all these are.
- Security options (SECURITY_OPTIONS) are kafka-python's own: `security_protocol` (PLAINTEXT, SSL,
  SASL_PLAINTEXT, SASL_SSL), `sasl_mechanism` (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512), `ssl_cafile`,
  `ssl_certfile`, `ssl_keyfile`, `ssl_check_hostname`. The SASL user comes from the URL
  (`kafka://user@host:9093`) and its password from `sasl_password_file` (a mounted Secret), or
  from the URL, where it would show in the pod spec and in `ps`.
- Broker-side errors become UnavailableError (retry later) or CommitFailed (partition moved).
"""

from __future__ import annotations

import logging
import time
from typing import Sequence
import os
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka import errors as kafka_errors
from kafka.structs import OffsetAndMetadata

from conceptfreq.adapters.bus.base import CommitFailed, Message
from conceptfreq.errors import UnavailableError, UserError

log = logging.getLogger(__name__)
# kafka-python reports every partition reset and rejoin at INFO: noise in a service's log. (A level
# the CLI already chose, e.g. silence for one-shot commands, stands.)
if logging.getLogger("kafka").level == logging.NOTSET:
    logging.getLogger("kafka").setLevel(logging.WARNING)

# Options a URL may set, and their defaults. Sessions of 10 s notice a killed pod quickly without
# evicting a busy one; max_poll_interval covers the longest shard parse we expect.
CLIENT_OPTIONS = {
    "session_timeout_ms": 10_000,
    "heartbeat_interval_ms": 3_000,
    "max_poll_interval_ms": 600_000,
    "request_timeout_ms": 30_000,
    "bootstrap_timeout_ms": 30_000,  # how long a client waits for its first broker connection
    "max_block_ms": 30_000,  # how long a send waits for metadata when the broker is down
    "delivery_timeout_ms": 60_000,
    "linger_ms": 5,
    # How long a one-shot command (ingest, retry) retries an unreachable broker before it exits 3;
    # services retry for as long as they run.
    "give_up_ms": 60_000,
}

# Security settings a URL may set: kafka-python's names, passed to every client as they are.
SECURITY_OPTIONS = {
    "security_protocol": ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"),
    "sasl_mechanism": ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"),
    "ssl_cafile": None, "ssl_certfile": None, "ssl_keyfile": None,
    "ssl_check_hostname": ("0", "1"),
    "sasl_password_file": None,
}

# Errors that mean "this consumer no longer owns the partition": the commit cannot succeed, and
# need not, since the new owner redelivers the message.
_LOST_PARTITION = (kafka_errors.CommitFailedError, kafka_errors.RebalanceInProgressError,
                   kafka_errors.IllegalGenerationError, kafka_errors.UnknownMemberIdError)


def _unavailable(what: str, error: Exception) -> UnavailableError:
    return UnavailableError(f"Kafka {what} failed: {type(error).__name__}: {error}")


class KafkaBusProducer:
    def __init__(self, bootstrap: list[str], options: dict[str, int], security: dict | None = None):
        try:
            self._producer = KafkaProducer(
                bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", **(security or {}),
                linger_ms=options["linger_ms"], max_block_ms=options["max_block_ms"], bootstrap_timeout_ms=options["bootstrap_timeout_ms"],
                request_timeout_ms=options["request_timeout_ms"], delivery_timeout_ms=options["delivery_timeout_ms"])
        except kafka_errors.KafkaError as error:
            raise _unavailable("producer start", error) from error
        self._futures = []

    def send(self, topic: str, value: bytes, key: bytes | None = None) -> None:
        try:
            self._futures.append(self._producer.send(topic, value=value, key=key))
        except kafka_errors.KafkaError as error:
            raise _unavailable(f"send to {topic}", error) from error

    def flush(self) -> None:
        futures, self._futures = self._futures, []
        try:
            self._producer.flush()
            for future in futures:
                future.get(timeout=0)
        except kafka_errors.KafkaError as error:
            raise _unavailable("flush", error) from error

    def close(self) -> None:
        self._producer.close()


class KafkaBusConsumer:
    def __init__(self, bootstrap: list[str], topics: Sequence[str], group: str, max_records: int, options: dict[str, int],
                 security: dict | None = None):
        try:
            self._consumer = KafkaConsumer(
                *topics, bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False, **(security or {}),
                auto_offset_reset="earliest", max_poll_records=max(1, max_records),
                session_timeout_ms=options["session_timeout_ms"], heartbeat_interval_ms=options["heartbeat_interval_ms"],
                max_poll_interval_ms=options["max_poll_interval_ms"], request_timeout_ms=options["request_timeout_ms"],
                bootstrap_timeout_ms=options["bootstrap_timeout_ms"])
        except kafka_errors.KafkaError as error:
            raise _unavailable("consumer start", error) from error

    def poll(self, timeout_s: float) -> list[Message]:
        try:
            batches = self._consumer.poll(timeout_ms=int(timeout_s * 1000))
        except kafka_errors.KafkaError as error:
            raise _unavailable("poll", error) from error
        return [Message(r.topic, r.partition, r.offset, r.key, r.value)
                for records in batches.values() for r in records]

    def commit(self, messages: Sequence[Message]) -> None:
        offsets: dict[TopicPartition, int] = {}
        for m in messages:
            tp = TopicPartition(m.topic, m.partition)
            offsets[tp] = max(offsets.get(tp, 0), m.offset + 1)
        try:
            self._consumer.commit({tp: OffsetAndMetadata(offset, "", -1) for tp, offset in offsets.items()})
        except _LOST_PARTITION as error:
            raise CommitFailed(str(error)) from error
        except kafka_errors.KafkaError as error:
            raise _unavailable("commit", error) from error

    def assigned(self) -> list[tuple[str, int]]:
        return sorted((tp.topic, tp.partition) for tp in self._consumer.assignment())

    def lag(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for tp in self._consumer.assignment():
            # Fetch responses carry the high-watermark; ListOffsets "latest" is not trusted (docs/platform.md).
            # The local position, not the committed offset: a metric must not cost a request per partition.
            highwater = self._consumer.highwater(tp)
            if highwater is not None:
                out[tp.topic] = out.get(tp.topic, 0) + max(0, highwater - self._consumer.position(tp))
        return out

    def close(self) -> None:
        # No autocommit: what was polled but not committed is redelivered to the next owner.
        self._consumer.close(autocommit=False)


class KafkaBus:
    process_local = False

    def __init__(self, bootstrap: list[str], options: dict[str, int], security: dict | None = None):
        self.bootstrap = bootstrap
        self.options = options
        self.security = security or {}  # kafka-python keyword arguments: TLS and SASL
        self.url = "kafka://" + ",".join(bootstrap)

    @property
    def give_up_s(self) -> float:
        return self.options["give_up_ms"] / 1000

    def _admin(self) -> KafkaAdminClient:
        try:
            return KafkaAdminClient(bootstrap_servers=self.bootstrap, **self.security, request_timeout_ms=self.options["request_timeout_ms"],
                                    bootstrap_timeout_ms=self.options["bootstrap_timeout_ms"])
        except kafka_errors.KafkaError as error:
            raise _unavailable("admin connection", error) from error

    def create_topics(self, names: Sequence[str], partitions: int) -> None:
        admin = self._admin()
        try:
            spec = {name: {"num_partitions": partitions, "replication_factor": -1} for name in names}
            response = admin.create_topics(spec, raise_errors=False)
            for topic in response["topics"]:
                error = kafka_errors.for_code(topic["error_code"])
                if error not in (kafka_errors.NoError, kafka_errors.TopicAlreadyExistsError):
                    raise UnavailableError(f"cannot create topic {topic['name']}: {error.__name__} {topic.get('error_message') or ''}")
        except kafka_errors.KafkaError as error:
            raise _unavailable("create topics", error) from error
        finally:
            admin.close()

    def producer(self) -> KafkaBusProducer:
        return KafkaBusProducer(self.bootstrap, self.options, self.security)

    def consumer(self, topics: Sequence[str], group: str, max_records: int = 1) -> KafkaBusConsumer:
        return KafkaBusConsumer(self.bootstrap, topics, group, max_records, self.options, self.security)

    def group_lag(self, topics: Sequence[str], timeout_s: float = 5.0) -> dict[tuple[str, str], int]:
        admin = self._admin()
        try:
            groups = [g["group_id"] for g in admin.list_groups()]
            committed: dict[str, dict[TopicPartition, int]] = {}
            for group in groups:  # one request per group: older brokers answer one group at a time
                offsets = admin.list_group_offsets(group).get(group, {})
                committed[group] = {tp: meta.offset for tp, meta in offsets.items() if tp.topic in topics and meta.offset >= 0}
        except kafka_errors.KafkaError as error:
            raise _unavailable("list group offsets", error) from error
        finally:
            admin.close()
        highwater = self.highwaters([t for t in topics], timeout_s)
        out: dict[tuple[str, str], int] = {}
        for group, offsets in committed.items():
            for topic in {tp.topic for tp in offsets}:
                ends = {tp: end for tp, end in highwater.items() if tp.topic == topic}
                out[(group, topic)] = sum(max(0, end - offsets.get(tp, 0)) for tp, end in ends.items())
        return out

    def highwaters(self, topics: Sequence[str], timeout_s: float = 5.0) -> dict[TopicPartition, int]:
        """High-watermark of every partition, read from fetch responses: a group-less consumer
        fetches once from each partition (ListOffsets "latest" is wrong on tansu, docs/platform.md)."""
        try:
            consumer = KafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False, **self.security,
                                     request_timeout_ms=self.options["request_timeout_ms"], fetch_max_bytes=1024,
                                     bootstrap_timeout_ms=self.options["bootstrap_timeout_ms"],
                                     max_partition_fetch_bytes=1024)
        except kafka_errors.KafkaError as error:
            raise _unavailable("consumer start", error) from error
        try:
            partitions = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or ())]
            if not partitions:
                return {}
            consumer.assign(partitions)
            consumer.seek_to_beginning(*partitions)
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and any(consumer.highwater(tp) is None for tp in partitions):
                consumer.poll(timeout_ms=100, max_records=1)
            return {tp: consumer.highwater(tp) for tp in partitions if consumer.highwater(tp) is not None}
        except kafka_errors.KafkaError as error:
            raise _unavailable("fetch high-watermarks", error) from error
        finally:
            consumer.close(autocommit=False)

    def close(self) -> None:
        pass


def open_kafka(url: str) -> KafkaBus:
    parts = urlsplit(url)
    # The netloc without user:password@ is the bootstrap list.
    bootstrap = [h for h in parts.netloc.rpartition("@")[2].split(",") if h]
    if not bootstrap:
        raise UserError(f"the Kafka bus URL {url!r} names no broker: use kafka://host:9092")
    options = dict(CLIENT_OPTIONS)
    security: dict[str, object] = {}
    for name, value in parse_qsl(parts.query):
        if name in SECURITY_OPTIONS:
            allowed = SECURITY_OPTIONS[name]
            if allowed and value not in allowed:
                raise UserError(f"Kafka option {name}={value!r} must be one of {', '.join(allowed)}")
            security[name] = value
            continue
        if name not in CLIENT_OPTIONS:
            known = ", ".join([*CLIENT_OPTIONS, *SECURITY_OPTIONS])
            raise UserError(f"unknown Kafka option {name!r} in the bus URL; known: {known}")
        if not value.isdigit():
            raise UserError(f"Kafka option {name}={value!r} must be a whole number (milliseconds)")
        options[name] = int(value)
    return KafkaBus(bootstrap, options, _security(parts, security))


def _security(parts, security: dict[str, object]) -> dict[str, object]:
    """kafka-python keyword arguments from the URL's security options and user:password."""
    if "ssl_check_hostname" in security:
        security["ssl_check_hostname"] = security["ssl_check_hostname"] == "1"
    password_file = security.pop("sasl_password_file", None)
    protocol = str(security.get("security_protocol", "PLAINTEXT"))
    for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        if key in security and not os.path.isfile(str(security[key])):
            raise UserError(f"Kafka option {key}: no such file {security[key]}")
    if parts.username is not None:
        security["sasl_plain_username"] = unquote(parts.username)
        security["sasl_plain_password"] = unquote(parts.password or "")
    if password_file:
        try:
            security["sasl_plain_password"] = Path(str(password_file)).read_text().strip()
        except OSError as error:
            raise UserError(f"cannot read the Kafka password file {password_file}: {error.strerror}") from error
    if protocol.startswith("SASL_"):
        security.setdefault("sasl_mechanism", "PLAIN")
        if "sasl_plain_username" not in security:
            raise UserError(f"security_protocol={protocol} needs a user: kafka://USER@host:9093?...&sasl_password_file=PATH")
    elif "sasl_mechanism" in security or "sasl_plain_username" in security:
        raise UserError("a SASL user or mechanism needs security_protocol=SASL_SSL (or SASL_PLAINTEXT)")
    return security
