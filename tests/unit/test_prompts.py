"""Prompt modes and template averaging (core/prompts.py)."""

from __future__ import annotations

import numpy as np
import pytest

from conceptfreq.core.prompts import PROMPT_MODES, SIMPLE_TEMPLATE, TEMPLATE_SETS, average_prompts, make_prompts
from conceptfreq.errors import UserError


def test_modes_give_the_papers_prompts():
    assert set(PROMPT_MODES) == {"class", "simple", "ensemble"}
    assert make_prompts("class").texts(["great white shark"]) == ["great white shark"]
    assert make_prompts("simple").texts(["dog", "cat"]) == ["a photo of a dog.", "a photo of a cat."]
    assert SIMPLE_TEMPLATE == "a photo of a {}."


def test_ensemble_defaults_to_open_clips_80_openai_templates():
    from open_clip import OPENAI_IMAGENET_TEMPLATES

    prompts = make_prompts("ensemble")
    assert len(prompts.templates) == 80 and prompts.source == "openai_imagenet"
    assert prompts.texts(["dog"]) == [template("dog") for template in OPENAI_IMAGENET_TEMPLATES]
    assert len(make_prompts("ensemble", template_set="simple_imagenet").templates) == len(TEMPLATE_SETS["simple_imagenet"]()) == 7


def test_dataset_and_extra_templates():
    prompts = make_prompts("ensemble", dataset_templates=["a photo of a {c}.", "art of {c}"], extra=["a {} in the wild."])
    assert prompts.templates == ("a photo of a {}.", "art of {}", "a {} in the wild.")
    assert prompts.texts(["dog", "cat"])[:3] == ["a photo of a dog.", "art of dog", "a dog in the wild."]
    # Extra templates only extend the ensemble; the single-prompt modes stay the paper's.
    assert make_prompts("simple", extra=["x {}"]).templates == (SIMPLE_TEMPLATE,)


def test_keys_follow_the_exact_templates():
    a, b = make_prompts("ensemble"), make_prompts("ensemble", extra=["a {} again."])
    assert a.key == make_prompts("ensemble").key and a.key != b.key != make_prompts("simple").key


@pytest.mark.parametrize("template", ["no slot", "{} and {}", "a {x} photo", "a {} }"])
def test_bad_templates_are_user_errors(template):
    with pytest.raises(UserError, match="exactly one"):
        make_prompts("ensemble", extra=[template])


def test_unknown_mode_or_set():
    with pytest.raises(UserError, match="class, simple, ensemble"):
        make_prompts("fancy")
    with pytest.raises(UserError, match="openai_imagenet"):
        make_prompts("ensemble", template_set="nope")


def test_average_matches_clip_zero_shot():
    """Mean over templates, renormalized: what open_clip's build_zero_shot_classifier does."""
    rng = np.random.default_rng(0)
    raw = rng.standard_normal((3 * 4, 8)).astype(np.float32)
    raw /= np.linalg.norm(raw, axis=1, keepdims=True)
    classes = average_prompts(raw, 4)
    expected = raw.reshape(3, 4, 8).mean(axis=1)
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(classes, expected, rtol=1e-6)
    np.testing.assert_allclose(np.linalg.norm(classes, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError):
        average_prompts(raw, 5)
