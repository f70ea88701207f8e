"""`import-paper`: load the paper's published counts and zero-shot results into the count store.

- One vocabulary per downstream set (`paper-{downstream}`, its class names). The paper counts a
  class once per downstream set, and the same name can have slightly different counts in two sets
  (`house`: 29117 in cifar100, 28819 in coco), so one pooled vocabulary could not hold them apart.
  Vocabulary versions hash the content only, so imagenet and imagenet-sketch (same classes, same
  counts) share one: the second file is skipped when its counts are equal, and reported as a
  conflict when they are not.
- Each count file becomes one pseudo-shard (`paper:{downstream}_{pretrain}_{method}`) of the
  pretraining dataset, written through `CountStore.write_shard`, with `rule` = the paper's method.
  A pseudo-shard lists every concept it covers, zeros included.
- Each class of each evaluation becomes one `zero_shot_results` row (migration 100), source 'paper'.

Importing again replaces, never adds (the ledger and `seq` see to that).
"""

from __future__ import annotations

from typing import Callable, Iterable

from conceptfreq.adapters.store import ClassResult, CountStore
from conceptfreq.core.counting import ShardResult
from conceptfreq.core.text import phrase_key
from conceptfreq.core.vocabulary import Vocabulary, from_names
from conceptfreq.reporter.paper import PaperArtifacts, resolve_method

PAPER_SHARD_PREFIX = "paper:"


class PaperVocabularies:
    """The vocabulary of each downstream set, and the concept id of any spelling of its class names
    (the artifacts write `bell_pepper` in one file and `bell pepper` in another)."""

    def __init__(self, artifacts: PaperArtifacts):
        names: dict[str, set[str]] = {}
        for f in artifacts.count_files:
            names.setdefault(f.downstream, set()).update(artifacts.counts(f.downstream, f.pretrain, f.method) or {})
        for downstream, prompts in artifacts.result_files:
            for classwise in artifacts.evaluations(downstream, prompts).values():
                names.setdefault(downstream, set()).update(classwise)
        self.vocabularies: dict[str, Vocabulary] = {}
        self._ids: dict[str, dict[str, int]] = {}
        for downstream, found in sorted(names.items()):
            usable = sorted(n for n in found if phrase_key(n))
            if not usable:
                continue
            vocabulary = from_names([[n] for n in usable], name=f"paper-{downstream}", sources=[[downstream]] * len(usable))
            self.vocabularies[downstream] = vocabulary
            self._ids[downstream] = {phrase_key(c.name): c.id for c in vocabulary}

    def concept_id(self, downstream: str, name: str) -> int | None:
        return self._ids.get(downstream, {}).get(phrase_key(name))


def import_paper(store: CountStore, artifacts: PaperArtifacts, *, datasets: Iterable[str] | None = None,
                 methods: Iterable[str] | None = None, prompts: Iterable[str] | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Import counts (optionally only some pretraining sets and methods) and evaluations (optionally only
    some prompts; only models pretrained on the chosen sets when sets are given). Returns a summary."""
    say = progress or (lambda _: None)
    datasets = set(datasets) if datasets else None
    methods = {resolve_method(m) for m in methods} if methods else None
    prompts = set(prompts) if prompts else None
    paper = PaperVocabularies(artifacts)
    versions = {ds: store.save_vocabulary(v) for ds, v in paper.vocabularies.items()}
    say(f"{len(versions)} vocabularies (one per downstream set), {sum(map(len, paper.vocabularies.values()))} concepts")

    written: dict[tuple[str, str, str], tuple[str, dict[int, int]]] = {}  # (pretrain, method, version) -> first file
    skipped, conflicts = [], []
    files = [f for f in artifacts.count_files if f.downstream in versions
             and (datasets is None or f.pretrain in datasets) and (methods is None or f.method in methods)]
    for f in files:
        counts: dict[int, int] = {}
        for name, n in (artifacts.counts(f.downstream, f.pretrain, f.method) or {}).items():
            concept = paper.concept_id(f.downstream, name)
            if concept is not None:
                counts[concept] = max(n, counts.get(concept, 0))
        key = (f.pretrain, f.method, versions[f.downstream])
        if key in written:  # another downstream set with the same classes already wrote this version
            (skipped if written[key][1] == counts else conflicts).append(f"{f.shard} (same classes as {written[key][0]})")
            continue
        written[key] = (f.shard, counts)
        store.write_shard(ShardResult(f.pretrain, versions[f.downstream], f.shard, stage=f.kind, rule=f.method, counts=counts))
    for pretrain, version in sorted({(k[0], k[2]) for k in written}):
        store.advance_totals(pretrain, version)  # every shard of the import: queries answer from the totals
    say(f"{len(written)} count files imported, {len(skipped)} duplicates skipped, {len(conflicts)} conflicts")

    rows, models, unknown = [], set(), 0
    for (downstream, p) in sorted(artifacts.result_files):
        if (prompts is not None and p not in prompts) or downstream not in versions:
            continue
        for (model, pretrained), classwise in sorted(artifacts.evaluations(downstream, p).items()):
            if datasets is not None and pretrained not in datasets:
                continue
            models.add((model, pretrained))
            for name, accuracy in sorted(classwise.items()):
                concept = paper.concept_id(downstream, name)
                if concept is None:
                    unknown += 1
                    continue
                rows.append(ClassResult(model, pretrained, p, downstream, name, versions[downstream], concept, 0, 0, accuracy, "paper"))
    store.write_results(rows)
    say(f"{len(rows)} per-class results of {len(models)} models imported")
    return {"vocabularies": versions, "concepts": sum(map(len, paper.vocabularies.values())),
            "count_files": len(written), "duplicates_skipped": skipped, "conflicts": conflicts,
            "datasets": sorted({k[0] for k in written}), "methods": sorted({k[1] for k in written}),
            "evaluation_rows": len(rows), "unnamed_classes": unknown,
            "models": [f"{m} ({p})" for m, p in sorted(models)]}
