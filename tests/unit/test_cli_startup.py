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


# What the text path (`match`, and `count` reading a parquet shard) never needs: torch and
# webdataset are the image path's; the store client, gRPC and Kafka are not used by `match`.
TEXT_PATH_NEVER = ["torch", "webdataset", "open_clip", "PIL", "matplotlib", "spacy"]
MATCH_NEVER = TEXT_PATH_NEVER + ["clickhouse_driver", "chdb", "grpc", "kafka", "fsspec", "pyarrow"]


def _loaded_after(code: str, env: dict, names: list[str]) -> list[str]:
    script = f"import sys, json\n{code}\nprint(json.dumps([m for m in {names!r} if m in sys.modules]), file=sys.stderr)"
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env)
    return json.loads(run.stderr.strip().splitlines()[-1])


def test_the_match_command_imports_only_what_matching_needs(tmp_path):
    import os

    captions = tmp_path / "captions.txt"
    captions.write_text("a dog on a bench\ntwo geese\n")
    env = {**os.environ, "CONCEPTFREQ_CACHE_DIR": str(tmp_path / "cache")}
    code = f"from conceptfreq.cli import main\nmain(['match', '--input', {str(captions)!r}])"
    cold = _loaded_after(code, env, MATCH_NEVER)
    assert cold == [], f"imported by `conceptfreq match`: {cold}"
    # With the compiled matcher cached, not even the inflection engine (and its typeguard) is loaded.
    warm = _loaded_after(code, env, MATCH_NEVER + ["inflect", "typeguard"])
    assert warm == [], f"imported by `conceptfreq match` with a cached matcher: {warm}"


def test_counting_a_parquet_shard_imports_no_image_library(tmp_path):
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    shard = tmp_path / "shard.parquet"
    pq.write_table(pa.table({"key": ["a", "b"], "caption": ["a dog on a bench", "two geese"]}), shard)
    env = {**os.environ, "CONCEPTFREQ_CACHE_DIR": str(tmp_path / "cache")}
    code = ("from conceptfreq.cli import build_parser\nbuild_parser('count')\nimport conceptfreq.pipeline.run\n"
            "from conceptfreq.parser.stage import ParseShard\nfrom conceptfreq.core.vocabulary import default\n"
            f"result = ParseShard(default()).run('test', {str(shard)!r})\nassert result.samples == 2, result")
    loaded = _loaded_after(code, env, TEXT_PATH_NEVER)
    assert loaded == [], f"imported by the text stage of `conceptfreq count`: {loaded}"


def test_a_named_command_builds_only_its_own_parser():
    from conceptfreq.cli import build_parser, named_command

    assert named_command(["-v", "match", "--input", "x"]) == "match"
    assert named_command(["import-paper", "--help"]) == "import_paper"
    assert named_command(["no-such-command"]) is None and named_command(["--help"]) is None
    args = build_parser(named_command(["match", "--method", "bag"])).parse_args(["match", "--method", "bag"])
    assert args.command == "match" and args.method == "bag"
