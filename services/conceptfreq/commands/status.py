"""`conceptfreq status`: where a dataset's run stands, from the shard ledger and the bus."""

from __future__ import annotations

import json
import time
from collections import Counter

from conceptfreq.adapters.bus import open_bus
from conceptfreq.adapters.store import open_store
from conceptfreq.core.counting import DONE, STATES, TEXT
from conceptfreq.pipeline.progress import shard_progress
from conceptfreq.errors import NotFoundError, UnavailableError
from conceptfreq.commands.options import add_bus, add_dataset, add_store, store_url, topics

RATE_WINDOW_S = 60


def register(subparsers) -> None:
    parser = subparsers.add_parser("status", help="shards by state, samples, rate, consumer lag and failures of a dataset")
    add_dataset(parser)
    parser.add_argument("--vocab-version", default=None, metavar="VERSION", help="only this vocabulary version (default: all)")
    add_bus(parser)
    add_store(parser)
    parser.add_argument("--failures", type=int, default=20, metavar="N", help="list at most N failures (default 20; JSON lists all)")
    parser.add_argument("--json", action="store_true", help="print as JSON")
    parser.set_defaults(func=run)


def summarize(states, now_ms: int) -> dict:
    """One vocabulary version's ledger rows (ShardState) -> the status report (pure)."""
    by_shard: dict[str, dict] = {}
    stage_states: dict[str, Counter] = {}
    for row in states:
        by_shard.setdefault(row.shard, {})[row.stage] = row
        stage_states.setdefault(row.stage, Counter())[row.state] += 1
    progress = {shard: shard_progress(rows) for shard, rows in by_shard.items()}
    text_done = [rows[TEXT] for rows in by_shard.values() if TEXT in rows and rows[TEXT].state == DONE]
    samples = sum(r.samples for r in text_done)
    recent = sum(r.samples for r in text_done if r.updated_at_ms >= now_ms - RATE_WINDOW_S * 1000)
    text_done.sort(key=lambda r: r.updated_at_ms)
    span_s = (text_done[-1].updated_at_ms - text_done[0].updated_at_ms) / 1000 if len(text_done) > 1 else 0
    return {
        "shards": len(by_shard),
        "states": {state: sum(p.state == state for p in progress.values()) for state in STATES},
        "stages": {stage: {state: counts.get(state, 0) for state in STATES} for stage, counts in sorted(stage_states.items())},
        "samples": samples,
        "skipped": sum(r.skipped for r in text_done),
        # how the text counts were read: from the shards, or from img2dataset parquet sidecars
        "captions_from": dict(Counter(r.captions_from or "shard" for r in text_done)),
        "rate": {"last_minute": round(recent / RATE_WINDOW_S, 1),
                 # the samples of the shards done after the first one, over the time since: the run's
                 # pace without its start-up; the ledger keeps no start time per shard
                 "overall": round((samples - text_done[0].samples) / span_s, 1) if span_s else 0.0},
        "failures": [{"shard": shard, "reason": p.reason} for shard, p in sorted(progress.items()) if p.state == "failed"],
    }


def lag(args) -> list[dict] | str:
    """Consumer lag per group on this run's topics, or why it is not known."""
    bus = open_bus(args.bus)
    if bus.process_local:
        return "not available: the in-process bus lives inside the ingest process"
    names = topics(args)
    try:
        return [{"group": g, "topic": t, "lag": n} for (g, t), n in sorted(bus.group_lag([names.shards, names.results]).items())]
    except UnavailableError as error:
        return f"not available: {error}"


def run(args) -> int:
    store = open_store(store_url(args), read_only=True)
    try:
        states = store.shard_states(args.dataset, args.vocab_version)
        versions = sorted({s.vocabulary_version for s in states})
        if not versions:
            raise NotFoundError(f"the ledger has no shards of dataset {args.dataset!r} in {store.location}: run `conceptfreq ingest` first")
        now_ms = time.time_ns() // 1_000_000
        report = {"dataset": args.dataset, "vocabularies": []}
        for version in versions:
            entry = {"vocabulary_version": version, **summarize([s for s in states if s.vocabulary_version == version], now_ms)}
            snapshot = store.totals_snapshot(args.dataset, version)
            entry["totals"] = ({"shards": snapshot.shards, "samples": snapshot.samples, "computed_at_ms": snapshot.computed_at_ms}
                               if snapshot else None)
            entry["misalignment"] = [m.to_json() for m in store.misalignment(args.dataset, version)]
            report["vocabularies"].append(entry)
    finally:
        store.close()
    report["lag"] = lag(args)
    print(json.dumps(report, indent=2) if args.json else text(report, args.failures))
    return 0


def text(report: dict, max_failures: int) -> str:
    lines = []
    for v in report["vocabularies"]:
        states = ", ".join(f"{state} {n:,}" for state, n in v["states"].items())
        lines.append(f"{report['dataset']} (vocabulary {v['vocabulary_version']}): {v['shards']:,} shards: {states}")
        lines.append(f"  {'stage':<10}" + "".join(f"{state:>10}" for state in STATES))
        for stage, counts in v["stages"].items():
            lines.append(f"  {stage:<10}" + "".join(f"{counts[state]:>10,}" for state in STATES))
        lines.append(f"  samples {v['samples']:,} ({v['skipped']:,} skipped); rate {v['rate']['last_minute']:,.0f}/s "
                     f"over the last minute, {v['rate']['overall']:,.0f}/s over the run")
        if v["captions_from"].get("sidecar"):
            lines.append(f"  captions of {v['captions_from']['sidecar']:,} shards read from their img2dataset parquet sidecars")
        if v["totals"]:
            lines.append(f"  totals: {v['totals']['shards']:,} shards, {v['totals']['samples']:,} samples")
        for m in v.get("misalignment", []):
            # The paper's misalignment degree: caption and image concepts do not intersect.
            lines.append(f"  misalignment under {m['rule']}: {m['degree']:.1%} of {m['pairs']:,} image-caption pairs "
                         f"({m['misaligned']:,}; {m['no_concepts']:,} with no concept on either side)")
        for failure in v["failures"][:max_failures]:
            lines.append(f"  FAILED {failure['shard']}: {failure['reason']}")
        if len(v["failures"]) > max_failures:
            lines.append(f"  ... and {len(v['failures']) - max_failures} more (--json lists all)")
    if isinstance(report["lag"], str):
        lines.append(f"consumer lag: {report['lag']}")
    else:
        lines.append("consumer lag: " + (", ".join(f"{r['group']} {r['lag']:,} on {r['topic']}" for r in report["lag"]) or "no groups yet"))
    return "\n".join(lines)
