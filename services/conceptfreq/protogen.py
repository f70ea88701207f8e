"""Regenerate (or, with --check, verify) the Python code of proto/conceptfreq/v1.

The generated modules live in services/conceptfreq/v1/, so the proto package `conceptfreq.v1`
and the Python package `conceptfreq.v1` are the same name and generated imports just work.
"""

from __future__ import annotations

import argparse
import filecmp
import shutil
import sys
import tempfile
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROTO_ROOT = REPO / "proto"
OUTPUT_ROOT = REPO / "services"
GENERATED = OUTPUT_ROOT / "conceptfreq" / "v1"


def generate(output_root: Path) -> list[Path]:
    from grpc_tools import protoc

    sources = sorted((PROTO_ROOT / "conceptfreq" / "v1").glob("*.proto"))
    include = str(resources.files("grpc_tools") / "_proto")
    args = ["protoc", f"-I{PROTO_ROOT}", f"-I{include}", f"--python_out={output_root}",
            f"--pyi_out={output_root}", f"--grpc_python_out={output_root}", *map(str, sources)]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed; see the messages above")
    package = output_root / "conceptfreq" / "v1"
    (package / "__init__.py").write_text('"""Generated from proto/conceptfreq/v1 by `make proto`; do not edit."""\n')
    return sorted(package.iterdir())


def stale_files() -> list[str]:
    """Names of generated files that differ from what the current protos would give."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = {p.name: p for p in generate(Path(tmp)) if p.is_file()}
        current = {p.name: p for p in GENERATED.iterdir() if p.is_file()} if GENERATED.is_dir() else {}
        names = set(fresh) | set(current)
        return sorted(n for n in names if n not in fresh or n not in current or not filecmp.cmp(fresh[n], current[n], shallow=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the generated code is stale")
    args = parser.parse_args(argv)
    if args.check:
        stale = stale_files()
        if stale:
            print(f"generated protobuf code is stale ({', '.join(stale)}): run `make proto`", file=sys.stderr)
            return 1
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        if GENERATED.exists():
            shutil.rmtree(GENERATED)
        shutil.copytree(Path(tmp) / "conceptfreq" / "v1", GENERATED)
    print(f"generated {GENERATED.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
