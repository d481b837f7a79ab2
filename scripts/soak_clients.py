#!/usr/bin/env python3
"""The client side of scripts/soak.sh (not a test): HLS viewers, a garbage
client and a periodic connection flood, all in one asyncio loop.

  soak_clients.py HTTP_PORT RTMP_PORT STREAMS VIEWERS REPORT_FILE

Viewers spread over the STREAMS (comma-separated names) poll the media
playlist (LL-HLS blocking reloads when the playlist offers them) and fetch
every new segment. Every 10 s the counters are written as JSON to
REPORT_FILE: per stream, requests, errors, init-segment (EXT-X-MAP) changes
and discontinuities seen (one viewer per stream counts those; one of each per
republish), and blocking reloads refused with 400/503 (after which the viewer
drops its _HLS_msn and reloads the plain playlist, as hls.js does).
"""
import asyncio
import json
import os
import random
import re
import sys
import time

HTTP_PORT, RTMP_PORT = int(sys.argv[1]), int(sys.argv[2])
STREAMS = sys.argv[3].split(",")
VIEWERS = int(sys.argv[4])
REPORT = sys.argv[5]
stats = {s: {"requests": 0, "errors": 0, "maps": 0, "discontinuities": 0, "refused": 0,
             "last_error": ""} for s in STREAMS}
flood = {"connects": 0, "garbage": 0}


async def http_get(reader, writer, path, timeout=10):
    writer.write(("GET %s HTTP/1.1\r\nHost: soak\r\n\r\n" % path).encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    status = int(head.split(b" ", 2)[1])
    m = re.search(rb"(?i)content-length: *(\d+)", head)
    body = await asyncio.wait_for(reader.readexactly(int(m.group(1)) if m else 0), timeout)
    return status, body


async def viewer(i):
    name = STREAMS[i % len(STREAMS)]
    st = stats[name]
    seen, last_map, msn, last_disc = set(), None, None, None
    await asyncio.sleep(random.random() * 2)
    reader = writer = None
    while True:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", HTTP_PORT)
            path = "/live/%s/media.m3u8" % name
            if msn is not None:
                path += "?_HLS_msn=%d" % msn
            status, body = await http_get(reader, writer, path)
            st["requests"] += 1
            if status != 200:
                if msn is not None and status in (400, 503):
                    # The blocking reload was refused: _HLS_msn too far ahead (the
                    # media sequence restarted) or not there in time (publisher
                    # gone). Not an error: drop the msn and reload plainly.
                    st["refused"] += 1
                elif status not in (404, 503):  # 404/503: not (yet) published, a restart
                    st["errors"] += 1
                    st["last_error"] = "HTTP %d %s" % (status, path)
                msn = None
                await asyncio.sleep(1)
                continue
            text = body.decode()
            m = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
            if m and m.group(1) != last_map:
                if last_map is not None and i < len(STREAMS):
                    st["maps"] += 1
                last_map = m.group(1)
            # Discontinuities so far: EXT-X-DISCONTINUITY-SEQUENCE plus the tags listed.
            d = re.search(r"#EXT-X-DISCONTINUITY-SEQUENCE:(\d+)", text)
            disc = (int(d.group(1)) if d else 0) + text.count("#EXT-X-DISCONTINUITY\n")
            if last_disc is not None and disc > last_disc and i < len(STREAMS):
                st["discontinuities"] += disc - last_disc
            last_disc = disc
            segs = [l for l in text.splitlines() if l and not l.startswith("#")]
            for uri in segs[-1:]:
                if uri not in seen:
                    seen.add(uri)
                    status, _ = await http_get(reader, writer, "/live/%s/%s" % (name, uri))
                    st["requests"] += 1
                    if status != 200:
                        st["errors"] += 1
                        st["last_error"] = "HTTP %d %s" % (status, uri)
            seq = re.search(r"#EXT-X-MEDIA-SEQUENCE:(\d+)", text)
            if "#EXT-X-SERVER-CONTROL" in text and "CAN-BLOCK-RELOAD=YES" in text and seq:
                msn = int(seq.group(1)) + len(segs)  # block until the next segment
            else:
                msn = None
                await asyncio.sleep(1)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ValueError,
                IndexError) as e:
            st["errors"] += 1
            st["last_error"] = repr(e)[:100]
            if writer:
                writer.close()
            reader = writer = None
            msn = None
            await asyncio.sleep(1)


async def garbage():
    """Once a second: random bytes to the RTMP and the HTTP port, then close."""
    while True:
        for port in (RTMP_PORT, HTTP_PORT):
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
                w.write(os.urandom(random.randint(1, 4000)))
                await w.drain()
                w.close()
                flood["garbage"] += 1
            except OSError:
                pass
        await asyncio.sleep(1)


async def flood_burst(seconds):
    """Opens connections as fast as it can for SECONDS: half-done RTMP handshakes
    and partial HTTP requests, each closed 0.5 s later."""
    end = time.monotonic() + seconds

    async def one(port, data):
        try:
            r, w = await asyncio.open_connection("127.0.0.1", port)
            w.write(data)
            await asyncio.sleep(0.5)
            w.close()
            flood["connects"] += 1
        except OSError:
            pass

    while time.monotonic() < end:
        await asyncio.gather(*[one(RTMP_PORT, b"\x03" + bytes(700)) for _ in range(50)],
                             *[one(HTTP_PORT, b"GET /live/x/media.m3u8 HTTP/1.1\r\nX-") for _ in range(50)])


async def flooder():
    while True:
        await asyncio.sleep(50)
        await flood_burst(10)


async def reporter():
    while True:
        await asyncio.sleep(10)
        with open(REPORT + ".tmp", "w") as f:
            json.dump({"streams": stats, "flood": flood}, f)
        os.replace(REPORT + ".tmp", REPORT)


async def main():
    tasks = [asyncio.create_task(viewer(i)) for i in range(VIEWERS)]
    tasks += [asyncio.create_task(garbage()), asyncio.create_task(flooder()),
              asyncio.create_task(reporter())]
    await asyncio.gather(*tasks)


asyncio.run(main())
