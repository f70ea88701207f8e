"""Shard URLs: local paths or any fsspec URL, and patterns of them (braces, globs)."""

from __future__ import annotations

import os
import re

import braceexpand
import fsspec
import fsspec.core

from conceptfreq.errors import UserError

_FSSPEC_EXAMPLES = "file://, memory://, s3://, gs://, az://, https://, hf://"


class UnsupportedShardURL(UserError):
    """The URL's scheme or the shard's format is not one we can read."""



def filesystem(url: str):
    """fsspec's (filesystem, path) for url, with its import/protocol errors made actionable."""
    protocol = fsspec.core.split_protocol(url)[0]
    try:
        return fsspec.core.url_to_fs(url)
    except ImportError as exc:
        raise UnsupportedShardURL(f"{url}: reading {protocol}:// needs a package that is not installed ({exc})") from None
    except ValueError as exc:
        if "Protocol not known" not in str(exc):
            raise
        raise UnsupportedShardURL(
            f"{url}: unknown URL scheme {protocol!r}; use a local path or an fsspec URL "
            f"({_FSSPEC_EXAMPLES}) with that protocol's package installed"
        ) from None


def _is_glob(url: str) -> bool:
    protocol = fsspec.core.split_protocol(url)[0]
    # In http(s) URLs `?` starts the query string, not a wildcard.
    magic = r"[*\[]" if protocol in ("http", "https") else r"[*?\[]"
    return re.search(magic, url) is not None


def _glob(pattern: str) -> list[str]:
    fs, path = filesystem(pattern)
    matches = sorted(name for name, info in fs.glob(path, detail=True).items() if info.get("type") == "file")
    if not matches:
        raise UserError(f"no shards match {pattern!r}")
    protocol = fsspec.core.split_protocol(pattern)[0]
    if protocol is not None:
        return [fs.unstrip_protocol(match) for match in matches]
    if not pattern.startswith("/"):
        # fsspec answers with absolute paths; keep a relative pattern's answers relative, like braces.
        return [os.path.relpath(match) for match in matches]
    return matches


def expand_shards(pattern: str) -> list[str]:
    """Shard URLs of a brace pattern (`data/cc3m-{00000..00331}.tar`) and/or glob, in order.

    Brace-expanded paths are returned whether or not they exist, so a missing shard ends as a failed
    shard rather than silently vanishing; a glob that matches nothing is a UserError.
    """
    pattern = pattern.strip()
    if not pattern:
        raise UserError("the shard pattern is empty")
    try:
        candidates = list(braceexpand.braceexpand(pattern))
    except braceexpand.UnbalancedBracesError:
        raise UserError(f"unbalanced braces in shard pattern {pattern!r}") from None
    urls: list[str] = []
    checked_protocols: set[str | None] = set()
    for candidate in candidates:
        if _is_glob(candidate):
            urls.extend(_glob(candidate))
            continue
        protocol = fsspec.core.split_protocol(candidate)[0]
        if protocol not in checked_protocols:  # once per scheme: patterns expand to 100k+ shards
            filesystem(candidate)
            checked_protocols.add(protocol)
        urls.append(candidate)
    return list(dict.fromkeys(urls))


def shard_size(url: str) -> int | None:
    """The shard's size in bytes, or None when the filesystem cannot tell (or it is missing)."""
    fs, path = filesystem(url)
    try:
        info = fs.info(path)
    except (OSError, ValueError):
        return None
    size = info.get("size")
    return int(size) if size is not None and info.get("type", "file") == "file" else None
