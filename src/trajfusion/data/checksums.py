"""SHA-256 verification of the bundled data files against ``<data_dir>/SHA256SUMS``."""

from __future__ import annotations

import os
from pathlib import Path

from trajfusion.io import InputError, sha256_file

CHECKSUM_FILE = "SHA256SUMS"

# (resolved path, size, mtime_ns) of files already verified in this process.
_verified: set[tuple[str, int, int]] = set()


def read_checksums(data_dir: str | os.PathLike) -> dict[str, str]:
    """Parse ``sha256sum``-style lines (``<hex>  <relative path>``) into {path: hex}."""
    listing = Path(data_dir) / CHECKSUM_FILE
    if not listing.is_file():
        raise InputError(f"{listing}: checksum list not found (every data directory needs one)")
    sums: dict[str, str] = {}
    for lineno, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or not name.strip():
            raise InputError(f"{listing}:{lineno}: expected '<sha256>  <path>', got {line!r}")
        sums[name.strip().removeprefix("*")] = digest.lower()
    return sums


def verified_path(data_dir: str | os.PathLike, relative: str) -> Path:
    """Return ``data_dir/relative`` after checking its SHA-256 (once per process per file)."""
    path = Path(data_dir) / relative
    if not path.is_file():
        raise InputError(f"{path}: data file not found")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key in _verified:
        return path
    expected = read_checksums(data_dir).get(relative)
    if expected is None:
        raise InputError(f"{path}: no entry for {relative!r} in {Path(data_dir) / CHECKSUM_FILE}")
    actual = sha256_file(path)
    if actual != expected:
        raise InputError(f"{path}: SHA-256 mismatch: expected {expected}, got {actual} "
                         f"(the file differs from the one listed in {CHECKSUM_FILE})")
    _verified.add(key)
    return path
