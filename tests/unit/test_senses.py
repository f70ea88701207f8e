"""phrase+pos: part-of-speech and sense decisions for ambiguous surface forms (core.senses), the
lexicon they come from (core.lexicon), and how they score on the hand-labelled CC-3M captions."""

from __future__ import annotations

import pytest

from conceptfreq.core.counting import count_text
from conceptfreq.core.lexicon import LexiconError, WordNet, wordnet
from conceptfreq.core.matching import MATCHERS, make_matcher
from conceptfreq.core.pos_matching import rules_for
from conceptfreq.core.vocabulary import default, parse_text
from tests.labelled.senses import rows, score

pytestmark = pytest.mark.skipif(not WordNet.available(), reason="WordNet 3.0 (Debian wordnet-base) is not installed")

# The precision the new method must reach at the recall it must keep to become the default.
TARGET_PRECISION, TARGET_RECALL = 0.90, 0.95


@pytest.fixture(scope="module")
def vocabulary():
    return default()


@pytest.fixture(scope="module")
def pos(vocabulary):
    return make_matcher(vocabulary, "phrase+pos")


def concepts_of(matcher, vocabulary, caption: str) -> tuple[set[str], set[str]]:
    """(counted concept names, ambiguous concept names) of one caption."""
    names = {c.id: c.name for c in vocabulary}
    hits = matcher.match([caption])
    return {names[i] for i in hits.per_caption()[0]}, {names[i] for i in hits.ambiguous}


def test_lexicon_reads_wordnet():
    lexicon = wordnet()
    tags = lexicon.tag_counts("watch")
    assert tags["v"] > tags["n"] > 0  # SemCor uses `watch` mostly as a verb
    assert 1608432 in lexicon.noun_offsets("kite")  # ImageNet's n01608432, the bird
    assert "rise" in lexicon.verb_lemmas_of_form("rose")
    assert "teddy" in {first for first, _ in lexicon.compounds_before("bear")}
    provenance = lexicon.provenance()
    assert set(provenance["sha256"]) >= {"index.noun", "data.noun", "cntlist.rev"}


def test_missing_lexicon_says_how_to_install_it(tmp_path):
    with pytest.raises(LexiconError, match="apt-get install wordnet-base"):
        WordNet(tmp_path)


def test_ambiguous_forms_are_derived_from_the_lexicon(vocabulary):
    summary = rules_for(vocabulary).summary()
    assert {"watch", "watches", "fly", "flies", "swing", "train"} <= set(summary["verb"])
    assert {"orange", "safe", "lighter"} <= set(summary["adjective"])
    assert summary["modal"] == ["can"]
    assert {"jersey", "boxer", "kite", "basketball"} <= set(summary["sense"])
    everything = {form for forms in summary.values() for form in forms}
    assert not everything & {"dog", "cat", "man", "beach", "sky", "car"}  # nouns in practice: never asked about


def test_any_vocabulary_gets_rules():
    custom = parse_text("watch\nkite\nlighthouse\n")
    rules = rules_for(custom)
    assert {form for form, _ in rules.rules} >= {"watch", "watches"}
    assert not any(form.startswith("lighthouse") for form, _ in rules.rules)
    # Without senses in the file there is nothing to tell a kite from a kite: only parts of speech.
    assert not any(rule.senses for rule in rules.rules.values())


@pytest.mark.parametrize("caption, counted, not_counted", [
    ("pair of new bright orange modern sneakers", {"sneaker"}, {"orange"}),
    ("an orange dress", set(), {"orange"}),
    ("fresh oranges on the table", {"orange", "table"}, set()),
    ("a glass of orange juice", {"orange"}, set()),
    ("the yellow lifeguard tower watches over the people", {"tower"}, {"watch"}),
    ("thousands gather to watch the races", set(), {"watch"}),
    ("a gold watch", {"watch"}, set()),
    ("i 'll fly away tattoo", set(), {"fly"}),
    ("a tiny fly rests on a leaf", {"fly"}, set()),
    ("the cottage can sleep people", set(), {"can"}),
    ("you can buy this house", {"house"}, {"can"}),
    ("a can of beer", {"can"}, set()),
    ("professional boxer waits to find out if the fight is over", set(), {"Boxer"}),
    ("a boxer dog on the grass", {"Boxer", "dog"}, set()),
    ("politician flies a kite after the festival", set(), {"kite (bird of prey)"}),
    ("blonde child lying next to a teddy bear", set(), {"bear"}),
    ("a brown grizzly bear stands in the water", {"bear"}, set()),
    ("kids on a swing in the park", {"swing", "park"}, set()),
    ("is it safe to swim here", set(), {"safe"}),
])
def test_decisions_on_real_caption_patterns(pos, vocabulary, caption, counted, not_counted):
    found, _ = concepts_of(pos, vocabulary, caption)
    assert counted <= found
    assert not (not_counted & found)


def test_undecidable_sense_is_ambiguous_not_counted(pos, vocabulary):
    found, ambiguous = concepts_of(pos, vocabulary, "pop artist in a jersey")
    assert "Jersey" not in found and "Jersey" in ambiguous  # the island, or the shirt: no word says which
    found, ambiguous = concepts_of(pos, vocabulary, "a football player wearing a jersey and a t-shirt")
    assert "Jersey" not in found | ambiguous  # the shirt: wearing, t-shirt


def test_phrase_is_unchanged_by_the_new_method(vocabulary):
    caption = "the crowd watches an orange kite"
    found, ambiguous = concepts_of(make_matcher(vocabulary, "phrase"), vocabulary, caption)
    assert {"watch", "orange", "kite (bird of prey)"} <= found and not ambiguous


def test_counts_record_the_method_and_the_ambiguous_note(pos, vocabulary):
    class Sample:
        def __init__(self, key, caption):
            self.key, self.caption, self.invalid_utf8, self.problem = key, caption, False, None

    samples = [Sample("a", "pop artist in a jersey"), Sample("b", "a gold watch"), Sample("c", "they watch tv")]
    result = count_text(samples, pos, dataset="d", vocabulary_version=vocabulary.version, shard="s")
    watch = vocabulary.get("watch").id
    assert result.rule == "phrase+pos"
    assert result.counts == {watch: 1}
    assert result.notes == {"ambiguous": 1}


def test_methods_are_named():
    assert {"phrase", "phrase+pos", "bag"} <= set(MATCHERS)


# --- the hand-labelled captions ----------------------------------------------------------------

def test_labelled_set_is_real_and_large_enough(vocabulary):
    labelled = rows()
    assert len(labelled) >= 300
    assert {r.meant for r in labelled} == {True, False}
    phrase = make_matcher(vocabulary, "phrase")
    hits = phrase.match([r.caption for r in labelled]).per_caption()
    # Every row is a phrase hit of its concept: the set measures decisions, not the phrase search.
    assert all(vocabulary.get(r.concept).id in found for r, found in zip(labelled, hits))


def test_phrase_pos_beats_phrase_on_the_labelled_captions(vocabulary, pos):
    labelled = rows()
    phrase = score(make_matcher(vocabulary, "phrase"), vocabulary, labelled)
    new = score(pos, vocabulary, labelled)
    assert phrase.recall == 1.0  # by construction of the set
    # Regression guards at the measured level (see the README), not the target itself.
    assert new.precision >= phrase.precision + 0.10
    assert new.recall >= 0.88


def test_default_method_meets_the_target_or_is_not_the_default(vocabulary, pos):
    from conceptfreq.core.matching import DEFAULT_METHOD

    new = score(pos, vocabulary, rows())
    meets = new.precision >= TARGET_PRECISION and new.recall >= TARGET_RECALL
    assert (DEFAULT_METHOD == "phrase+pos") == meets
