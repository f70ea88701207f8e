"""Compiled caption matchers on disk, so that a process starts matching in a fraction of a second.

Building a matcher means computing every concept's surface forms (inflect) and, for `phrase+pos`,
deriving sense rules from all of WordNet: seconds, paid by every `conceptfreq match`, every
`count` worker process and every parser replica. core.matching.compile_matcher turns that work
into plain numpy arrays; this module keeps them in one `.npz` file per vocabulary version, method
and everything the arrays depend on (MATCHER_VERSION, and the files of inflect and, for `phrase+pos`,
of the lexicon), and rebuilds the matcher from them.

Location: $CONCEPTFREQ_CACHE_DIR, else $XDG_CACHE_HOME/conceptfreq, else ~/.cache/conceptfreq;
the files live in its `matchers/` folder. Files are written to a temporary name and renamed into
place, so concurrent worker processes never read half a file. The format holds arrays of numbers
and bytes only and is read with allow_pickle=False: a cache file can never run code. A file that
cannot be read or was compiled from something else is rebuilt, with one warning; a folder that
cannot be written only means no caching, with one warning per folder.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from conceptfreq.core.matching import COMPILED_METHODS, DEFAULT_METHOD, MATCHER_VERSION, compile_matcher, make_matcher, matcher_from_compiled
from conceptfreq.core.vocabulary import Vocabulary

log = logging.getLogger(__name__)

_warned_folders: set[str] = set()


def cache_root() -> Path:
    """$CONCEPTFREQ_CACHE_DIR, else $XDG_CACHE_HOME/conceptfreq, else ~/.cache/conceptfreq."""
    if os.environ.get("CONCEPTFREQ_CACHE_DIR"):
        return Path(os.environ["CONCEPTFREQ_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "conceptfreq"


def matcher_dir() -> Path:
    return cache_root() / "matchers"


def cached_matcher(vocabulary: Vocabulary, method: str = DEFAULT_METHOD, *, directory: Path | None = None, use_cache: bool = True):
    """make_matcher(vocabulary, method), from the cache when it holds this matcher, else built and stored."""
    if not use_cache or method not in COMPILED_METHODS:
        return make_matcher(vocabulary, method)  # bag builds in milliseconds; unknown methods fail there
    folder = Path(directory) if directory is not None else matcher_dir()
    fingerprint = data_fingerprint(method)
    path = folder / cache_file_name(vocabulary.version, method, fingerprint)
    compiled = _read(path, fingerprint)
    if compiled is not None:
        try:
            return matcher_from_compiled(compiled, vocabulary, method)
        except (ValueError, KeyError, IndexError, TypeError, UnicodeDecodeError) as error:
            log.warning("matcher cache file %s does not hold this matcher (%s); rebuilding it", path, _one_line(error))
    compiled = compile_matcher(vocabulary, method)
    compiled["fingerprint"] = np.frombuffer(fingerprint.encode(), np.uint8)
    _write(path, compiled)
    return matcher_from_compiled(compiled, vocabulary, method)


def data_fingerprint(method: str) -> str:
    """Everything besides the vocabulary that the compiled arrays of `method` depend on: the code's
    MATCHER_VERSION and the files of the data the build reads (inflect's rules; for `phrase+pos`
    also spaCy's function words, its lemma table and WordNet), by path, size and modification
    time. Not package versions: importlib.metadata alone costs 40 ms of a 0.3 s start."""
    parts = [f"matcher {MATCHER_VERSION}", f"method {method}", _stamp("inflect", "__init__.py")]
    if method == "phrase+pos":
        from conceptfreq.core import lexicon

        wordnet = Path(os.environ.get("CONCEPTFREQ_WORDNET") or lexicon.DEFAULT_DIR)
        parts += [_stamp("spacy", "lang/en/stop_words.py"), _stamp("spacy_lookups_data", "data/en_lemma_lookup.json.gz"),
                  # the lexicon's own list of the files it reads
                  *(_file_stamp(wordnet / name) for name in lexicon._FILES)]  # noqa: SLF001
    return "; ".join(parts)


def cache_file_name(vocabulary_version: str, method: str, fingerprint: str) -> str:
    def safe(text: str) -> str:
        return "".join(c if c.isalnum() or c in "-." else "_" for c in text)

    digest = hashlib.sha256(fingerprint.encode()).hexdigest()[:16]
    return f"{safe(method)}-{safe(vocabulary_version)}-{digest}.npz"


def _stamp(package: str, relative: str) -> str:
    """The stamp of a file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return f"{package} not installed"
    return _file_stamp(Path(spec.submodule_search_locations[0], relative))


def _file_stamp(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return f"{path} missing"
    return f"{path} {stat.st_size} {stat.st_mtime_ns}"


def _read(path: Path, fingerprint: str) -> dict[str, np.ndarray] | None:
    try:
        with np.load(path, allow_pickle=False) as data:
            compiled = {name: data[name] for name in data.files}
    except (FileNotFoundError, NotADirectoryError):  # not cached yet, or no cache folder at all
        return None
    # Anything else wrong with the file (truncated, not a zip, a bad CRC, an object array, a
    # folder in its place) means the same thing: it is not a usable cache file.
    except Exception as error:  # noqa: BLE001
        log.warning("cannot read matcher cache file %s (%s); rebuilding it", path, _one_line(error))
        return None
    stored = compiled.get("fingerprint")
    if stored is None or stored.dtype != np.uint8 or stored.tobytes() != fingerprint.encode():
        log.warning("matcher cache file %s was compiled from other data; rebuilding it", path)
        return None
    return compiled


def _write(path: Path, compiled: dict[str, np.ndarray]) -> None:
    temporary = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # A unique temporary name in the same folder, then one rename: readers see the old file or
        # the whole new one, and concurrent writers of the same matcher write the same bytes.
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False) as f:
            temporary = f.name
            np.savez(f, **compiled)
        os.replace(temporary, path)
        temporary = None
    except OSError as error:
        folder = str(path.parent)
        if folder not in _warned_folders:
            _warned_folders.add(folder)
            log.warning("cannot write the matcher cache in %s (%s); matchers are built without caching",
                        folder, _one_line(error.strerror or error))
    finally:
        if temporary is not None:
            try:
                os.unlink(temporary)
            except OSError:
                pass


def _one_line(error) -> str:
    return " ".join(str(error).split()) or type(error).__name__
