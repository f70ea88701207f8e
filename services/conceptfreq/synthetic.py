"""Synthetic shards for the demo, the tests and the benchmarks.

Captions mention concept names verbatim inside varied templates. How often each name is drawn
follows a Zipf-like long tail (a few names are everywhere, many are rare or absent), so `top` and
`--rarest` have something to show. Everything is deterministic for a seed, and each shard's content
depends only on (seed, shard index), not on how many shards are written.

`mention_counts` gives the ground truth: how many samples' captions were built from each name.
Templates whose filler words would themselves spell a concept name (a vocabulary with `beach` and
the template "a photo of a {} on the beach") are left out, so the ground truth stays exact for
verbatim matching. One overlap is left to the vocabulary: a caption built from `tabby cat` also
contains `cat`, and a matcher rightly counts both.
"""

from __future__ import annotations

import io
import random
import re
import tarfile
from collections import Counter
from pathlib import Path
from typing import Collection, Iterator, NamedTuple

from conceptfreq.adapters.shards import SHARD_FORMATS
from conceptfreq.errors import UserError

# One list per number of mentioned names. Fillers are kept plain so that they rarely collide with
# a vocabulary; `IMG_{n}` stands for the camera-default captions real web data is full of.
TEMPLATES: dict[int, tuple[str, ...]] = {
    0: (
        "IMG_{n}",
        "untitled",
        "view from the window this morning",
        "stock photo in high resolution",
        "abstract background with soft light",
        "a quiet moment before the storm",
        "click to enlarge",
    ),
    1: (
        "a photo of a {}",
        "a photo of a {} on the beach",
        "close-up of a {}",
        "{} in the wild",
        "a painting of a {}",
        "my {} yesterday afternoon",
        "a blurry photo of the {}",
        "an illustration of a {} for kids",
        "the {} we saw on holiday",
        "{} -- stock image",
    ),
    2: (
        "{} and {} in the park",
        "a {} next to a {}",
        "a photo of a {} with a {}",
        "vintage poster showing a {} and a {}",
    ),
    3: (
        "{}, {} and {} on a table",
        "a {}, a {} and a {} together",
        "collage: {} / {} / {}",
    ),
}
# Probability of a caption mentioning 0, 1, 2 or 3 names.
MENTION_WEIGHTS = (0.25, 0.45, 0.20, 0.10)
ZIPF_EXPONENT = 1.1
_SHARD_EXTENSIONS = {"tar": "tar", "parquet": "parquet", "tsv": "tsv"}


def _mentions_any(text: str, names: Collection[str]) -> bool:
    lowered = f" {' '.join(re.findall(r'[a-z0-9]+', text.lower()))} "
    for name in names:
        words = " ".join(re.findall(r"[a-z0-9]+", name.lower()))
        # Crude plurals too: a lemmatizing matcher would count "beaches" as "beach".
        if words and any(f" {words}{suffix} " in lowered for suffix in ("", "s", "es")):
            return True
    return False


def _templates_avoiding(avoid: Collection[str]) -> dict[int, tuple[str, ...]]:
    usable = {}
    for arity, templates in TEMPLATES.items():
        kept = tuple(t for t in templates if not _mentions_any(t.replace("{}", " ").replace("{n}", " "), avoid))
        # Bare separators as the last resort, so every arity always has a template.
        usable[arity] = kept or (("IMG_{n}",) if arity == 0 else ("; ".join(["{}"] * arity),))
    return usable


def caption_for(rng: random.Random, concept_names: list[str], *, avoid: Collection[str] = ()) -> str:
    """A natural-looking caption mentioning each of concept_names (0 to 3 of them) verbatim.

    Templates whose filler words spell one of `avoid` (typically the whole vocabulary) are not used.
    """
    if len(concept_names) > max(TEMPLATES):
        raise ValueError(f"a caption mentions at most {max(TEMPLATES)} names, got {len(concept_names)}")
    templates = _templates_avoiding(avoid)[len(concept_names)] if avoid else TEMPLATES[len(concept_names)]
    return _fill(rng, rng.choice(templates), concept_names)


def _fill(rng: random.Random, template: str, names: list[str]) -> str:
    if "{n}" in template:
        return template.replace("{n}", f"{rng.randrange(10000):04d}")
    return template.format(*names)


class SyntheticSample(NamedTuple):
    shard: int
    key: str
    names: tuple[str, ...]
    caption: str


def _zipf_weights(concept_names: list[str], seed: int) -> list[float]:
    # Ranks are shuffled by the seed, so the head of the tail is not simply the vocabulary's first names.
    ranks = list(range(len(concept_names)))
    random.Random(f"zipf:{seed}").shuffle(ranks)
    return [1.0 / (rank + 1) ** ZIPF_EXPONENT for rank in ranks]


def _draw_names(rng: random.Random, concept_names: list[str], weights: list[float]) -> tuple[str, ...]:
    count = min(rng.choices(range(len(MENTION_WEIGHTS)), MENTION_WEIGHTS)[0], len(concept_names))
    drawn: list[str] = []
    while len(drawn) < count:
        name = rng.choices(concept_names, weights)[0]
        if name not in drawn:
            drawn.append(name)
    return tuple(drawn)


def _key_width(samples_per_shard: int) -> int:
    return max(4, len(str(max(samples_per_shard - 1, 0))))


def iter_samples(*, n_shards: int, samples_per_shard: int, concept_names: list[str], seed: int = 0) -> Iterator[SyntheticSample]:
    """The samples write_shards writes, in order; keys are the shard index then the sample index,
    all digits like img2dataset's, so they never contain the dot webdataset splits on."""
    names = list(dict.fromkeys(concept_names))
    weights = _zipf_weights(names, seed)
    templates = _templates_avoiding(names)
    width = _key_width(samples_per_shard)
    for shard in range(n_shards):
        rng = random.Random(f"{seed}:{shard}")
        for index in range(samples_per_shard):
            drawn = _draw_names(rng, names, weights) if names else ()
            caption = _fill(rng, rng.choice(templates[len(drawn)]), list(drawn))
            yield SyntheticSample(shard, f"{shard:05d}{index:0{width}d}", drawn, caption)


def mention_counts(*, n_shards: int, samples_per_shard: int, concept_names: list[str], seed: int = 0) -> Counter:
    """Ground truth: per name, how many samples' captions mention it (names never drawn are absent)."""
    counts: Counter = Counter()
    for sample in iter_samples(n_shards=n_shards, samples_per_shard=samples_per_shard, concept_names=concept_names, seed=seed):
        counts.update(sample.names)
    return counts


def _jpeg(rng: random.Random, size: int) -> bytes:
    from PIL import Image  # Pillow comes with matplotlib; only image-writing callers need it.

    if rng.random() < 0.5:
        image = Image.new("RGB", (size, size), tuple(rng.randrange(256) for _ in range(3)))
    else:
        image = Image.frombytes("RGB", (size, size), rng.randbytes(size * size * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def _sample_url(key: str) -> str:
    return f"https://example.com/images/{key}.jpg"


def _write_tar(path: Path, samples: list[SyntheticSample], images: dict[str, bytes]) -> None:
    from webdataset import TarWriter

    # A fixed mtime makes the archive bytes, not just their content, reproducible.
    with TarWriter(str(path), mtime=0) as sink:
        for index, sample in enumerate(samples):
            record = {"__key__": sample.key}
            # Every other sample carries its caption in KEY.json, as img2dataset does, to exercise both.
            if index % 2:
                record["json"] = {"caption": sample.caption, "key": sample.key, "url": _sample_url(sample.key)}
            else:
                record["txt"] = sample.caption
            if sample.key in images:
                record["jpg"] = images[sample.key]
            sink.write(record)


def _write_parquet(path: Path, samples: list[SyntheticSample], images: dict[str, bytes]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = {
        "key": [s.key for s in samples],
        "caption": [s.caption for s in samples],
        "url": [_sample_url(s.key) for s in samples],
    }
    if images:
        columns["jpg"] = pa.array([images[s.key] for s in samples], type=pa.binary())
    # Small row groups, so readers really go batch by batch even on small test shards.
    pq.write_table(pa.table(columns), path, row_group_size=1000)


def _write_tsv(path: Path, samples: list[SyntheticSample], images: dict[str, bytes]) -> None:
    with open(path, "w", encoding="utf-8", newline="\n") as out:
        for sample in samples:
            out.write(f"{sample.caption}\t{_sample_url(sample.key)}\n")


_WRITERS = {"tar": _write_tar, "parquet": _write_parquet, "tsv": _write_tsv}


def write_shards(
    out_dir,
    *,
    n_shards: int,
    samples_per_shard: int,
    concept_names: list[str],
    seed: int = 0,
    format: str = "tar",
    with_images: bool = False,
    image_size: int = 64,
    name: str = "synthetic",
) -> list[str]:
    """Write `{name}-{00000..}.{format}` under out_dir and return their paths in order."""
    if format not in SHARD_FORMATS:
        raise UserError(f"unknown shard format {format!r}; supported: {', '.join(SHARD_FORMATS)}")
    if with_images and format == "tsv":
        raise UserError("TSV shards hold captions only; use format='tar' or 'parquet' for images")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    by_shard: list[list[SyntheticSample]] = [[] for _ in range(n_shards)]
    for sample in iter_samples(n_shards=n_shards, samples_per_shard=samples_per_shard, concept_names=concept_names, seed=seed):
        by_shard[sample.shard].append(sample)
    paths = []
    for shard, samples in enumerate(by_shard):
        path = out / f"{name}-{shard:05d}.{_SHARD_EXTENSIONS[format]}"
        images = {}
        if with_images:
            image_rng = random.Random(f"{seed}:{shard}:images")
            images = {s.key: _jpeg(image_rng, image_size) for s in samples}
        _WRITERS[format](path, samples, images)
        paths.append(str(path))
    return paths


def brace_pattern(paths: list[str]) -> str:
    """One braceexpand pattern for paths, e.g. "dir/synthetic-{00000..00003}.tar"."""
    import braceexpand

    if not paths:
        raise ValueError("no paths to make a pattern of")
    if len(paths) == 1:
        return paths[0]
    prefix = _common_prefix(paths)
    suffix = _common_prefix([p[len(prefix):][::-1] for p in paths])[::-1]
    # Pull digits back out of the prefix so the range covers whole zero-padded numbers.
    prefix = prefix.rstrip("0123456789")
    middles = [p[len(prefix):len(p) - len(suffix)] for p in paths]
    numbers = [int(m) if m.isdigit() else None for m in middles]
    consecutive = (
        None not in numbers
        and len({len(m) for m in middles}) == 1
        and numbers == list(range(numbers[0], numbers[0] + len(numbers)))
    )
    middle = f"{{{middles[0]}..{middles[-1]}}}" if consecutive else "{" + ",".join(middles) + "}"
    pattern = prefix + middle + suffix
    if list(braceexpand.braceexpand(pattern)) != list(paths):
        raise ValueError(f"paths cannot be written as one brace pattern: {paths[:3]}...")
    return pattern


def _common_prefix(strings: list[str]) -> str:
    shortest = min(strings, key=len)
    for index, char in enumerate(shortest):
        if any(s[index] != char for s in strings):
            return shortest[:index]
    return shortest


# --- shards that go wrong, for the tests and the demo's failure path ------------------------------


def tar_bytes(members: list[tuple[str, bytes]]) -> bytes:
    """An uncompressed tar of (member name, data) pairs, in order."""
    # tarfile rather than TarWriter: tests hand-craft members, some deliberately broken.
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for member_name, data in members:
            info = tarfile.TarInfo(member_name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _truncated_tar() -> bytes:
    members = [(f"{i:04d}.txt", f"a photo of sample {i}".encode()) for i in range(4)]
    whole = tar_bytes(members)
    with tarfile.open(fileobj=io.BytesIO(whole)) as tar:
        last = tar.getmembers()[-1]
    # Cut inside the last member's data, so three samples read fine before the error.
    return whole[: last.offset_data + last.size // 2]


def write_bad_shards(out_dir) -> dict[str, str]:
    """{kind: path} of shards that exercise every failure path.

    Unreadable shards (ShardError): truncated_tar, not_tar, empty, missing (a path that is not
    written). Readable shards with one bad sample after a good one (key 0000 is fine, 0001 is bad):
    invalid_utf8, empty_caption, huge_caption (70 KiB), bad_json.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    good = ("0000.txt", b"a photo of a dog")
    contents = {
        "truncated_tar": _truncated_tar(),
        "not_tar": b"this is a plain text file, not a tar archive\n" * 40,
        "empty": b"",
        "invalid_utf8": tar_bytes([good, ("0001.txt", b"caf\xe9 by the sea \xff\xfe")]),
        "empty_caption": tar_bytes([good, ("0001.txt", b"")]),
        "huge_caption": tar_bytes([good, ("0001.txt", b"a very long caption " * (70 * 1024 // 20))]),
        "bad_json": tar_bytes([good, ("0001.json", b'{"caption": "unterminated')]),
    }
    paths = {}
    for kind, data in contents.items():
        path = out / f"bad-{kind}.tar"
        path.write_bytes(data)
        paths[kind] = str(path)
    missing = out / "bad-missing.tar"
    missing.unlink(missing_ok=True)
    paths["missing"] = str(missing)
    return paths


__all__ = [
    "SyntheticSample",
    "brace_pattern",
    "caption_for",
    "iter_samples",
    "mention_counts",
    "tar_bytes",
    "write_bad_shards",
    "write_shards",
]
