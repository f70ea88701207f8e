"""Zero-shot metrics (core/evaluation.py), eval set readers, and the classification stage, with
answers known by construction: a "color" backend reads an image's color, so an image painted with
another class's color is a known mistake."""

from __future__ import annotations

import io
import json
import math
import tarfile

import numpy as np
import pytest

from conceptfreq.adapters.inference import INFERENCE_SCHEMES, open_inference
from conceptfreq.core.evaluation import (ClassTally, image_to_text_ranks, map_classes, overall_recall, paper_json,
                                         per_concept_recall, summarize, tally, text_to_image_ranks, top_k)
from conceptfreq.core.vocabulary import from_names, parse_text
from conceptfreq.errors import UserError
from conceptfreq.adapters.shards import eval_set_format, open_eval_set
from conceptfreq.evaluator.plan import LabelIndex, plan
from conceptfreq.evaluator.stage import ClassifyShard
from conceptfreq.evaluator.synthetic import (COLOR_NAMES, ColorBackend, samples, write_csv, write_imagefolder, write_parquet,
                                             write_wds)
from conceptfreq.evaluator.synthetic import color_backend as color_backend_opener

COLORS = COLOR_NAMES


@pytest.fixture
def color_backend(monkeypatch):
    monkeypatch.setitem(INFERENCE_SCHEMES, "color", color_backend_opener)
    return ColorBackend()


# Six classes whose names sort in class order, as ImageFolder orders its folders.
CLASS_COLORS = [2, 7, 6, 9, 1, 5]
NAMES = [COLORS[c] for c in CLASS_COLORS]
assert NAMES == sorted(NAMES)
# (class, i-th image) -> the class whose color it is painted with: the known mistakes.
PAINT = {(0, 0): 1, (0, 1): 2, (1, 0): 0, (3, 0): 0, (3, 1): 1, (3, 2): 2, (3, 3): 5, (5, 4): 0}
PER_CLASS = [4, 4, 4, 4, 4, 5]


def hand_check():
    """Per class: (top-1 correct, top-5 correct, total), from the paint alone. With one-hot scores the
    ranking is the painted class, then the others in index order, so top-5 of 6 classes misses only
    the last class not painted."""
    top1, top5 = [0] * 6, [0] * 6
    for label in range(6):
        for i in range(PER_CLASS[label]):
            painted = PAINT.get((label, i), label)
            ranking = [painted] + [c for c in range(6) if c != painted]
            top1[label] += ranking[0] == label
            top5[label] += label in ranking[:5]
    return top1, top5, PER_CLASS


def test_metrics_by_hand():
    predictions = top_k(np.eye(3, dtype=np.float32)[[0, 1, 1, 2]], np.eye(3, dtype=np.float32))
    assert predictions.tolist() == [[0, 1, 2], [1, 0, 2], [1, 0, 2], [2, 0, 1]]
    counts = tally([0, 1, 2, 2], predictions, 3)
    assert counts.correct_top1.tolist() == [1, 1, 1] and counts.total.tolist() == [1, 1, 2]
    summary = summarize(counts, ["a", "b", "c"], [7, None, 9])
    assert summary.top1 == 75.0 and summary.mean_per_class_recall == pytest.approx((100 + 100 + 50) / 3)
    assert [c.name for c in summary.worst_first()] == ["c", "a", "b"]
    assert summary.classes[1].concept_id is None
    empty = summarize(ClassTally.zeros(2), ["a", "b"])
    assert math.isnan(empty.top1) and math.isnan(empty.mean_per_class_recall)


def test_tallies_of_shards_add_up_to_the_whole():
    rng = np.random.default_rng(1)
    labels, predictions = rng.integers(0, 7, 500), rng.integers(0, 7, (500, 5))
    whole = tally(labels, predictions, 7)
    parts = ClassTally.zeros(7)
    for start in range(0, 500, 77):
        parts += tally(labels[start:start + 77], predictions[start:start + 77], 7)
    for name in ("correct_top1", "correct_top5", "total"):
        assert getattr(parts, name).tolist() == getattr(whole, name).tolist()


def test_retrieval_ranks_and_recall_per_concept():
    images = np.eye(4, dtype=np.float32)
    # captions 0,1 -> image 0; 2 -> 1; 3 -> 2 (but looks like image 3); 4 -> 3
    texts = np.eye(4, dtype=np.float32)[[0, 0, 1, 3, 3]] + np.float32(0.01) * np.arange(5)[:, None]
    owner = [0, 0, 1, 2, 3]
    t2i = text_to_image_ranks(texts, images, owner, chunk=2)
    assert t2i.tolist() == [0, 0, 0, 1, 0]
    i2t = image_to_text_ranks(texts, images, owner, chunk=3)
    assert i2t.tolist() == [0, 0, 1, 0]  # image 2: its caption (0.03) is behind caption 4 (0.04)
    assert overall_recall(t2i, (1, 5)) == {1: 80.0, 5: 100.0}
    recalls = per_concept_recall(t2i, [[10], [10, 11], [11], [12], []], "t2i", (1, 5))
    table = {(r.concept_id, r.k): (r.hits, r.total) for r in recalls}
    assert table == {(10, 1): (2, 2), (10, 5): (2, 2), (11, 1): (2, 2), (11, 5): (2, 2), (12, 1): (0, 1), (12, 5): (1, 1)}


def test_class_mapping_reports_what_is_doubtful():
    vocabulary = parse_text("dog|puppy\nhot dog|dog sausage\ncrane|crane bird\ncrane machine|crane\ncat\n")
    mapping = map_classes(["dogs", "crane", "unicorn", "Cat", "puppy"], vocabulary)
    names = {c.id: c.name for c in vocabulary}
    assert [names.get(i) for i in mapping.concept_ids] == ["dog", "crane", None, "cat", "dog"]
    assert mapping.unmapped == ["unicorn"]
    assert mapping.ambiguous == [("crane", ["crane", "crane machine"])]
    assert mapping.shared == [("dog", ["dogs", "puppy"])]
    assert any("unicorn" in line for line in mapping.report())


def test_label_index():
    vocabulary = from_names([["great white shark", "white shark"], ["dog"]])
    index = LabelIndex(["great white shark", "dog"], vocabulary)
    assert [index(x) for x in (0, 1, 2, -1, "dog", "Dog", "1", "white shark", "cat", None)] == [0, 1, None, None, 1, 1, 1, 0, None, None]


def test_paper_json_layout_round_trips_through_the_reporters_reader(tmp_path):
    from conceptfreq.reporter.paper import PaperArtifacts

    counts = tally([0, 0, 1, 1], np.array([[0], [1], [1], [1]]), 2)
    document = paper_json("ViT-B-32", "laion400m_e32", summarize(counts, ["plane", "great white shark"]))
    assert document == {"backboneViT-B-32_pretrainedlaion400m_e32": {"full": 75.0, "classwise": {"plane": 50.0, "great white shark": 100.0}}}
    (tmp_path / "search_counts").mkdir()
    (tmp_path / "zero_shot_evaluations").mkdir()
    (tmp_path / "zero_shot_evaluations" / "syn_ensemble_results.json").write_text(json.dumps(document))
    assert PaperArtifacts(tmp_path).evaluations("syn", "ensemble") == {("ViT-B-32", "laion400m_e32"): {"plane": 50.0, "great white shark": 100.0}}


def _write(layout, root, items):
    if layout == "imagefolder":
        return str(write_imagefolder(root / "if", NAMES, items))
    if layout == "wds":
        return str(write_wds(root / "wds", NAMES, items, shards=3))
    if layout == "parquet":
        return str(write_parquet(root / "pq", NAMES, items, files=2))
    return str(write_csv(root / "csv" / "manifest.csv", NAMES, items))


@pytest.mark.parametrize("layout", ["imagefolder", "wds", "parquet", "csv"])
def test_known_answers_in_every_layout(tmp_path, color_backend, layout):
    items = samples(6, PER_CLASS, paint=PAINT, seed=2, size=16, colors=CLASS_COLORS)
    url = _write(layout, tmp_path, items)
    assert eval_set_format(url) == layout
    evalset = open_eval_set(url, shard_size=7)
    assert evalset.classnames == NAMES
    vocabulary = from_names([[n] for n in COLORS])
    spec, mapping = plan(url, model="conceptfreq-tiny", pretrained=None, precision="fp32", vocabulary=vocabulary, prompts="ensemble",
                         data_options={"shard_size": 7})
    assert mapping.unmapped == [] and spec.concept_ids == CLASS_COLORS
    assert spec.shards == evalset.shards() and len(spec.shards) >= 2
    backend = open_inference("color://", spec.model, None)
    from conceptfreq.core.prompts import average_prompts

    classes = average_prompts(backend.encode_texts(spec.prompts.texts(NAMES)), len(spec.prompts.templates))
    stage = ClassifyShard(backend, classes, LabelIndex(NAMES, vocabulary), batch_size=3)
    total = ClassTally.zeros(6)
    for shard in spec.shards:
        total += stage.run(evalset, shard)
    top1, top5, n = hand_check()
    assert (total.correct_top1.tolist(), total.correct_top5.tolist(), total.total.tolist()) == (top1, top5, n)
    assert total.skipped == {}


def test_bad_samples_are_counted_and_skipped(tmp_path, color_backend):
    items = samples(2, 2, seed=3, size=16, colors=CLASS_COLORS)
    root = write_wds(tmp_path / "wds", NAMES[:2], items, shards=1)
    with tarfile.open(root / "test" / "1.tar", "w") as tar:
        for name, data in [("bad.jpg", b"garbage"), ("bad.cls", b"0"), ("nolabel.jpg", items[0][1]),
                           ("far.jpg", items[0][1]), ("far.cls", b"7"), ("noimage.cls", b"1")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    evalset = open_eval_set(str(root))
    stage = ClassifyShard(ColorBackend(), np.eye(12, dtype=np.float32)[CLASS_COLORS[:2]], LabelIndex(NAMES[:2]), batch_size=2)
    counts = stage.run(evalset, evalset.shards()[1])
    assert counts.samples == 0
    assert counts.skipped == {"undecodable": 1, "no_label": 1, "unknown_label": 1, "no_image": 1}


def test_planning_errors(tmp_path):
    items = samples(3, 2, seed=4, size=16)
    root = write_imagefolder(tmp_path / "if", ["dog", "cat", "unicorn"], items)
    vocabulary = from_names([["dog"], ["cat"]])
    with pytest.raises(UserError, match="1 of 3 classes map to no concept.*unicorn"):
        plan(str(root), model="conceptfreq-tiny", pretrained=None, precision="fp32", vocabulary=vocabulary)
    spec, mapping = plan(str(root), model="conceptfreq-tiny", pretrained=None, precision="fp32", vocabulary=vocabulary,
                         allow_unmapped=True)
    assert spec.classnames == ["cat", "dog", "unicorn"] and spec.concept_ids == [1, 0, None]
    (root / "empty_class").mkdir()
    with pytest.raises(UserError, match="no images: empty class"):
        plan(str(root), model="conceptfreq-tiny", pretrained=None, precision="fp32", vocabulary=vocabulary, allow_unmapped=True)
    with pytest.raises(UserError, match="unknown model 'ViT-Q-99'"):
        plan(str(tmp_path / "if"), model="ViT-Q-99", pretrained=None, precision="fp32", vocabulary=vocabulary)
    wds = write_wds(tmp_path / "wds", None, items, shards=1)
    with pytest.raises(UserError, match="does not name its classes"):
        plan(str(wds), model="conceptfreq-tiny", pretrained=None, precision="fp32", vocabulary=vocabulary)
    with pytest.raises(UserError, match="both named"):
        plan(str(wds), model="conceptfreq-tiny", pretrained=None, precision="fp32", vocabulary=vocabulary,
             classnames=["dog", "Dog", "cat"])


@pytest.mark.parametrize("string_labels", [True, False])
def test_class_names_from_the_vocabulary(tmp_path, color_backend, string_labels):
    """Every concept is a class; the dataset's labels (names, or indices into its own ClassLabel
    names) still find their class."""
    items = samples(6, PER_CLASS, paint=PAINT, seed=5, size=16, colors=CLASS_COLORS)
    root = write_parquet(tmp_path / "pq", NAMES, items, string_labels=string_labels)
    vocabulary = from_names([[n] for n in reversed(COLORS)])  # concept order differs from the dataset's
    spec, _ = plan(str(root), model="conceptfreq-tiny", pretrained=None, precision="fp32", vocabulary=vocabulary,
                   classnames="vocab", prompts="simple")
    assert spec.classnames == list(reversed(COLORS))
    backend = ColorBackend()
    classes = backend.encode_texts(spec.prompts.texts(spec.classnames))
    assert spec.label_names == NAMES
    stage = ClassifyShard(backend, classes, LabelIndex(spec.classnames, vocabulary, spec.label_names))
    total = ClassTally.zeros(len(COLORS))
    for shard in spec.shards:
        total += stage.run(spec.open(), shard)
    top1, _, n = hand_check()
    by_name = dict(zip(spec.classnames, zip(total.correct_top1.tolist(), total.total.tolist())))
    assert {name: by_name[name] for name in NAMES} == {name: (top1[i], n[i]) for i, name in enumerate(NAMES)}
