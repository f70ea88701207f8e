"""`conceptfreq query` must answer at once: building the CLI may not import the heavy libraries
that only some commands need (torch through webdataset, inflect, matplotlib, the Kafka client)."""

import json
import subprocess
import sys

HEAVY = ["torch", "inflect", "matplotlib", "open_clip", "spacy", "kafka", "tritonclient", "statsmodels", "onnxruntime"]


def test_building_the_cli_imports_no_heavy_library():
    code = ("import sys, json; from conceptfreq.cli import build_parser; build_parser(); "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert loaded == [], f"imported at CLI start-up: {loaded}; import them inside the command's run()"
