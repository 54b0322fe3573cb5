"""A subscriber that stops reading is closed 1013 once its send queue holds ``ws_send_queue_bytes``
(issue 14: 600 events of 1 MB used to grow the server by 600 MB without a 1013)."""

from __future__ import annotations

import asyncio
import json

from voipbin.events.model import Event

from .conftest import RawWebSocket, live_server, make_settings


def rss_bytes() -> int:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * 4096


async def test_a_stalled_subscriber_of_1_mb_events_is_closed_1013_at_the_byte_bound(sqlite_url: str) -> None:
    bound = 4 * 1024 * 1024  # frames are many: only the byte bound can trip
    async with live_server(make_settings(sqlite_url, ws_send_queue_bytes=bound, ws_send_queue_size=100_000)) as server:
        raw = await RawWebSocket.connect(server.port, f"/v1.0/ws?token={server.token}", rcvbuf=4096)
        try:
            raw.send_text(json.dumps({"type": "subscribe", "topics": [f"customer_id:{server.customer_id}"]}))
            async with asyncio.timeout(5):
                while not any(c.filters for c in server.runtime.hub.connections):
                    await asyncio.sleep(0.01)
            hub = server.runtime.hub
            [conn] = hub.connections
            big = {"blob": "x" * 1_000_000}
            before = rss_bytes()
            peak_queued = 0
            for i in range(600):  # never read
                await server.runtime.bus.publish(Event("blob_created", server.customer_id, "blob", str(i), big))
                peak_queued = max(peak_queued, conn.queue.nbytes)
                await asyncio.sleep(0)
                if hub.stats["slow_consumer_drops"]:
                    break
            assert hub.stats["slow_consumer_drops"] == 1 and not hub.connections
            assert peak_queued <= bound
            assert i < 20  # the socket buffers a little, then 4 frames fill the queue
            assert rss_bytes() - before < 64 * 1024 * 1024
            _, code = await asyncio.wait_for(raw.read_until_close(), 10)
            assert code == 1013
        finally:
            raw.close()
