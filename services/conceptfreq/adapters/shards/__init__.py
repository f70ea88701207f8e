"""Every reader of samples: training shards (a webdataset `.tar`, a parquet file or a CC-3M style
TSV: training.py) and downstream evaluation sets (image folders, clip_benchmark tars, parquet,
CSV manifests: evalsets.py), anywhere fsspec can open them (urls.py), with one table of what counts
as an image (formats.py)."""

from conceptfreq.adapters.shards.evalsets import EVAL_FORMATS, EvalSample, EvalSet, eval_set_format, open_eval_set
from conceptfreq.adapters.shards.formats import IMAGE_EXTENSIONS
from conceptfreq.adapters.shards.training import (CAPTIONS_FROM, SHARD_FORMATS, Sample, ShardError, preload_readers,
                                                  read_caption_batches, read_shard, shard_format, tar_groups)
from conceptfreq.adapters.shards.urls import UnsupportedShardURL, expand_shards, filesystem, shard_size

__all__ = ["EVAL_FORMATS", "EvalSample", "EvalSet", "eval_set_format", "open_eval_set", "IMAGE_EXTENSIONS", "SHARD_FORMATS",
           "CAPTIONS_FROM", "Sample", "ShardError", "preload_readers", "read_caption_batches", "read_shard", "shard_format",
           "tar_groups", "UnsupportedShardURL", "expand_shards", "filesystem", "shard_size"]
