"""What a command reads: `-` (standard input) or any path that can be opened for reading —
a regular file, a pipe, a FIFO, a process substitution (`<(zcat paths.csv.gz)`, /dev/fd/N).

A path that cannot be opened is one `CliError` line (`cannot read paths.csv: No such file
or directory`); a rich progress bar is drawn on stderr only when the size is known (a
regular file) and stderr is a terminal. An error about line N of an input is written
`NAME:N: reason`.
"""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from stream.errors import CliError, InputError

STDIN = "-"
_LINE = re.compile(r"line (\d+): ")


def display_name(arg: str) -> str:
    """How errors name an input: its argument, `<stdin>` for `-`."""
    return "<stdin>" if arg == STDIN else arg


def regular_size(file: BinaryIO) -> int | None:
    """The size of a regular file; None for a pipe, a FIFO, a terminal or a socket."""
    try:
        info = os.fstat(file.fileno())
    except (OSError, ValueError):
        return None
    return info.st_size if stat.S_ISREG(info.st_mode) else None


def located(name: str, message: str) -> str:
    """`NAME:N: reason` of an error message `line N: reason`, else `NAME: message`."""
    found = _LINE.match(message)
    return f"{name}:{found[1]}: {message[found.end() :]}" if found else f"{name}: {message}"


def input_error(name: str, exc: InputError) -> CliError:
    """A bad line of input `name` as one CLI error line."""
    return CliError(located(name, str(exc)))


def text_lines(lines: Iterable[bytes]) -> Iterator[str]:
    """UTF-8 lines (a byte order mark at the start is dropped); a line that is not UTF-8 is
    an `InputError` naming it."""
    for number, line in enumerate(lines, start=1):
        try:
            text = line.decode("utf-8-sig" if number == 1 else "utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"line {number}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        yield text


@contextmanager
def open_input(arg: str, *, progress: bool = True) -> Iterator[BinaryIO]:
    """The input `arg` as a binary file (standard input for `-`, left open); a progress bar
    when `progress`, the size is known and stderr is a terminal."""
    if arg == STDIN:
        yield sys.stdin.buffer
        return
    try:
        file = open(arg, "rb")  # noqa: SIM115 — closed by the `with` below
    except OSError as exc:
        raise CliError(f"cannot read {arg}: {exc.strerror or exc}") from None
    with file:
        size = regular_size(file)
        if not progress or size is None:
            yield file
            return
        import rich.progress
        from rich.console import Console

        console = Console(stderr=True)
        if not console.is_terminal:
            yield file
            return
        description = os.path.basename(arg)
        with rich.progress.wrap_file(file, size, description=description, console=console) as reader:
            yield reader


def open_output(arg: str) -> BinaryIO:
    """The output file `arg`, created or truncated; one `CliError` line when it cannot be."""
    try:
        return open(arg, "wb")  # the caller closes it
    except OSError as exc:
        raise CliError(f"cannot write {arg}: {exc.strerror or exc}") from None


async def chunked_lines(file: BinaryIO, size: int = 1 << 16) -> AsyncIterator[list[bytes]]:
    """The lines of `file` (without their `\\n`) as they arrive, a chunk at a time. A pipe or
    FIFO is read by the event loop, so waiting for it blocks nothing (each line is seen as
    it ends, and Ctrl-C ends the wait); a file or a terminal is read as it is."""
    chunks = _pipe_chunks(file, size) if is_pipe(file) else _file_chunks(file, size)
    rest = b""
    async for chunk in chunks:
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        if lines:
            yield lines
    if rest:
        yield [rest]


def is_pipe(file: BinaryIO) -> bool:
    """Whether `file` is a pipe, a FIFO or a socket (what may keep a reader waiting)."""
    try:
        mode = os.fstat(file.fileno()).st_mode
    except (OSError, ValueError):
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


async def _file_chunks(file: BinaryIO, size: int) -> AsyncIterator[bytes]:
    read = getattr(file, "read1", file.read)  # read1: what a terminal has, without waiting for more
    while chunk := read(size):
        yield chunk


async def _pipe_chunks(file: BinaryIO, size: int) -> AsyncIterator[bytes]:
    """The chunks of a pipe read by the event loop (which closes it at the end)."""
    reader = asyncio.StreamReader(limit=size)  # reads pause while 2 × size bytes wait
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), file)
    try:
        while chunk := await reader.read(size):
            yield chunk
    finally:
        transport.close()
