"""Secrets of the team stack: generated on first start, kept in files only their owner can read, never a default."""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` readable by its owner only, created that way (never briefly world-readable), and
    replaced in one rename so a reader sees the old content or the new, not half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(text)
    os.replace(partial, path)


def read_or_create(path: Path, length: int = 24) -> str:
    """The secret stored at `path`, generated (URL-safe, `length` random bytes) the first time."""
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(length)
    write_private(path, value + "\n")
    return value
