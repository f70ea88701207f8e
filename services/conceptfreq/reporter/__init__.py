"""The reporter: scaling-trend fits, predictions, data budgets, long-tail sets and reports, over the
count store or the paper's published artifacts (see analysis.py for what a source provides)."""
