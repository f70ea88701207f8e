"""The counter: folds stage results into per-shard completion and per-concept totals."""
