"""The tagger: which concepts each image shows, scored by an open_clip model (Triton or in process)."""
