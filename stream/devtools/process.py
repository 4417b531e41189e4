"""Service processes for local development: spawned in their own process group, stopped for sure.

Every child runs in its own process group and is stopped at interpreter exit at the
latest; `start` polls a readiness check and shows the tail of the child's logs when it
dies or times out.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from stream.errors import InfraError


@dataclass(eq=False)  # identity equality: live children are kept in a set
class Child:
    """A service process in its own process group, with a readiness check."""

    name: str
    argv: list[str]
    out: Path  # stdout+stderr of the process
    ready: Callable[[], bool]
    wait: float  # seconds to become ready
    logs: Sequence[Path] = ()  # further logs worth showing on failure
    popen: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        """Process id (also the process group id) while running; None before the first start
        and once it exited (killed or stopped)."""
        popen = self.popen
        return popen.pid if popen is not None and popen.poll() is None else None

    def start(self) -> None:
        """Spawn, then poll `ready` until true; InfraError if it dies or times out."""
        self.spawn()
        self.await_ready()

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready (`await_ready` does): the
        nodes of a cluster become ready only together."""
        with self.out.open("ab") as out:
            self.popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if not _LIVE:
            atexit.unregister(_stop_all)
            atexit.register(_stop_all)
        _LIVE.add(self)

    def await_ready(self) -> None:
        """Poll `ready` for up to `wait` seconds; on failure (also Ctrl-C) stop the process
        (never leave a half-started child) and raise InfraError with its logs' tails."""
        try:
            self._await_ready(time.monotonic() + self.wait)
        except BaseException:
            self.stop(timeout=10)
            raise

    def _await_ready(self, deadline: float) -> None:
        assert self.popen is not None
        while not self.ready():
            if self.popen.poll() is not None:
                raise self.error(f"{self.name} exited with {self.popen.returncode}")
            if time.monotonic() > deadline:
                raise self.error(f"{self.name} not ready after {self.wait:.0f}s")
            time.sleep(0.1)

    def stop(self, timeout: float) -> None:
        """SIGTERM the process group, wait up to `timeout`, then SIGKILL it."""
        if self.popen is None or self not in _LIVE:
            return
        _killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            _killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait()
        _killpg(self.popen.pid, signal.SIGKILL)  # stragglers left in the group
        _LIVE.discard(self)

    def kill(self) -> None:
        """SIGKILL the process group at once, as a crash would end it (no clean shutdown)."""
        if self.popen is None or self not in _LIVE:
            return
        _killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()
        _LIVE.discard(self)

    def error(self, what: str) -> InfraError:
        tails = "\n".join(_tail(p) for p in (self.out, *self.logs))
        return InfraError(f"{what}\n{tails}")


_LIVE: set[Child] = set()


def _stop_all() -> None:
    for child in list(_LIVE):
        child.stop(timeout=10)


def _killpg(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _tail(path: Path, lines: int = 30) -> str:
    if not path.exists():
        return f"--- {path}: missing"
    text = path.read_text(errors="replace").splitlines()[-lines:]
    return f"--- tail of {path}:\n" + "\n".join(text)


def free_ports(n: int) -> list[int]:
    """`n` distinct free loopback ports (all sockets held open while choosing)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(n)]
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]


class Service:
    _child: Child

    def stop(self) -> None:
        raise NotImplementedError

    @property
    def pid(self) -> int | None:
        """Process id (also the process group id); None before the first start."""
        return self._child.popen.pid if self._child.popen else None

    def restart(self) -> None:
        """Stop, then start again on the same port(s) and data; wait until ready."""
        self.stop()
        self._child.start()
