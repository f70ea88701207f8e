"""Error paths an operator meets: each is one line with the documented exit code, and each skip or
failure carries the right reason (transient or permanent)."""

from __future__ import annotations

import io
import socket
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from conceptfreq.adapters.images import ImageSkipped, open_image
from conceptfreq.adapters.shards import ShardError, read_shard
from conceptfreq.adapters.store.tables import Tables
from conceptfreq.cli import main as cli
from conceptfreq.errors import UnavailableError
from tests.paths import REPO


def jpeg() -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    return buf.getvalue()


def test_a_jpeg_cut_short_is_truncated_whichever_way_pillow_words_it():
    data = jpeg()
    messages = {}
    for cut in range(20, len(data), 7):
        with pytest.raises(ImageSkipped) as skipped:
            open_image(data[:cut])
        messages.setdefault(str(skipped.value).split(": ", 1)[1].split(" (")[0], set()).add(skipped.value.reason)
    assert "Truncated File Read" in messages, messages  # Pillow's capitalised wording is among them
    assert messages["Truncated File Read"] == {"truncated"}
    assert messages["image file is truncated"] == {"truncated"}


def test_a_shard_server_that_refuses_the_connection_is_transient():
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens, connections are refused
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(UnavailableError, match="connection failed"):
        list(read_shard(f"http://127.0.0.1:{port}/shard-0.tar"))


def test_a_missing_local_shard_stays_permanent(tmp_path):
    with pytest.raises(ShardError, match="missing: no such file"):
        list(read_shard(str(tmp_path / "absent.tar")))


class FullDisk:
    """chDB's error on a full disk, word for word."""

    database, location = "db", "chdb:///full"
    ERROR = ("Code: 243. DB::Exception: Cannot reserve 1.00 MiB, not enough space: While executing WaitForAsyncInsert. "
             "(NOT_ENOUGH_SPACE)\n    0. DB::Exception::Exception(...)")

    def execute(self, sql, params):
        raise RuntimeError(self.ERROR)

    def insert(self, table, columns, rows):
        raise RuntimeError(self.ERROR)

    def insert_columns(self, table, columns):
        raise RuntimeError(self.ERROR)


def test_a_full_disk_is_one_unavailable_line():
    tables = Tables(FullDisk())
    for write in (lambda: tables._insert("t", ["a"], [(1,)]), lambda: tables._insert_columns("t", {"a": [1]}),
                  lambda: tables._execute("SELECT 1")):
        with pytest.raises(UnavailableError) as raised:
            write()
        message = str(raised.value)
        assert "\n" not in message and "out of disk space" in message and "NOT_ENOUGH_SPACE" in message


def test_count_of_an_unsupported_shard_url_is_one_line_exit_2(tmp_path, capsys):
    (tmp_path / "x.zip").write_bytes(b"PK")
    code = cli(["count", "--dataset", "d", "--shards", str(tmp_path / "x.zip"), "--store", f"chdb://{tmp_path / 'store'}"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "cannot tell the shard format" in err and "internal error" not in err


def test_a_busy_metrics_port_is_one_line_exit_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "conceptfreq.parser", "--bus", "inproc://", "--store", f"chdb://{tmp_path / 's'}",
                               "--port", "0", "--metrics-port", str(port)], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith(f"conceptfreq serve: cannot serve metrics on port {port}")
