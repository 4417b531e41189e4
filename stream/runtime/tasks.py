"""Running independent steps of a handler at once."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable


async def gather_all(*steps: Awaitable[None]) -> None:
    """Run the steps concurrently; the first failure cancels the others and propagates as is."""
    tasks = [asyncio.ensure_future(s) for s in steps]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        raise
