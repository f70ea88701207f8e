"""The image side: top-k scores, image hits per rule, image attempts, recorded tagging rules,
matched counts and misalignment (migrations 300-399 say why the tables look the way they do).

Exactly-once follows the ledger: an image attempt's rows are written first, its image_attempts row
next, its ledger row (`image` done) last; readers only follow done attempts. The counter's matched
rows follow the same pattern under the `matched` stage."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from conceptfreq.adapters.store.backends import ArrayColumn
from conceptfreq.adapters.store.counts import CountTables
from conceptfreq.adapters.store.ledger import visible
from conceptfreq.adapters.store.tables import now_seq
from conceptfreq.core.counting import DONE, IMAGE, MATCHED, TEXT
from conceptfreq.core.tagging import ImageShardResult, Matched, Rule, TopScores, rule_from_json


@dataclass
class ImageAttempt:
    shard: str
    attempt_id: str
    scores_attempt: str
    model_id: str
    logit_scale: float
    top_k: int
    vocabulary_size: int
    rules: list[str]
    samples: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)


@dataclass
class Misalignment:
    rule: str
    shards: int
    pairs: int
    misaligned: int
    no_concepts: int

    @property
    def degree(self) -> float:
        return self.misaligned / self.pairs if self.pairs else 0.0

    def to_json(self) -> dict:
        return {"rule": self.rule, "shards": self.shards, "pairs": self.pairs, "misaligned": self.misaligned,
                "no_concepts": self.no_concepts, "degree": round(self.degree, 6)}


_ATTEMPT_FIELDS = """shard, attempt_id, argMax(scores_attempt, seq), argMax(model_id, seq), argMax(logit_scale, seq),
    argMax(top_k, seq), argMax(vocabulary_size, seq), argMax(rules, seq)"""


def _attempts(rows) -> list[ImageAttempt]:
    return [ImageAttempt(shard, attempt, scores, model, float(scale), int(k), int(size), list(rules))
            for shard, attempt, scores, model, scale, k, size, rules in rows]


class ImageTables(CountTables):
    # --- tagging rules ------------------------------------------------------------------------------

    def record_rule(self, dataset: str, vocabulary_version: str, rule: Rule) -> None:
        """Record `rule` for the dataset and make it the active one (recording it again re-activates it)."""
        self._insert("tagging_rules", ["dataset", "vocabulary_version", "rule", "body", "seq"],
                     [(dataset, vocabulary_version, str(rule), json.dumps(rule.to_json(), sort_keys=True), now_seq())])

    def recorded_rules(self, dataset: str, vocabulary_version: str) -> list[Rule]:
        """The rules recorded for the dataset, the active one (latest recorded) first."""
        rows = self._execute("""SELECT rule, argMax(body, seq), max(seq) AS last FROM {db}.tagging_rules
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s GROUP BY rule ORDER BY last DESC""",
                             d=dataset, v=vocabulary_version)
        return [rule_from_json(json.loads(body)) for _, body, _ in rows]

    def tagging_rules(self, dataset: str, vocabulary_version: str) -> list[str]:
        """The names of the recorded rules, the active one first."""
        return [str(rule) for rule in self.recorded_rules(dataset, vocabulary_version)]

    def active_rule(self, dataset: str, vocabulary_version: str) -> str | None:
        """The latest tagging rule recorded for a dataset: what image and matched counts are read
        under by default. None when none was (text-only or imported counts)."""
        rules = self.tagging_rules(dataset, vocabulary_version)
        return rules[0] if rules else None

    def ensure_rule(self, dataset: str, vocabulary_version: str, rule: Rule) -> list[Rule]:
        """The dataset's rules, active first, after recording `rule` if it was never recorded. A rule
        already recorded keeps its place: a tagger restarted with its configured rule must not undo a
        later `retag`."""
        rules = self.recorded_rules(dataset, vocabulary_version)
        if str(rule) not in {str(r) for r in rules}:
            self.record_rule(dataset, vocabulary_version, rule)
            rules.insert(0, rule)
        return rules

    # --- image attempts -----------------------------------------------------------------------------

    def write_image_shard(self, result: ImageShardResult) -> None:
        """Make `result` the shard's visible image attempt: scores (unless a retag reuses earlier ones),
        hits and counts of every rule, the attempt's metadata, then the ledger row."""
        key = (result.dataset, result.vocabulary_version, result.shard, result.attempt_id)
        named = dict(zip(("dataset", "vocabulary_version", "shard", "attempt_id"), key))
        top = result.top
        if result.writes_scores and top is not None and len(top):
            n, k = top.concept_ids.shape
            offsets = np.arange(n + 1, dtype=np.int64) * k  # every image keeps the same k scores
            self._insert_columns("image_scores", {
                **named, "sample_key": list(result.keys), "concept_ids": ArrayColumn(offsets, top.concept_ids.reshape(-1)),
                "scores": ArrayColumn(offsets, top.cosines.reshape(-1)), "lse": top.lse.astype(np.float32, copy=False)})
        rules, keys, lengths, flat = [], [], [], []
        for rule, hits in result.rules.items():
            for sample_key, concepts in hits.hits:
                rules.append(rule)
                keys.append(sample_key)
                lengths.append(len(concepts))
                flat.extend(concepts)
        if keys:
            offsets = np.zeros(len(keys) + 1, np.int64)
            np.cumsum(lengths, out=offsets[1:])
            self._insert_columns("image_hits", {**named, "rule": rules, "sample_key": keys,
                                                "concept_ids": ArrayColumn(offsets, np.array(flat, np.uint32))})
        self._write_counts(result.dataset, result.vocabulary_version, result.shard, IMAGE, result.attempt_id, IMAGE,
                           {rule: hits.counts for rule, hits in result.rules.items()})
        self._insert("image_attempts", ["dataset", "vocabulary_version", "shard", "attempt_id", "scores_attempt", "model_id",
                                        "logit_scale", "top_k", "vocabulary_size", "rules", "truncated", "seq"],
                     [key + (result.scores_attempt or result.attempt_id, result.model_id, float(top.logit_scale if top else 0.0),
                             int(top.k if top else 0), int(top.vocabulary_size if top else 0), list(result.rules),
                             [hits.truncated for hits in result.rules.values()], now_seq())])
        self.record_state(result.dataset, result.vocabulary_version, result.shard, IMAGE, DONE, attempt_id=result.attempt_id,
                          samples=result.samples, skip_reasons=result.skipped, notes=result.notes)

    def visible_image_attempts(self, dataset: str, vocabulary_version: str,
                               shards: Sequence[str] | None = None) -> dict[str, ImageAttempt]:
        """{shard: its visible (latest, done) image attempt}, with the ledger's samples and skips."""
        only = "AND shard IN %(s)s" if shards else ""
        rows = self._execute(f"""SELECT {_ATTEMPT_FIELDS} FROM {{db}}.image_attempts
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s {only}
              AND {visible(stage="%(stage)s", narrow="AND stage = %(stage)s " + only)}
            GROUP BY shard, attempt_id""", d=dataset, v=vocabulary_version, stage=IMAGE, s=tuple(shards or ()))
        attempts = {a.shard: a for a in _attempts(rows)}
        for state in self.shard_states(dataset, vocabulary_version, shards):
            attempt = attempts.get(state.shard)
            if state.stage == IMAGE and attempt is not None and state.attempt_id == attempt.attempt_id:
                attempt.samples, attempt.skipped, attempt.notes = state.samples, state.skip_reasons, state.notes
        return attempts

    def image_attempt(self, dataset: str, vocabulary_version: str, shard: str, attempt_id: str) -> ImageAttempt | None:
        rows = self._execute(f"""SELECT {_ATTEMPT_FIELDS} FROM {{db}}.image_attempts
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard = %(s)s AND attempt_id = %(a)s
            GROUP BY shard, attempt_id""", d=dataset, v=vocabulary_version, s=shard, a=attempt_id)
        attempts = _attempts(rows)
        return attempts[0] if attempts else None

    def read_scores(self, dataset: str, vocabulary_version: str, attempt: ImageAttempt) -> tuple[list[str], TopScores]:
        """The stored top-k of every decoded image of the attempt's shard, in sample-key order."""
        rows = self._execute("""SELECT sample_key, concept_ids, scores, lse FROM {db}.image_scores
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard = %(s)s AND attempt_id = %(a)s
            ORDER BY sample_key""", d=dataset, v=vocabulary_version, s=attempt.shard, a=attempt.scores_attempt)
        k = attempt.top_k
        if not rows:
            return [], TopScores.empty(k, attempt.logit_scale, attempt.vocabulary_size)
        top = TopScores(np.array([r[1] for r in rows], dtype=np.uint32).reshape(len(rows), -1),
                        np.array([r[2] for r in rows], dtype=np.float32).reshape(len(rows), -1),
                        np.array([r[3] for r in rows], dtype=np.float32), attempt.logit_scale, attempt.vocabulary_size)
        return [r[0] for r in rows], top

    def image_keys(self, dataset: str, vocabulary_version: str, shard: str, scores_attempt: str) -> list[str]:
        """Keys of the shard's decoded images (one column of the scores: cheap to read)."""
        rows = self._execute("""SELECT sample_key FROM {db}.image_scores
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard = %(s)s AND attempt_id = %(a)s""",
                             d=dataset, v=vocabulary_version, s=shard, a=scores_attempt)
        return [r[0] for r in rows]

    def image_hits(self, dataset: str, vocabulary_version: str, shard: str, attempt_id: str) -> dict[str, dict[str, list[int]]]:
        """{rule: {sample key: concept ids}} of one image attempt."""
        rows = self._execute("""SELECT rule, sample_key, concept_ids FROM {db}.image_hits
            WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard = %(s)s AND attempt_id = %(a)s""",
                             d=dataset, v=vocabulary_version, s=shard, a=attempt_id)
        hits: dict[str, dict[str, list[int]]] = {}
        for rule, key, concepts in rows:
            hits.setdefault(rule, {})[key] = [int(c) for c in concepts]
        return hits

    # --- matched counts and misalignment --------------------------------------------------------------

    def write_matched(self, dataset: str, vocabulary_version: str, shard: str, matched: Sequence[Matched]) -> str:
        """Make `matched` (one per rule, the active rule first) the shard's visible matched stage;
        returns its attempt id."""
        attempt = uuid.uuid4().hex
        key = (dataset, vocabulary_version, shard)
        self._write_counts(dataset, vocabulary_version, shard, MATCHED, attempt, MATCHED, {m.rule: m.counts for m in matched})
        self._insert("misalignment", ["dataset", "vocabulary_version", "shard", "stage", "attempt_id", "rule", "pairs",
                                      "misaligned", "no_concepts"],
                     [key + (MATCHED, attempt, m.rule, m.pairs, m.misaligned, m.no_concepts) for m in matched])
        first = matched[0] if matched else Matched("")
        self.record_state(dataset, vocabulary_version, shard, MATCHED, DONE, attempt_id=attempt, samples=first.pairs,
                          notes={"misaligned": first.misaligned} if matched else {})
        return attempt

    def misalignment(self, dataset: str, vocabulary_version: str | None = None) -> list[Misalignment]:
        """Misalignment over the visible matched shards, per rule (the active rule first); of every
        vocabulary version when none is given."""
        condition = visible(narrow="AND stage = %(stage)s", across_vocabularies=vocabulary_version is None)
        version = "" if vocabulary_version is None else "AND vocabulary_version = %(v)s"
        rows = self._execute(f"""SELECT rule, count(), sum(pairs), sum(misaligned), sum(no_concepts) FROM {{db}}.misalignment
            WHERE dataset = %(d)s {version} AND {condition}
            GROUP BY rule""", d=dataset, v=vocabulary_version or "", stage=MATCHED)
        order = {} if vocabulary_version is None else {r: i for i, r in enumerate(self.tagging_rules(dataset, vocabulary_version))}
        found = [Misalignment(rule, int(s), int(p), int(m), int(n)) for rule, s, p, m, n in rows]
        return sorted(found, key=lambda m: (order.get(m.rule, len(order)), m.rule))

    # --- the samples behind a count -------------------------------------------------------------------

    def samples_of(self, dataset: str, vocabulary_version: str, concept_id: int, kind: str, after: tuple[str, str],
                   limit: int, rule: str | None = None, shards_per_query: int = 16) -> list[tuple[str, str]]:
        """(shard, sample key) of the visible samples whose text (or image, under `rule`) hits the
        concept, in (shard, key) order after `after`. It walks the visible shards a few at a time
        (each read by the tables' shard index), so a page costs the shards it looks at."""
        stage = TEXT if kind == TEXT else IMAGE
        done = sorted((s.shard, s.attempt_id) for s in self.shard_states(dataset, vocabulary_version, stages=[stage])
                      if s.state == DONE and s.shard >= after[0])
        table, extra = ("text_hits", "") if stage == TEXT else ("image_hits", "AND rule = %(rule)s")
        found: list[tuple[str, str]] = []
        for start in range(0, len(done), shards_per_query):
            chunk = done[start:start + shards_per_query]
            rows = self._execute(f"""SELECT shard, sample_key FROM {{db}}.{table}
                WHERE dataset = %(d)s AND vocabulary_version = %(v)s AND shard IN %(shards)s AND (shard, attempt_id) IN %(pairs)s
                  {extra} AND has(concept_ids, %(c)s) AND (shard > %(s)s OR (shard = %(s)s AND sample_key > %(k)s))
                ORDER BY shard, sample_key LIMIT %(n)s""", d=dataset, v=vocabulary_version, shards=tuple(s for s, _ in chunk),
                                 pairs=tuple(chunk), rule=rule or "", c=int(concept_id), s=after[0], k=after[1], n=limit - len(found))
            found += [(shard, key) for shard, key in rows]
            if len(found) >= limit:
                break
        return found
