"""`make bench`: every benchmark, printed as one table (figure, baseline, ratio).

Each module tests/bench/bench_*.py exposes `run() -> list[dict]` with rows of
{benchmark, figure, value, unit, baseline, baseline_value, ratio}; ratios are measured side by
side in the same run, because this machine is noisy. `python -m tests.bench matching` runs one."""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
import time
from pathlib import Path


def _fmt(value) -> str:
    if value is None or value == "":
        return "-"
    if isinstance(value, float):
        return f"{value:,.3f}" if abs(value) < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def print_table(rows: list[dict]) -> None:
    columns = [("benchmark", "benchmark"), ("figure", "figure"), ("value", "value"), ("unit", "unit"),
               ("baseline", "baseline"), ("baseline_value", "baseline value"), ("ratio", "ratio")]
    cells = [[_fmt(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(title), *(len(c[i]) for c in cells)) if cells else len(title) for i, (_, title) in enumerate(columns)]
    print(" | ".join(title.ljust(w) for (_, title), w in zip(columns, widths)))
    print("-+-".join("-" * w for w in widths))
    for c in cells:
        print(" | ".join(v.rjust(w) if i in (2, 5, 6) else v.ljust(w) for i, (v, w) in enumerate(zip(c, widths))))


def main(argv: list[str]) -> int:
    here = Path(__file__).parent
    names = sorted(m.name[len("bench_"):] for m in pkgutil.iter_modules([str(here)]) if m.name.startswith("bench_"))
    wanted = argv or names
    rows: list[dict] = []
    for name in wanted:
        started = time.monotonic()
        print(f"running bench_{name} ...", file=sys.stderr, flush=True)
        module = importlib.import_module(f"tests.bench.bench_{name}")
        rows.extend(module.run())
        print(f"  bench_{name} took {time.monotonic() - started:.0f}s", file=sys.stderr, flush=True)
    print()
    print_table(rows)
    out = Path("build") / "bench.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))
    print(f"\n(rows also in {out})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
