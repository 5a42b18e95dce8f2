"""The CSV artifact as a private snapshot: the bytes that are checked are the bytes that are sent.

An artifact handed between tasks is a file someone else owns: it can be appended to, rewritten,
replaced, moved or deleted while a task works on it. The bulk operator therefore copies it once,
through one descriptor, into a directory only the task uses, and checks and sends that copy.
Nothing here knows HTTP or Airflow.
"""

from __future__ import annotations

import os
import stat

from airflow_provider_fuse.exceptions import FuseCsvError

__all__ = ["copy_regular_file", "open_regular_file", "refuse_irregular"]

_BLOCK = 1 << 20


def open_regular_file(path: str | os.PathLike[str]) -> int:
    """Open ``path`` for reading and return the descriptor, refusing anything but a regular file.

    A FIFO, a socket, a device (``/dev/zero`` never ends) or a directory is refused at once: the
    file is opened without blocking (a FIFO with no writer would hang a plain ``open``) and checked
    with ``fstat`` before a byte is read.

    :raises FuseCsvError: naming the path, for a missing, unreadable or non-regular file.
    """
    name = os.fspath(path)
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise FuseCsvError(f"no such file: {name}") from None
    except PermissionError:
        raise FuseCsvError(f"cannot be read (permission denied): {name}") from None
    except OSError as error:
        raise FuseCsvError(f"cannot be opened ({error.strerror}): {name}") from None
    try:
        refuse_irregular(fd, name)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def refuse_irregular(fd: int, name: str) -> None:
    """Refuse the open descriptor ``fd`` unless it is a regular file; ``name`` says which file.

    :raises FuseCsvError: for a directory, a FIFO, a socket or a device.
    """
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):
        kind = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a FIFO, socket or device)"
        raise FuseCsvError(f"is {kind}, not a CSV file: {name}")


def copy_regular_file(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> int:
    """Copy the regular file ``source`` to the new file ``target`` (mode 0600); return the bytes copied.

    The copy is one read of one descriptor from start to end of file. If the file changed while it
    was read (its size or modification time moved, or fewer or more bytes came than it had), the
    copy is removed and the change is reported: nothing is left that could be sent.

    :raises FuseCsvError: as :func:`open_regular_file`, or when the file changed during the copy.
    """
    fd = open_regular_file(source)
    with os.fdopen(fd, "rb") as reader:
        before = os.fstat(fd)
        copied = 0
        out = os.open(
            os.fspath(target), os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600
        )
        try:
            with os.fdopen(out, "wb") as writer:
                while block := reader.read(_BLOCK):
                    writer.write(block)
                    copied += len(block)
            after = os.fstat(fd)
            if copied != before.st_size or _version(after) != _version(before):
                raise FuseCsvError(
                    f"changed while it was being read (written to or truncated): {os.fspath(source)}; "
                    "nothing was sent. Hand the task a file that is complete and no longer written to."
                )
        except BaseException:
            os.unlink(target)
            raise
    return copied


def _version(status: os.stat_result) -> tuple[int, int, int]:
    return status.st_size, status.st_mtime_ns, status.st_ctime_ns
