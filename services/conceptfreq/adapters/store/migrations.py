"""Versioned schema migrations of the count store.

Every statement runs unchanged on ClickHouse 18.16 (Debian's server, over the native protocol)
and on chDB 26.x, which is why the schema avoids Map, Bool, DateTime64, TTL, CODEC and
LowCardinality, and keeps key-value pairs as parallel arrays (sumMap-friendly).

Migration numbers are ranges by owner, so parallel work never collides:
1-99 counting core, 100-199 reporting, 200-299 evaluation, 300-399 tagging.
Never edit an applied migration: add a new one.
"""

from __future__ import annotations

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
    # (a shard rewritten) cannot linger. Superseded snapshots are deleted now and then.
    Migration(11, "concept totals", (
        """CREATE TABLE IF NOT EXISTS {db}.concept_totals (
            dataset String, vocabulary_version String, snapshot String, kind String, concept_id UInt32, count UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, snapshot, kind, concept_id)""",
        """CREATE TABLE IF NOT EXISTS {db}.totals_snapshots (
            dataset String, vocabulary_version String, snapshot String, seq UInt64,
            shards UInt64, samples UInt64, computed_at_ms UInt64
        ) ENGINE = MergeTree() ORDER BY (dataset, vocabulary_version, seq)""",
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
]

