"""A controlled world: synthetic image-caption data whose true concepts are known (generate, with
concepts, captions and render), a small CLIP trained in it (train), and the pipeline's counts and
trend scored against that truth (truth). `conceptfreq synth`, `train-clip` and `world-report` drive
it; `make demo` runs the whole story."""
