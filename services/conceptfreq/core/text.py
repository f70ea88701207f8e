"""Caption normalization shared by concepts and captions.

Both sides go through the same steps, so a concept and a caption agree on what a word is:
NFKC, lower case, and every run of non-word characters (punctuation, hyphens, apostrophes,
curly quotes, underscores, whitespace) collapsed to one space. Matching then happens on
space-delimited words, which is what makes whole-word matching a substring search.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Iterator, Sequence

import numpy as np

# Caption separator inside a normalized block: a control byte that the ASCII table keeps, so
# that it survives normalization and can be located with one vectorized scan.
SEPARATOR = b"\x01"
_SEPARATOR_STR = SEPARATOR.decode()

# A run of anything that is not a letter or digit (underscore included).
_NON_WORD = re.compile(r"(?:\W|_)+")


def _ascii_table() -> bytes:
    """bytes.translate table: lower-case ASCII letters, turn other ASCII non-word bytes into spaces,
    keep the separator and every byte >= 0x80 (UTF-8 continuation of already-normalized text)."""
    table = bytearray(range(256))
    for code in range(128):
        char = chr(code)
        if char.isupper():
            table[code] = ord(char.lower())
        elif not char.isalnum() and bytes([code]) != SEPARATOR:
            table[code] = ord(" ")
    return bytes(table)


_ASCII_TABLE = _ascii_table()


def normalize_phrase(text: str) -> str:
    """The general (slow) path for one string: NFKC, lower case, non-word runs to one space."""
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).lower())


def phrase_key(text: str) -> str:
    """The normalized word sequence of one phrase, without padding: `T-Shirt` -> `t shirt`."""
    return normalize_phrase(text).strip()


def words(text: str) -> list[str]:
    return phrase_key(text).split()


def normalize_captions(captions: Sequence[str]) -> bytes:
    """Normalize a batch of captions into one UTF-8 buffer: ` w w \\x01 w w w \\x01 ... `.

    Every word has exactly one space on each side and captions are divided by SEPARATOR. The
    work is a handful of C passes over the whole batch (join, encode, translate, a numpy space
    collapse) instead of several Python calls per caption; only captions with non-ASCII text take
    the per-caption Unicode path, and that path yields output the ASCII passes leave unchanged.
    """
    if not isinstance(captions, (list, tuple)):
        captions = list(captions)
    if not all(map(str.isascii, captions)):  # one C-level pass when, as usual, every caption is ASCII
        captions = [c if c.isascii() else normalize_phrase(c) for c in captions]
    data = (" " + f" {_SEPARATOR_STR} ".join(captions) + " ").encode()
    if data.count(SEPARATOR) != max(len(captions) - 1, 0):  # a caption carries the separator byte itself
        captions = [c.replace(_SEPARATOR_STR, " ") for c in captions]
        data = (" " + f" {_SEPARATOR_STR} ".join(captions) + " ").encode()
    return _collapse_spaces(data.translate(_ASCII_TABLE))


def normalize_lines(data: bytes) -> bytes:
    """normalize_captions(data.decode("utf-8", "replace").split("\\n")), on the bytes: an ASCII
    block never becomes str objects, a block with non-ASCII lines decodes only those."""
    if SEPARATOR in data:
        data = data.replace(SEPARATOR, b" ")
    if not data.isascii():
        data = _normalize_non_ascii_lines(data)
    return _collapse_spaces((b" " + data.replace(b"\n", b" " + SEPARATOR + b" ") + b" ").translate(_ASCII_TABLE))


def _normalize_non_ascii_lines(data: bytes) -> bytes:
    """`data` with each line that has a non-ASCII byte through normalize_phrase (decoded with
    replacement): the lines are found with numpy, so the ASCII lines (most of them) are neither
    split out nor tested one by one. No normalized line has a `\\n` of its own."""
    array = np.frombuffer(data, np.uint8)
    line_ends = np.flatnonzero(array == 0x0A)
    lines = np.unique(np.searchsorted(line_ends, np.flatnonzero(array >= 0x80)))
    starts = np.concatenate([[0], line_ends + 1])[lines].tolist()
    ends = np.append(line_ends, len(data))[lines].tolist()
    pieces, done = [], 0
    for start, end in zip(starts, ends):
        pieces += [data[done:start], normalize_phrase(data[start:end].decode("utf-8", "replace")).encode()]
        done = end
    pieces.append(data[done:])
    return b"".join(pieces)


def line_blocks(data: bytes, size: int) -> Iterator[bytes]:
    """`data` (lines divided by `\\n`) cut at the first line end after every `size` bytes: blocks of
    whole lines, found with one byte search per block instead of a pass over every line end."""
    start = 0
    while len(data) - start > size:
        cut = data.find(b"\n", start + size)
        if cut < 0:
            break
        yield data[start:cut]
        start = cut + 1
    yield data[start:]


def _collapse_spaces(data: bytes) -> bytes:
    """Each run of spaces to one space."""
    array = np.frombuffer(data, dtype=np.uint8)
    space = array == 0x20
    keep = np.ones(array.size, dtype=bool)
    keep[1:] = ~(space[1:] & space[:-1])
    return array[keep].tobytes()
