"""The evaluator: per-class and per-concept zero-shot performance (the other axis of the paper's plots)."""
