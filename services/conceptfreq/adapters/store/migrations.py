"""Versioned schema migrations of the count store.

Every statement runs unchanged on ClickHouse 18.16 (Debian's server, over the native protocol)
and on chDB 26.x, which is why the schema avoids Map, Bool, DateTime64, TTL, CODEC and
LowCardinality, and keeps key-value pairs as parallel arrays (sumMap-friendly).

Migration numbers are ranges by owner, so parallel work never collides:
1-99 counting core, 100-199 reporting, 200-299 evaluation, 300-399 tagging.
Never edit an applied migration: add a new one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


# `{db}` is the store's database; statements are formatted with it before they run.
MIGRATIONS: list[Migration] = [
    Migration(1, "vocabularies and concepts", (
        """CREATE TABLE IF NOT EXISTS {db}.vocabularies (
            version String, name String, body String, created_at_ms UInt64
        ) ENGINE = ReplacingMergeTree() ORDER BY version""",
        """CREATE TABLE IF NOT EXISTS {db}.concepts (
            vocabulary_version String, concept_id UInt32, name String,
            aliases Array(String), sources Array(String)
        ) ENGINE = ReplacingMergeTree() ORDER BY (vocabulary_version, concept_id)""",
    )),
    # The ledger is append-only: the latest row (highest seq) per key is the shard's state.
    # Rows of a shard's write are only visible through the ledger's done attempt_id, which is
    # what makes a rewrite replace instead of add, and a crash mid-write invisible.
    Migration(2, "shard ledger", (
        """CREATE TABLE IF NOT EXISTS {db}.shard_ledger (
            dataset String, vocabulary_version String, shard String, stage String,
            state String, attempt_id String, samples UInt64, skipped UInt64,
            skip_reason_names Array(String), skip_reason_counts Array(UInt64),
            reason String, seq UInt64, updated_at_ms UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (dataset, vocabulary_version, stage, shard)""",
    )),
    Migration(3, "text hits and per-shard counts", (
        """CREATE TABLE IF NOT EXISTS {db}.text_hits (
            dataset String, vocabulary_version String, shard String, attempt_id String,
            sample_key String, concept_ids Array(UInt32)
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, shard, attempt_id, sample_key)""",
        """CREATE TABLE IF NOT EXISTS {db}.shard_counts (
            dataset String, vocabulary_version String, shard String, stage String, attempt_id String,
            kind String, rule String, concept_id UInt32, count UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, kind, rule, concept_id, shard, attempt_id)""",
    )),
    # Pipeline (10-29). Each announced ShardEvent (base64 protobuf), so `retry` republishes exactly
    # what ingest sent (format, caption column, stages) without the shard pattern.
    Migration(10, "announced shard events", (
        """CREATE TABLE IF NOT EXISTS {db}.shard_events (
            dataset String, vocabulary_version String, shard String, event String, seq UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (dataset, vocabulary_version, shard)""",
    )),
    # Per-concept totals that the counter maintains. A total is never incremented: each refresh
    # aggregates the visible shard_counts (the ledger's done attempts) into rows under a new
    # `snapshot`, then appends the snapshot to totals_snapshots; readers take the latest snapshot.
    # So totals inherit the ledger's exactly-once effect whatever is redelivered or replayed, a
    # crash mid-refresh leaves only an invisible snapshot, and a concept whose count fell to zero
    # (a shard rewritten) cannot linger. Superseded snapshots are deleted now and then. Superseded
    # itself by migration 13 (totals kept by deltas); nothing reads these tables any more.
    Migration(11, "concept totals", (
        """CREATE TABLE IF NOT EXISTS {db}.concept_totals (
            dataset String, vocabulary_version String, snapshot String, kind String, concept_id UInt32, count UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, snapshot, kind, concept_id)""",
        """CREATE TABLE IF NOT EXISTS {db}.totals_snapshots (
            dataset String, vocabulary_version String, snapshot String, seq UInt64,
            shards UInt64, samples UInt64, computed_at_ms UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, seq)""",
    )),
    # Per-shard counts ordered by shard, so that what one shard contributes is read by the index
    # (totals are maintained from such per-shard deltas); readers of whole datasets scan it as they
    # scanned the table it replaces, whose rows it takes over once (the guard makes a rerun a no-op).
    Migration(12, "per-shard counts ordered by shard", (
        """CREATE TABLE IF NOT EXISTS {db}.shard_concept_counts (
            dataset String, vocabulary_version String, shard String, stage String, attempt_id String,
            kind String, rule String, concept_id UInt32, count UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, shard, stage, attempt_id, kind, rule, concept_id)""",
        """INSERT INTO {db}.shard_concept_counts
            SELECT dataset, vocabulary_version, shard, stage, attempt_id, kind, rule, concept_id, count FROM {db}.shard_counts
            WHERE (SELECT count() FROM {db}.shard_concept_counts) = 0""",
    )),
    # Totals maintained from deltas (adapters/store/totals.py says how they stay exactly-once). A
    # snapshot holds every (kind, rule, concept) total and how many shards each rule covers; it is
    # its parent plus what changed in the shards it includes anew (totals_inclusions: which attempt
    # of each stage of a shard is in the totals). A snapshot exists once its count_snapshots row is
    # written, last; rows of a snapshot that never got one are ignored.
    Migration(13, "totals maintained from per-shard deltas", (
        """CREATE TABLE IF NOT EXISTS {db}.count_snapshots (
            dataset String, vocabulary_version String, snapshot String, parent String, seq UInt64,
            shards UInt64, samples UInt64, computed_at_ms UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, seq)""",
        """CREATE TABLE IF NOT EXISTS {db}.snapshot_counts (
            dataset String, vocabulary_version String, snapshot String, kind String, rule String, concept_id UInt32, count Int64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, snapshot, kind, rule, concept_id)""",
        """CREATE TABLE IF NOT EXISTS {db}.snapshot_rules (
            dataset String, vocabulary_version String, snapshot String, kind String, rule String, shards Int64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, snapshot, kind, rule)""",
        """CREATE TABLE IF NOT EXISTS {db}.totals_inclusions (
            dataset String, vocabulary_version String, shard String, snapshot String,
            stages Array(String), attempts Array(String), samples Array(UInt64), seq UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, shard, seq)""",
    )),
    # Which source a text attempt read its captions from ('shard', or 'sidecar': an img2dataset
    # tar's parquet; '' on older rows), so `status` can say how a count was made. An ALTER of a
    # Replicated table replicates itself, like its mutations. ClickHouse 18.16 has no ADD COLUMN IF
    # NOT EXISTS, so the runner skips an ADD COLUMN whose column is there (`added_column`).
    Migration(14, "caption source of each ledger row", (
        "ALTER TABLE {db}.shard_ledger ADD COLUMN captions_from String DEFAULT ''",
    )),
    # Reporting (100-199). Per-class zero-shot results, one row per (model, pretrained, prompts,
    # eval_dataset, class_name): written by `import-paper` (source 'paper', accuracy only) and by the
    # evaluator (source 'evaluator', with correct/total). `accuracy` is in percent (0-100), the
    # paper's unit; `total` = 0 means the test-set size is unknown. `concept_id` is the class's concept
    # in `vocabulary_version`, which is how results join the counts. Rewrites replace: readers take
    # argMax(..., seq) per key (seq = time.time_ns() of the write, as in the ledger), so the latest
    # write wins before and after merges.
    Migration(100, "zero-shot results per class", (
        """CREATE TABLE IF NOT EXISTS {db}.zero_shot_results (
            model String, pretrained String, prompts String, eval_dataset String, class_name String,
            vocabulary_version String, concept_id UInt32, correct UInt64, total UInt64, accuracy Float64,
            source String, seq UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (model, pretrained, prompts, eval_dataset, class_name)""",
    )),
    # Evaluation (200-299). An evaluation is one (model, weights, precision, prompts, eval set,
    # classes, vocabulary); `spec` is its plan as JSON (evaluator/plan.py), rewritten with a higher
    # seq when it changes. Per-shard class counts follow the shard ledger's rule (migration 2):
    # rows are written under a fresh attempt_id, then an eval_ledger row marks that attempt done;
    # readers sum only each shard's latest done attempt, so a shard evaluated twice, or a crash
    # between the two inserts, never counts twice, and totals are sums over shards.
    Migration(200, "evaluations", (
        """CREATE TABLE IF NOT EXISTS {db}.evaluations (
            evaluation_id String, task String, model String, pretrained String, precision String, prompts String,
            eval_dataset String, data String, vocabulary_version String, shards UInt64, spec String,
            created_at_ms UInt64, seq UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY evaluation_id""",
    )),
    Migration(201, "evaluation shard ledger and per-class shard counts", (
        """CREATE TABLE IF NOT EXISTS {db}.eval_ledger (
            evaluation_id String, shard String, state String, attempt_id String, model_id String,
            samples UInt64, skipped UInt64, skip_reason_names Array(String), skip_reason_counts Array(UInt64),
            reason String, seq UInt64, updated_at_ms UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (evaluation_id, shard)""",
        """CREATE TABLE IF NOT EXISTS {db}.eval_shard_counts (
            evaluation_id String, shard String, attempt_id String, class_index UInt32, concept_id Int64,
            correct_top1 UInt64, correct_top5 UInt64, total UInt64
        ) ENGINE = MergeTree() ORDER BY (evaluation_id, shard, attempt_id, class_index)""",
    )),
    # Retrieval recall@k per concept (t2i: over captions that contain the concept; i2t: over images
    # whose captions do). Computed over the whole eval set at once (ranks are global), so each
    # write replaces the evaluation's rows: readers take argMax(..., seq) per key.
    Migration(202, "zero-shot retrieval per concept", (
        """CREATE TABLE IF NOT EXISTS {db}.zero_shot_retrieval (
            model String, pretrained String, eval_dataset String, vocabulary_version String, concept_id UInt32,
            concept String, direction String, k UInt32, hits UInt64, total UInt64, recall Float64,
            evaluation_id String, seq UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (model, pretrained, eval_dataset, vocabulary_version, direction, k, concept_id)""",
    )),
    # Tagging (300-399). Image rows follow the ledger like text rows: they are visible through the
    # shard's latest done `image` attempt. An image attempt carries the hits of every tagging rule
    # recorded for the dataset (tagging_rules), each under its rule string, so switching rules
    # (`retag`) writes a new attempt that keeps the old rules queryable. The top-k scores, the big
    # table, are written once by the tagger; a retag attempt points back at them (scores_attempt).
    Migration(300, "image top-k scores and image hits", (
        # lse: log-sum-exp of logit_scale * cosine over the whole vocabulary, so that softmax
        # probabilities of the stored concepts can be recomputed (core/tagging.py).
        """CREATE TABLE IF NOT EXISTS {db}.image_scores (
            dataset String, vocabulary_version String, shard String, attempt_id String, sample_key String,
            concept_ids Array(UInt32), scores Array(Float32), lse Float32
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, shard, attempt_id, sample_key)""",
        """CREATE TABLE IF NOT EXISTS {db}.image_hits (
            dataset String, vocabulary_version String, shard String, attempt_id String, rule String,
            sample_key String, concept_ids Array(UInt32)
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, shard, attempt_id, rule, sample_key)""",
    )),
    Migration(301, "image attempts and tagging rules", (
        # Written before the ledger row, so every visible image attempt has one.
        """CREATE TABLE IF NOT EXISTS {db}.image_attempts (
            dataset String, vocabulary_version String, shard String, attempt_id String, scores_attempt String,
            model_id String, logit_scale Float32, top_k UInt32, vocabulary_size UInt32,
            rules Array(String), truncated Array(UInt64), seq UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (dataset, vocabulary_version, shard, attempt_id)""",
        # The rules recorded for a dataset; the latest recorded (highest seq) is the active one.
        # body: Rule.to_json(), which holds per-concept thresholds that the rule string only hashes.
        """CREATE TABLE IF NOT EXISTS {db}.tagging_rules (
            dataset String, vocabulary_version String, rule String, body String, seq UInt64
        ) ENGINE = ReplacingMergeTree(seq) ORDER BY (dataset, vocabulary_version, rule)""",
    )),
    # Per shard and rule, from the counter's `matched` stage (visible through its ledger attempt).
    Migration(302, "misalignment per shard and rule", (
        """CREATE TABLE IF NOT EXISTS {db}.misalignment (
            dataset String, vocabulary_version String, shard String, stage String, attempt_id String, rule String,
            pairs UInt64, misaligned UInt64, no_concepts UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, rule, shard, attempt_id)""",
    )),
]


# --- replicated ClickHouse -------------------------------------------------------------------------
# On a cluster (a store URL with ?cluster=NAME) the same migrations run ON CLUSTER, each
# *MergeTree engine becoming its Replicated* twin, so every replica holds every row: a node
# lost is a node to replace, not counts to recompute. The supported topology is one shard with
# any number of replicas. Reads stay on the local tables: every replica holds all rows, and the
# visibility rule (store.visible) joins a dataset's counts with its ledger, which a sharded
# layout would turn into GLOBAL IN over Distributed tables on every query.

_CREATE_DATABASE = re.compile(r"^\s*CREATE\s+DATABASE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*$", re.I | re.S)
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\.(\w+)\s*\(", re.I)
_ENGINE = re.compile(r"ENGINE\s*=\s*(\w*)MergeTree\(([^)]*)\)", re.I)


@dataclass(frozen=True)
class ClusterDDL:
    """A schema statement rewritten for a cluster, and what to look up to know it is already done."""

    sql: str
    database: str
    table: str  # "" for CREATE DATABASE


_ADD_COLUMN = re.compile(r"\s*ALTER TABLE \{db\}\.(\w+) ADD COLUMN (\w+) ")


def added_column(statement: str) -> tuple[str, str] | None:
    """(table, column) of an `ALTER TABLE {db}.table ADD COLUMN column ...` statement, else None."""
    match = _ADD_COLUMN.match(statement)
    return (match.group(1), match.group(2)) if match else None


def on_cluster(statement: str, cluster: str) -> ClusterDDL | None:
    """`statement` for a replicated cluster, or None when it is not schema DDL (queries, inserts
    and ALTER ... DELETE / ADD COLUMN run as they are: a mutation or column change of a Replicated
    table replicates itself)."""
    database = _CREATE_DATABASE.match(statement)
    if database:
        return ClusterDDL(f"CREATE DATABASE IF NOT EXISTS {database.group(1)} ON CLUSTER {cluster}", database.group(1), "")
    table = _CREATE_TABLE.match(statement)
    if not table:
        return None
    db, name = table.groups()
    sql = statement[:table.end() - 1].rstrip() + f" ON CLUSTER {cluster} " + statement[table.end() - 1:]

    def replicated(engine: re.Match) -> str:
        # {shard} and {replica} are each server's <macros>; the path names the table in ZooKeeper.
        args = [f"'/clickhouse/tables/{{shard}}/{db}/{name}'", "'{replica}'"] + [a for a in [engine.group(2).strip()] if a]
        return f"ENGINE = Replicated{engine.group(1)}MergeTree({', '.join(args)})"

    sql, engines = _ENGINE.subn(replicated, sql)
    if engines != 1:
        raise ValueError(f"cannot make {db}.{name} replicated: expected one *MergeTree engine")
    return ClusterDDL(sql, db, name)
