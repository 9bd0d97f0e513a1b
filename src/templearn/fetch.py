"""Download atomic models (mmCIF) by PDB ID into a local cache.

Files come from the RCSB PDB (`https://files.rcsb.org/download/<ID>.cif.gz`) or, when the
RCSB fails, from PDBe (`https://www.ebi.ac.uk/pdbe/entry-files/download/<id>.cif`), and
are cached as `<cache>/<id>.cif.gz`: a cached file is reused without any request. A
download is kept only if `templearn.structure.read_structure` reads it, and is written
atomically, so the cache never holds a partial or non-mmCIF file.

Cache folder: the `cache_dir` argument (`--cache-dir`), else `$TEMPLEARN_CACHE/pdb`, else
`~/.cache/templearn/pdb`. Base URLs (mirrors, tests): arguments, else
`$TEMPLEARN_RCSB_URL` / `$TEMPLEARN_PDBE_URL`, else the public servers.

Errors: a malformed ID, an ID that every source answers with "not found", or an entry
whose mmCIF `read_structure` rejects (no atoms, unknown elements) is an `InputError`
(exit 2); a network failure (offline, refused, timed out, server error, a download that
is not mmCIF or is damaged) is an `ExternalToolError` (exit 3: worth retrying). Only the
standard library is used for HTTP.
"""

from __future__ import annotations

import gzip
import os
import re
import socket
import urllib.error
import urllib.request
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from templearn.errors import ExternalToolError, InputError
from templearn.files import atomic_path

RCSB_URL = "https://files.rcsb.org/download"
PDBE_URL = "https://www.ebi.ac.uk/pdbe/entry-files/download"
CACHE_ENV, RCSB_ENV, PDBE_ENV = "TEMPLEARN_CACHE", "TEMPLEARN_RCSB_URL", "TEMPLEARN_PDBE_URL"
#: Seconds to wait for a server to connect or send data.
DEFAULT_TIMEOUT = 60.0
#: HTTP statuses meaning "this server has no such entry".
NOT_FOUND = (404, 410)

_CLASSIC_ID = re.compile(r"[1-9][0-9a-z]{3}")
_EXTENDED_ID = re.compile(r"pdb_([0-9a-z]{8})")


@dataclass(frozen=True)
class Source:
    """A server of mmCIF files: `url(id)` is the file of entry `id` (canonical form)."""

    name: str
    base_url: str
    upper_case: bool  # the RCSB names files by upper-case ID, PDBe by lower case
    suffix: str

    def url(self, pdb_id: str) -> str:
        name = pdb_id.upper() if self.upper_case else pdb_id
        return f"{self.base_url.rstrip('/')}/{name}{self.suffix}"


def pdb_id(text: str) -> str:
    """The canonical (lower-case) form of a PDB ID: `4V5D` -> `4v5d`; the extended form
    `pdb_00004v5d` -> `4v5d` (IDs that only exist in extended form stay extended).
    Raises InputError for anything else."""
    value = text.strip().lower()
    if _CLASSIC_ID.fullmatch(value):
        return value
    extended = _EXTENDED_ID.fullmatch(value)
    if extended:
        code = extended.group(1)
        if not code.startswith("0000"):
            return value  # an entry beyond the 4-character range
        if _CLASSIC_ID.fullmatch(code[4:]):
            return code[4:]
    raise InputError(f"{text!r} is not a PDB ID (4 characters such as 4v5d, or the extended "
                     "form pdb_00004v5d)")


def default_cache_dir() -> Path:
    """`$TEMPLEARN_CACHE/pdb`, or `~/.cache/templearn/pdb`."""
    root = os.environ.get(CACHE_ENV) or str(Path.home() / ".cache" / "templearn")
    return Path(root).expanduser() / "pdb"


def sources(rcsb_url: str | None = None, pdbe_url: str | None = None) -> tuple[Source, ...]:
    """The servers tried in order: RCSB, then PDBe (arguments, env vars, public URLs)."""
    return (Source("RCSB", rcsb_url or os.environ.get(RCSB_ENV) or RCSB_URL, True, ".cif.gz"),
            Source("PDBe", pdbe_url or os.environ.get(PDBE_ENV) or PDBE_URL, False, ".cif"))


def cached_path(entry: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where PDB entry `entry` (canonical ID) is (or would be) cached."""
    directory = Path(cache_dir).expanduser() if cache_dir else default_cache_dir()
    return directory / f"{entry}.cif.gz"


class _Failure(Exception):
    """One source could not provide a usable file. `missing`: it has no such entry;
    `unusable`: it sent mmCIF that read_structure rejects (no atoms, unknown elements);
    neither: a network or server failure (worth retrying)."""

    def __init__(self, reason: str, missing: bool = False, unusable: bool = False) -> None:
        super().__init__(reason)
        self.missing = missing
        self.unusable = unusable


def fetch_structure(text: str, cache_dir: str | os.PathLike[str] | None = None,
                    rcsb_url: str | None = None, pdbe_url: str | None = None,
                    timeout: float = DEFAULT_TIMEOUT) -> Path:
    """Path of the cached mmCIF file of PDB entry `text`, downloading it if needed."""
    entry = pdb_id(text)
    final = cached_path(entry, cache_dir)
    if final.is_file():
        return final
    from templearn.progress import log

    failures: list[tuple[Source, _Failure]] = []
    for source in sources(rcsb_url, pdbe_url):
        try:
            _download_to(source.url(entry), final, timeout)
        except _Failure as failure:
            failures.append((source, failure))
            continue
        log(f"fetch: {entry} from {source.name} -> {final}")
        return final
    reasons = "; ".join(f"{source.name}: {failure}" for source, failure in failures)
    if all(failure.missing for _, failure in failures):
        raise InputError(f"PDB entry {entry} not found ({reasons})")
    if all(failure.missing or failure.unusable for _, failure in failures):
        raise InputError(f"PDB entry {entry} cannot be used ({reasons})")
    raise ExternalToolError(f"could not download PDB entry {entry} ({reasons})")


def fetch_structures(texts: Iterable[str], cache_dir: str | os.PathLike[str] | None = None,
                     rcsb_url: str | None = None, pdbe_url: str | None = None,
                     timeout: float = DEFAULT_TIMEOUT) -> list[Path]:
    """`fetch_structure` for each ID (all IDs are checked before anything is fetched)."""
    entries = list(dict.fromkeys(pdb_id(t) for t in texts))
    return [fetch_structure(e, cache_dir, rcsb_url, pdbe_url, timeout) for e in entries]


def _download_to(url: str, final: Path, timeout: float) -> None:
    """Download `url`, check that it is mmCIF that read_structure reads, and write it
    gzipped to `final` atomically; _Failure otherwise."""
    from templearn.structure import read_structure

    text = _mmcif_text(_get(url, timeout))
    try:
        with atomic_path(final) as tmp:
            with gzip.open(tmp, "wb", compresslevel=6) as out:
                out.write(text)
            read_structure(tmp)
    except InputError as exc:
        # A parse failure means a damaged download; anything else is the entry's content.
        damaged = exc.message.startswith("not a readable")
        raise _Failure(f"not a usable mmCIF file ({exc.message})", unusable=not damaged
                       ) from None


def _get(url: str, timeout: float) -> bytes:
    """The body of `url`; _Failure (missing for 404/410) on any HTTP or network error."""
    from templearn.provenance import templearn_version

    request = urllib.request.Request(
        url, headers={"User-Agent": f"templearn/{templearn_version()} (python urllib)"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.read()
    except urllib.error.HTTPError as exc:
        raise _Failure(f"HTTP {exc.code} for {url}", missing=exc.code in NOT_FOUND) from None
    except urllib.error.URLError as exc:
        raise _Failure(f"{_reason(exc.reason)} ({url})") from None
    except TimeoutError:
        raise _Failure(f"timed out after {timeout:g} s ({url})") from None
    except (OSError, ValueError) as exc:  # reset connections, bad URLs, truncated bodies
        raise _Failure(f"{_reason(exc)} ({url})") from None


def _reason(reason: object) -> str:
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, socket.gaierror):
        return "host not found (offline?)"
    if isinstance(reason, TimeoutError):
        return "timed out"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror.lower()
    return str(reason) or type(reason).__name__


def _mmcif_text(body: bytes) -> bytes:
    """The mmCIF text of a download (gunzipped if needed); _Failure if it is not mmCIF."""
    if body[:2] == b"\x1f\x8b":
        try:
            body = gzip.decompress(body)
        except (OSError, EOFError, zlib.error):
            raise _Failure("corrupt gzip data") from None
    for line in body[:65536].splitlines():
        line = line.strip()
        if not line or line.startswith(b"#"):
            continue
        if line.startswith(b"data_"):
            return body
        break
    raise _Failure("the download is not an mmCIF file")
