"""Writing files so that they survive a crash: the bytes and the directory entry both reach
the disk before the caller is told the write happened.

A mail server may only answer ``250`` for a message once it is safe; every store that backs such
an answer (spool, quarantine, Maildir) writes through :func:`write_durably`.
"""

from __future__ import annotations

import os
from pathlib import Path


def fsync_directory(folder: Path) -> None:
    """Flush ``folder``'s entries (a new or renamed file is only durable once its directory is)."""
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_durably(target: Path, chunks: list[bytes], temporary_dir: Path | None = None) -> None:
    """Write ``chunks`` to ``target`` atomically and durably: into a temporary file (in
    ``temporary_dir`` or beside the target; same file system), fsync, rename, fsync the folder.
    A crash leaves either the complete file or none. Raises OSError when the disk refuses."""
    folder = target.parent
    staging_dir = temporary_dir or folder
    staging = staging_dir / f".{target.name}.{os.getpid()}.tmp"
    descriptor = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.write(descriptor, view)
                view = view[written:]
        os.fsync(descriptor)
    except BaseException:
        os.close(descriptor)
        staging.unlink(missing_ok=True)
        raise
    os.close(descriptor)
    os.replace(staging, target)
    fsync_directory(folder)


def remove_durably(target: Path) -> None:
    """Delete ``target`` (if present) and make the deletion durable."""
    try:
        target.unlink()
    except FileNotFoundError:
        return
    fsync_directory(target.parent)
