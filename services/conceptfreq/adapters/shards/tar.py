"""The one tar reader: scans 512-byte member headers itself and seeks past payloads nobody wants.

Why not `tarfile` + webdataset: on a text-only pass over a webdataset shard, `tarfile`'s header
parsing (a TarInfo object per member, every field decoded) and webdataset's `group_by_keys` took
most of the time, and importing webdataset pulls in torch (2.2 s of start-up per worker measured
here on a loaded 2-core machine). Reading only the fields a sample needs, and finding runs of
plain members with numpy (names and keys a run at a time, handed on whole as a PlainRun), the
text stage reads wds-text and img2dataset shards 15-26x faster than tarfile + group_by_keys did
(tests/bench/bench_readers.py measures both side by side).

Not kept: GNU sparse members are refused (a ShardError) rather than expanded, and header fields
a shard reader never uses (mode, owner, mtime) are not parsed, so garbage there with a valid
checksum is no longer an error.

What is kept from them, exactly:
- webdataset's key rule (`base_plus_ext`): key = member path up to the first dot of its basename,
  extension = the rest, lower-cased; members of a sample are consecutive; `__*__` members at the
  top level (webdataset's meta members, e.g. `__index__`) and non-regular members are skipped;
- ustar/GNU/pax names: the ustar prefix, GNU long names (`L`), pax `path=`/`size=` (also from a
  global `g` header), old-style directories (a regular type whose name ends in `/`);
- tarfile's acceptance rules: both checksum variants (unsigned and the signed one some old tars
  wrote), an archive that ends after one zero block, gzip/bzip2/xz detected from the first bytes;
- and the strictness the shard readers added on top of tarfile: an archive that stops without
  its end-of-archive block, is cut inside a header or inside data, or has a garbage header
  mid-archive is an error, never a silently short shard.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import re
import struct
import zlib
from zlib import adler32
from typing import BinaryIO, Iterator

BLOCK = 512
_ZERO_BLOCK = bytes(BLOCK)
_CHUNK = 1 << 20
# A refill reads enough for about this many members, from 1 to _MAX_CHUNKS_PER_READ chunks: the
# numpy work per buffer has a fixed part, and a 1 MiB buffer holds ~1,000 members of a text-only
# shard but only ~200 of an img2dataset one (12 KB JPEGs). Measured reader-only on those: the
# img2dataset shard at 58-61k samples/s with 1 MiB reads, 95-105k/s with 4 MiB; the text-only
# one slower with 4 MiB than with 1 (the buffer and its arrays no longer fit the caches).
_MEMBERS_PER_READ = 1024
_MAX_CHUNKS_PER_READ = 4
# The fast path's numpy set-up costs about as much as a few dozen headers parsed one by one, so it
# runs only on a buffer with that much left.
_FAST_MIN = 32 * BLOCK
# Local files: a skip of less than this many bytes past the buffered data is read and dropped
# rather than seeked over. Measured on a page-cached img2dataset shard (12 KB JPEGs, text path):
# 1 MiB reads that take the images along ran at 54.6k samples/s, seeking past every image with
# 16 KiB reads in between at 42.5k/s (4 KiB: 38.3k/s); so small payloads stream, and a seek is
# kept for payloads big enough (videos, huge images) that reading them costs more than a syscall.
LOCAL_SEEK_MIN = 256 * 1024
# Non-regular types whose size field says nothing about what follows (tarfile skips no data for
# them); every other type, known or not, is followed by `size` bytes of data.
_NO_DATA_TYPES = frozenset(b"123456")
_SIGNED = struct.Struct("148b8x356b")
_WDS_KEY = re.compile(r"^((?:.*/|)[^.]+)[.]([^/]*)$")


class TarFormatError(Exception):
    """The archive is corrupt or cut short; the message is the reason, in one line."""


class TarTruncated(TarFormatError):
    pass


def split_key(name: str) -> tuple[str | None, str | None]:
    """webdataset's `base_plus_ext`: ("dir/a", "b.txt") for "dir/a.b.txt"; (None, None) if no dot."""
    if "/" not in name and "\n" not in name:
        dot = name.find(".")
        return (name[:dot], name[dot + 1:]) if dot > 0 else (None, None)
    match = _WDS_KEY.match(name)
    return (match.group(1), match.group(2)) if match else (None, None)


def member_key(name: str) -> tuple[str | None, str | None]:
    """A regular member's webdataset key and lower-cased extension, or (None, None) for webdataset's
    `__*__` meta members and names without one. The common case (a plain `KEY.ext`) is split here
    without split_key's regular expression."""
    meta = name.startswith("__") and name.endswith("__")
    if "/" not in name and "\n" not in name:
        dot = name.find(".")
        return (name[:dot], name[dot + 1:].lower()) if dot > 0 and not meta else (None, None)
    if "/" not in name and meta:
        return None, None
    key, extension = split_key(name)
    return key, extension.lower() if extension is not None else None


class _Prefixed:
    """A stream whose first bytes were already read (to sniff compression), for a decompressor."""

    def __init__(self, head: bytes, raw: BinaryIO):
        self._head, self._raw = head, raw

    def read(self, size: int = -1) -> bytes:
        if self._head:
            head, self._head = self._head, b""
            if size < 0:
                return head + self._raw.read()
            if len(head) >= size:
                self._head = head[size:]
                return head[:size]
            return head + self._raw.read(size - len(head))
        return self._raw.read(size)


def _read_full(raw, size: int) -> bytes:
    """`size` bytes, or fewer only at the end of the stream (pipes may return short reads)."""
    data = raw.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = raw.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)


def _octal(field: bytes, what: str) -> int:
    if field[0] & 0x80:  # GNU base-256 for values that do not fit in octal
        value = int.from_bytes(field[1:], "big")
        return value - (256 ** (len(field) - 1)) if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise TarFormatError(f"invalid header ({what} field {text!r})") from None


def _checksum_ok(header: bytes) -> bool:
    stored = _octal(header[148:156], "checksum")
    # Each half of a header sums to at most 256 * 255 < 65521, so adler32's low half is exactly
    # 1 + the byte sum: the unsigned checksum without a Python loop over 512 bytes.
    total = (zlib.adler32(header[:256]) & 0xFFFF) + (zlib.adler32(header[256:]) & 0xFFFF) - 2
    if total - sum(header[148:156]) + 256 == stored:
        return True
    return 256 + sum(_SIGNED.unpack_from(header)) == stored


def _name(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes, into: dict[str, str]) -> None:
    position = 0
    while position < len(data) and data[position:position + 1] != b"\0":
        space = data.find(b" ", position)
        try:
            length = int(data[position:space]) if space > position else 0
        except ValueError:
            length = 0
        record = data[position:position + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record[space - position:]:
            raise TarFormatError("corrupt pax header (missing or bad subsequent header)")
        keyword, _, value = record[space - position + 1:-1].partition(b"=")
        into[keyword.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        position += length


_COMPRESSIONS = (
    (b"\x1f\x8b", lambda stream: gzip.GzipFile(fileobj=stream)),
    (b"BZh", bz2.BZ2File),
    (b"\xfd7zXZ\x00", lzma.LZMAFile),
)


def open_archive(raw: BinaryIO, *, seek_min: int | None) -> tuple[BinaryIO, bytes, int | None]:
    """(stream, first bytes already read from it, seek_min) with any compression undone.
    `seek_min`: skip by seeking when at least this many bytes would otherwise be read and dropped;
    None never seeks (pipes, decompressed streams)."""
    head = _read_full(raw, _CHUNK)
    for magic, opener in _COMPRESSIONS:
        if head.startswith(magic):
            return opener(_Prefixed(head, raw)), b"", None
    return raw, head, seek_min


def _octal_columns(fields, digits: int):
    """Octal values of header fields (rows of a uint8 array) spelt the way tarfile and GNU tar write
    them: `digits` octal digits, then NUL or space. Rows spelt any other way get -1 and take the
    exact per-header path."""
    import numpy as np

    lead = fields[:, :digits]
    spelt = ((lead >= 48) & (lead <= 55)).all(axis=1) & ((fields[:, digits] == 0) | (fields[:, digits] == 32))
    values = (lead.astype(np.int64) - 48) @ (8 ** np.arange(digits - 1, -1, -1, dtype=np.int64))
    return np.where(spelt, values, -1)


class _Plain:
    """Per-buffer arrays for the fast path: the 512-byte blocks of a buffer that may be plain member
    headers (regular type "0", the usual size spelling, no ustar prefix), the size each gives and
    where the member after it would start, so that runs of plain members are found and their
    checksums verified in a few numpy passes."""

    def __init__(self, buf: bytes):
        import numpy as np

        blocks = len(buf) // BLOCK
        self.array = array = np.frombuffer(buf, dtype=np.uint8, count=blocks * BLOCK).reshape(blocks, BLOCK)
        # Type "0" only: an old-style NUL type may be a directory (a name ending in "/").
        candidates = np.flatnonzero((array[:, 156] == 48) & (array[:, 345] == 0) & (array[:, 0] != 0))
        sizes = _octal_columns(array[candidates, 124:136], 11)
        spelt = sizes >= 0
        self.headers, sizes = candidates[spelt], sizes[spelt]
        self.sizes = np.full(blocks, -1, dtype=np.int64)
        self.sizes[self.headers] = sizes
        # Where the member after each candidate header would start.
        self.following = self.headers + 1 + ((sizes + 511) >> 9)
        self.blocks = blocks

    def run(self, first: int):
        """Block indices (an array) of the plain headers from block `first` on whose data lies in
        the buffer and whose checksums hold, stopping before anything else (which the exact path
        handles).

        The chain is found without walking it: it is the candidate headers from `first` on, as long
        as each one's member ends where the next candidate starts. A block inside a member's data
        that looks like a header only ends the chain early; the next run starts after it."""
        import numpy as np

        at = int(np.searchsorted(self.headers, first))
        if at == len(self.headers) or self.headers[at] != first:
            return self.headers[:0]
        headers, following = self.headers[at:], self.following[at:]
        linked = np.append(following[:-1] == headers[1:], False)
        inside = following <= self.blocks
        last = int(np.flatnonzero(~(linked & inside))[0])  # the chain ends here, this header in if its data is
        chain = headers[:last + 1] if inside[last] else headers[:last]
        if not len(chain):
            return chain
        heads = self.array[chain]
        stored = _octal_columns(heads[:, 148:156], 6)
        # uint32 holds any header's byte sum (at most 512 * 255) and sums twice as fast as int64.
        total = heads.sum(axis=1, dtype=np.uint32).astype(np.int64) - heads[:, 148:156].sum(axis=1, dtype=np.int64) + 256
        bad = np.flatnonzero(stored != total)
        return chain[: bad[0]] if len(bad) else chain

    def names_and_keys(self, chain) -> tuple[list[str], list[str | None], list[str | None]]:
        """The names of a run's headers (up to the first NUL, as tarfile reads them) and their
        member_key, as a list of keys and one of extensions, for the whole run at once: one copy of
        the name fields, one decode, and for the usual names (no `/`, no newline, no `__` meta name)
        a str.partition each instead of a call of member_key each, or where each has one dot, one
        split of them all."""
        import numpy as np

        fields = np.ascontiguousarray(self.array[chain, :100])
        raw = fields.view("S100").ravel().tolist()  # numpy drops the trailing NULs
        joined_raw = b"\0".join(raw)
        if joined_raw.count(b"\0") != len(raw) - 1:  # a field with bytes after its first NUL: cut there
            joined_raw = b"\0".join(name.split(b"\0", 1)[0] for name in raw)
        joined = joined_raw.decode("utf-8", "surrogateescape")
        names = joined.split("\0")
        if "/" in joined or "\n" in joined or "__" in joined:
            pairs = [member_key(name) for name in names]
            return names, [key for key, _ in pairs], [extension for _, extension in pairs]
        # One dot (46) in every field (counted over the whole field: bytes after a name's NUL only
        # send the run the slower way): the key and extension of each name are one split away.
        if joined.count(".") == len(names) and ((fields == 46).view(np.uint8).sum(axis=1, dtype=np.uint8) == 1).all():
            parts = joined.replace(".", "\0").split("\0")  # key, extension, key, extension, ...
            keys = parts[0::2]
            if "" not in keys:  # `.hidden` has no key
                return names, keys, "\0".join(parts[1::2]).lower().split("\0")
        parts = [name.partition(".") for name in names]
        return (names, [key if dot and key else None for key, dot, _ in parts],
                [extension.lower() if dot and key else None for key, dot, extension in parts])


class PlainRun:
    """Consecutive plain members whose headers and data all lie in `buf`: each member's name, its
    member_key as a key and an extension (None: not a sample member), and where its data starts in
    `buf` and its size. Every member's data is there, wanted or not."""

    __slots__ = ("buf", "names", "keys", "extensions", "starts", "sizes")

    def __init__(self, buf: bytes, names: list[str], keys: list[str | None], extensions: list[str | None], starts: list[int],
                 sizes: list[int]):
        self.buf, self.names, self.keys, self.extensions, self.starts, self.sizes = buf, names, keys, extensions, starts, sizes

    def members(self, wanted: frozenset[str] | None, lo: int = 0,
                hi: int | None = None) -> Iterator[tuple[str, str, str, bytes | None]]:
        """What `members` gives for the run's members [lo, hi)."""
        buf, starts, sizes = self.buf, self.starts, self.sizes
        for index in range(lo, len(self.keys) if hi is None else hi):
            key, extension = self.keys[index], self.extensions[index]
            if key is not None:
                data = buf[starts[index]:starts[index] + sizes[index]] if wanted is None or extension in wanted else None
                yield self.names[index], key, extension, data


def members(raw: BinaryIO, wanted: frozenset[str] | None, *, seek_min: int | None = None) -> Iterator[tuple[str, str, str, bytes | None]]:
    """(member name, webdataset key, lower-cased extension, data) of each regular member with a
    key, in archive order; data is None unless the extension is in `wanted` (None: all).
    Raises TarFormatError (TarTruncated for a cut archive)."""
    for item in scan(raw, wanted, seek_min=seek_min):
        if type(item) is PlainRun:
            yield from item.members(wanted)
        else:
            yield item


def scan(raw: BinaryIO, wanted: frozenset[str] | None, *,
         seek_min: int | None = None) -> Iterator[PlainRun | tuple[str, str, str, bytes | None]]:
    """What `members` gives, with each run of plain members as one PlainRun (most of a shard's
    members, in runs of a buffer's worth), for readers that take a run at a time."""
    stream, buf, seek_min = open_archive(raw, seek_min=seek_min)
    pos = 0
    base = 0  # archive offset of buf[0]
    pax_global: dict[str, str] = {}

    reads = _CHUNK  # bytes a refill reads: grown where members are large (see _MEMBERS_PER_READ)

    def fill(buf: bytes, pos: int, need: int) -> bytes:
        # Returns a buffer that starts at `pos` of the old one and holds `need` bytes if the stream has them.
        rest = buf[pos:]
        try:
            more = _read_full(stream, max(reads, need - len(rest)))
        except EOFError:
            raise TarTruncated("truncated: the compressed stream ends early") from None
        return rest + more if rest else more

    plain: _Plain | None = None
    plain_buf = None
    while True:
        # --- a run of plain members, the common case, walked without parsing each header ------
        if not pax_global and len(buf) - pos >= _FAST_MIN:
            if plain_buf is not buf:
                plain, plain_buf = _Plain(buf), buf
            chain = plain.run(pos // BLOCK)
            if len(chain):
                sizes = plain.sizes[chain]
                yield PlainRun(buf, *plain.names_and_keys(chain), ((chain + 1) * BLOCK).tolist(), sizes.tolist())
                end = (int(chain[-1]) + 1) * BLOCK + ((int(sizes[-1]) + 511) & ~511)
                span = (end - pos) // len(chain)  # bytes per member
                reads = _CHUNK * min(max(span * _MEMBERS_PER_READ // _CHUNK, 1), _MAX_CHUNKS_PER_READ)
                pos = end
                continue

        # --- one member: its header chain (pax / GNU long name headers, then the real one) -----
        name = None
        pax: dict[str, str] | None = None
        while True:
            offset = base + pos
            if len(buf) - pos < BLOCK:
                buf = fill(buf, pos, BLOCK)
                base, pos = offset, 0
                available = len(buf)
                if available == 0:
                    if offset == 0:
                        raise TarFormatError("empty file")
                    raise TarTruncated("truncated: the archive ends without its end-of-archive block")
                if available < BLOCK:
                    if offset == 0:
                        raise TarFormatError("not a tar archive (truncated header)")
                    raise TarTruncated("truncated inside a member header")
            header = buf[pos:pos + BLOCK]
            pos += BLOCK
            if header == _ZERO_BLOCK:
                if name is not None or pax is not None:
                    raise TarFormatError("truncated or corrupt tar (missing or bad subsequent header)")
                return
            # Fast path: the common octal checksum, summed by halves with adler32 (see _checksum_ok);
            # anything unusual takes the exact, slower check.
            field = header[148:156]
            try:
                valid = int(field.rstrip(b"\0 "), 8) == (adler32(header[:256]) & 0xFFFF) + (adler32(header[256:]) & 0xFFFF) + 254 - sum(field)
            except ValueError:
                valid = False
            detail = "bad checksum"
            if not valid:
                try:
                    valid = _checksum_ok(header)
                except TarFormatError as exc:
                    valid, detail = False, str(exc)
            if not valid:
                if offset == 0:
                    raise TarFormatError(f"not a tar archive ({detail})")
                if name is not None or pax is not None:
                    raise TarFormatError("truncated or corrupt tar (missing or bad subsequent header)")
                raise TarFormatError(f"corrupt member header at byte {offset} ({detail})")
            kind = header[156]
            try:
                size = int(header[124:136].rstrip(b"\0 "), 8)
            except ValueError:
                size = _octal(header[124:136], "size")
            if kind in (0x4C, 0x78, 0x67, 0x4B):  # GNU long name "L", pax "x" / global "g", GNU long link "K"
                padded = -(-size // BLOCK) * BLOCK
                if len(buf) - pos < padded:
                    here = base + pos
                    buf = fill(buf, pos, padded)
                    base, pos = here, 0
                    if len(buf) < padded:
                        raise TarTruncated("truncated or corrupt tar (unexpected end of data)")
                data = buf[pos:pos + size]
                pos += padded
                if kind == 0x4C:
                    name = _name(data)
                elif kind == 0x78:
                    pax = dict(pax_global) if pax is None else pax
                    _pax_records(data, pax)
                elif kind == 0x67:
                    _pax_records(data, pax_global)
                continue
            break

        # --- the member itself ------------------------------------------------------------
        if name is None:
            name = header[:100].split(b"\0", 1)[0].decode("utf-8", "surrogateescape")
            if header[345] and kind not in (0x4C, 0x4B, 0x53):
                name = _name(header[345:500]) + "/" + name
        if pax is None and pax_global:
            pax = pax_global
        if pax:
            if "path" in pax:
                name = pax["path"]
            if "size" in pax:
                try:
                    size = int(pax["size"])
                except ValueError:
                    raise TarFormatError("corrupt pax header (size is not a number)") from None
            if any(key.startswith("GNU.sparse.") for key in pax):
                raise TarFormatError(f"sparse member {name!r} is not supported in a shard")
        key = extension = None
        if kind == 0x30 or (kind == 0 and not name.endswith("/")) or kind == 0x37:
            key, extension = member_key(name)
        elif kind == 0x53:
            raise TarFormatError(f"sparse member {name!r} is not supported in a shard")
        elif kind in _NO_DATA_TYPES or kind == 0:
            size = 0
        padded = (size + 511) & ~511

        # --- its data: read when wanted, else skipped (seeked over when that is cheaper) ------
        data = None
        if key is not None and (wanted is None or extension in wanted):
            if len(buf) - pos < padded:
                here = base + pos
                buf = fill(buf, pos, padded)
                base, pos = here, 0
                if len(buf) < size:
                    raise TarTruncated("truncated or corrupt tar (unexpected end of data)")
            data = buf[pos:pos + size]
            pos += padded
            yield name, key, extension, data
            continue
        left = len(buf) - pos
        if padded <= left:
            pos += padded
        else:
            beyond = padded - left
            if seek_min is not None and beyond >= seek_min:
                stream.seek(beyond, 1)
            else:
                while beyond:
                    try:
                        dropped = len(stream.read(min(beyond, _CHUNK)))
                    except EOFError:
                        raise TarTruncated("truncated: the compressed stream ends early") from None
                    if not dropped:
                        raise TarTruncated("truncated inside member data")
                    beyond -= dropped
            base, buf, pos = base + pos + padded, b"", 0
        if key is not None:
            yield name, key, extension, None


def group(scanned: Iterator[tuple[str, str, str, bytes | None]], url: str | None = None) -> Iterator[dict]:
    """Samples as webdataset's group_by_keys makes them: `__key__`, `__url__` and one entry per
    extension (None for unwanted data); a repeated extension within a key is corruption."""
    current: dict | None = None
    for name, key, extension, data in scanned:
        if current is None or key != current["__key__"]:
            if current is not None:
                yield current
            current = {"__key__": key, "__url__": url}
        if extension in current:
            raise TarFormatError(f"corrupt webdataset tar: {name}: duplicate file name in tar file {extension}")
        current[extension] = data
    if current is not None:
        yield current
