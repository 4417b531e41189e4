"""The ingest's lookups in Redis: the identity map and the conversion index.

`<prefix>:id:<anonymous_id>` holds the customer an anonymous id was identified as (set once:
the first mapping wins); `<prefix>:cid:<conversion_id>` the person a conversion was attributed
to (routes revenue events that name only their conversion). The routing rule itself is
pure (`stream.core.routing`); this answers what it needs in one round trip per batch.
"""

from __future__ import annotations

from stream.adapters.redis.connection import RoundTrips
from stream.core.routing import Needs


class Directory(RoundTrips):
    async def lookup(self, needs: Needs) -> tuple[list[str], dict[str, str], dict[str, str]]:
        """In one round trip, in this order (so an anonymous id claimed by an identify of
        the batch is known to the batch's later events):

        - each (anonymous id, customer) claim maps the anonymous id unless it is mapped
          already (first mapping wins); returned, per claim, the customer it is mapped to;
        - anonymous id -> customer, for the identified `needs.anonymous_ids`;
        - conversion id -> its person, for the known `needs.conversion_ids`.
        """
        claims, anonymous_ids, conversion_ids = needs.claims, needs.anonymous_ids, needs.conversion_ids
        if not (claims or anonymous_ids or conversion_ids):
            return [], {}, {}
        pipe = self.pipeline()
        for anon, customer in claims:
            pipe.set(self.keys.identity(anon), customer, nx=True, get=True, px=self.ttls.identity_ms)
        for anon in anonymous_ids:
            pipe.get(self.keys.identity(anon))
        for cid in conversion_ids:
            pipe.get(self.keys.conversion_index(cid))
        replies = await self.run(pipe)
        found = replies[: len(claims)]
        mapped = replies[len(claims) : len(claims) + len(anonymous_ids)]
        owners = replies[len(claims) + len(anonymous_ids) :]
        return (
            [
                c if previous is None else previous.decode()
                for (_a, c), previous in zip(claims, found, strict=True)
            ],
            {a: c.decode() for a, c in zip(anonymous_ids, mapped, strict=True) if c is not None},
            {cid: p.decode() for cid, p in zip(conversion_ids, owners, strict=True) if p is not None},
        )
