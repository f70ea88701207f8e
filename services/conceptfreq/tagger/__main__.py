"""The tagger: shard images to image hits, through an open_clip model (Triton or in process)."""
from conceptfreq.commands.serve import main_for

main_for("tagger")
