"""What commands read: `-`, regular files, pipes and FIFOs; errors that name the file and line."""

from __future__ import annotations

import asyncio
import io
import os
import threading
from pathlib import Path

import pytest

from stream.cli.inputs import (
    chunked_lines,
    display_name,
    is_pipe,
    located,
    open_input,
    open_output,
    regular_size,
    text_lines,
)
from stream.errors import CliError, InputError


def test_errors_about_a_line_name_the_file_and_the_line() -> None:
    assert located("paths.csv", "line 17: expected 4 columns") == "paths.csv:17: expected 4 columns"
    assert located("<stdin>", "line 2: x") == "<stdin>:2: x"
    assert located("paths.csv", "no line here") == "paths.csv: no line here"
    assert display_name("-") == "<stdin>" and display_name("a.csv") == "a.csv"


def test_a_path_that_cannot_be_read_is_one_error_line(tmp_path: Path) -> None:
    with pytest.raises(CliError) as missing, open_input(str(tmp_path / "paths.csv")):
        pass
    assert str(missing.value) == f"cannot read {tmp_path / 'paths.csv'}: No such file or directory"
    with pytest.raises(CliError) as directory, open_input(str(tmp_path)):
        pass
    assert str(directory.value) == f"cannot read {tmp_path}: Is a directory"
    with pytest.raises(CliError) as output:
        open_output(str(tmp_path / "no" / "such.jsonl"))
    assert str(output.value) == f"cannot write {tmp_path / 'no' / 'such.jsonl'}: No such file or directory"


def test_only_a_regular_file_has_a_size(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"12345\n")
    with open_input(str(path), progress=False) as file:
        assert (regular_size(file), is_pipe(file)) == (6, False)
        assert file.read() == b"12345\n"
    read_end, write_end = os.pipe()
    with os.fdopen(read_end, "rb") as pipe, os.fdopen(write_end, "wb"):
        assert (regular_size(pipe), is_pipe(pipe)) == (None, True)
    assert regular_size(io.BytesIO(b"x")) is None  # no file descriptor


def test_a_fifo_is_read_like_a_file(tmp_path: Path) -> None:
    fifo = tmp_path / "paths.fifo"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_bytes, args=(b"a,1,2,0\nb,1,2,0\n",))
    writer.start()
    with open_input(str(fifo)) as file:  # progress on: no size, so no bar
        assert regular_size(file) is None
        assert file.read() == b"a,1,2,0\nb,1,2,0\n"
    writer.join()


def test_text_lines_drop_a_byte_order_mark_and_name_a_line_that_is_not_utf8() -> None:
    assert list(text_lines([b"\xef\xbb\xbfpath,a\n", b"x,\xc3\xa9\n"])) == ["path,a\n", "x,é\n"]
    with pytest.raises(InputError, match=r"^line 2: not UTF-8 text \(invalid start byte at byte 0\)$"):
        list(text_lines([b"ok\n", b"\xff\n"]))


def _lines(file) -> list[bytes]:
    async def read() -> list[bytes]:
        return [line async for chunk in chunked_lines(file, size=4) for line in chunk]

    return asyncio.run(read())


def test_chunked_lines_of_a_file_and_of_a_pipe_are_its_lines(tmp_path: Path) -> None:
    data = b'{"a":1}\n\n{"b":22}\r\nlast'
    want = [b'{"a":1}', b"", b'{"b":22}\r', b"last"]
    path = tmp_path / "in.jsonl"
    path.write_bytes(data)
    with path.open("rb") as file:
        assert _lines(file) == want
    read_end, write_end = os.pipe()
    os.write(write_end, data)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        assert _lines(pipe) == want


def test_produce_keys_each_line_by_its_person_and_drops_a_byte_order_mark() -> None:
    from stream.cli.produce import jsonl_records

    lines = [b'\xef\xbb\xbf{"customer_id": "c-1", "type": "x"}\n', b"\n", b"not json\r\n"]
    assert list(jsonl_records(lines)) == [
        (b"c-1", b'{"customer_id": "c-1", "type": "x"}'),
        (None, b"not json"),
    ]
