"""Simulated LL-HLS viewers (standard library only): each does what hls.js does
in low-latency mode, on one keep-alive HTTP/1.1 connection (TLS optional):

  1. GET media.m3u8 to tune in, start at the last part listed;
  2. blocking delta reload media.m3u8?_HLS_msn=M&_HLS_part=P+1&_HLS_skip=YES;
  3. GET every part that reload lists after the last one it has, in order
     (the whole segment instead, when its parts are no longer listed);
  4. back to 2. On an error it reconnects and retries (0.25, 0.5, 1, 2 s ...),
     resuming where it was, as hls.js does.

Every viewer checks that the parts it gets continue exactly where it was
(a "gap" otherwise) and that each is a fragment (starts with a moof box).
With --probe URL one more viewer reads the origin directly: the time it sees
a part listed is the part's availability, and every viewer's part delay is
its arrival time minus that (same clock: same machine).

usage: llhls_viewers.py URL VIEWERS SECONDS [--probe URL] [--cafile PEM]
                        [--ramp SECONDS] [--json]
prints one JSON object (see summary()).
"""
import argparse
import asyncio
import json
import re
import ssl
import sys
import time
import zlib
from urllib.parse import urlsplit

PART_RE = re.compile(rb'#EXT-X-PART:DURATION=[0-9.]+,URI="(part-[0-9a-f]+-(\d+)-(\d+)\.m4s)"')
SEG_RE = re.compile(rb'#EXTINF:[0-9.]+,[^\n]*\n(seg-[0-9a-f]+-(\d+)\.m4s)')
WHOLE = 1 << 20  # part index standing for "the whole segment"


class HttpError(Exception):
    pass


def units_of(body):
    """Playlist -> ordered list of (msn, idx, uri): parts where listed, else whole segments."""
    parts = [(int(m), int(i), u.decode()) for u, m, i in PART_RE.findall(body)]
    segs = {int(m): u.decode() for u, m in SEG_RE.findall(body)}
    # A segment whose first parts have scrolled out counts as a whole segment.
    partial = {m for m, i, _ in parts if i > 0 and (m, 0) not in
               {(pm, pi) for pm, pi, _ in parts} and m in segs}
    parts = [p for p in parts if p[0] not in partial]
    with_parts = {p[0] for p in parts}
    return sorted([(m, WHOLE, u) for m, u in segs.items() if m not in with_parts] + parts)


class Conn:
    """One keep-alive HTTP/1.1 connection; get() returns (status, headers, body)."""

    def __init__(self, url, ctx):
        u = urlsplit(url)
        self.host, self.port = u.hostname, u.port or (443 if u.scheme == "https" else 80)
        self.ctx = ctx if u.scheme == "https" else None
        self.hosthdr = ("%s:%d" % (self.host, self.port)).encode()
        self.r = self.w = None

    async def get(self, path):
        if self.w is None:
            self.r, self.w = await asyncio.open_connection(
                self.host, self.port, ssl=self.ctx,
                server_hostname=self.host if self.ctx else None, limit=1 << 22)
        self.w.write(b"GET %s HTTP/1.1\r\nHost: %s\r\nAccept-Encoding: gzip\r\n\r\n"
                     % (path.encode(), self.hosthdr))
        head = await self.r.readuntil(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split(b" ", 2)[1])
        hdrs = {}
        for line in lines[1:]:
            k, _, v = line.partition(b":")
            if k:
                hdrs[k.strip().lower()] = v.strip()
        if b"content-length" in hdrs:
            body = await self.r.readexactly(int(hdrs[b"content-length"]))
        elif hdrs.get(b"transfer-encoding", b"").lower() == b"chunked":
            chunks = []
            while True:
                n = int((await self.r.readuntil(b"\r\n")).split(b";")[0], 16)
                chunks.append(await self.r.readexactly(n + 2))
                if n == 0:
                    break
            body = b"".join(c[:-2] for c in chunks)
        else:
            body = await self.r.read()
            self.close()
        if hdrs.get(b"connection", b"").lower() == b"close":
            self.close()
        if hdrs.get(b"content-encoding") == b"gzip":
            body = zlib.decompress(body, 31)
        return status, hdrs, body

    def close(self):
        if self.w is not None:
            self.w.close()
        self.r = self.w = None


class Stats:
    def __init__(self):
        self.requests = self.playlists = self.units = self.parts = self.bad = 0
        self.gaps = self.order_errors = self.refills = self.errors = 0
        self.error_kinds = {}
        self.gap_examples = []    # [position, first units listed] of the first gaps
        self.recoveries = []      # seconds from an error to the next unit received
        self.delay_ms = {}        # histogram: ms -> count
        self.viewers = []         # per viewer: [units, gaps, errors, recovered]
        self.cache = {}           # ETag -> parsed units (identical bodies parse once)


class Viewer:
    def __init__(self, url, ctx, stats, probe, deadline):
        self.url, self.path = url, urlsplit(url).path
        self.base = self.path.rsplit("/", 1)[0] + "/"
        self.conn = Conn(url, ctx)
        self.st, self.probe, self.deadline = stats, probe, deadline
        self.pos = None           # (msn, idx) of the last unit received
        self.me = [0, 0, 0, True]
        stats.viewers.append(self.me)
        self.failed_at = None

    async def fetch(self, path):
        self.st.requests += 1
        status, hdrs, body = await self.conn.get(path)
        if status != 200:
            raise HttpError("%d %s" % (status, path.split("?")[0].rsplit("/", 1)[-1][:5]))
        return hdrs, body

    async def playlist(self, query):
        hdrs, body = await self.fetch(self.path + query)
        self.st.playlists += 1
        etag = hdrs.get(b"etag")
        units = self.st.cache.get(etag) if etag else None
        if units is None:
            units = units_of(body)
            if etag:
                if len(self.st.cache) > 4096:
                    self.st.cache.clear()
                self.st.cache[etag] = units
        return units

    def connects(self, units):
        """The units after self.pos, or None when the playlist does not reach back to it."""
        if self.pos is None:
            return units[-1:]
        m, i = self.pos
        for k, (um, ui, _) in enumerate(units):
            if (um, ui) == (m, i) or (i == WHOLE and um == m and k + 1 < len(units) and
                                     units[k + 1][0] > m):
                return units[k + 1:]
        if any(um == m and ui == WHOLE for um, ui, _ in units):
            self.st.refills += 1  # parts no longer listed: take the whole segment again
            return [u for u in units if u[0] > m or (u[0] == m and u[1] == WHOLE)]
        return None

    def after(self, units):
        """The units to fetch after self.pos, in order (a gap if they do not connect)."""
        new = self.connects(units)
        if new is not None:
            return new
        if units and (units[0][0], units[0][1]) > self.pos:
            self.st.gaps += 1
            self.me[1] += 1
            if len(self.st.gap_examples) < 3:
                self.st.gap_examples.append([self.pos, [u[:2] for u in units[:4]]])
        return [u for u in units if (u[0], u[1]) > self.pos][-1:]

    async def take(self, unit):
        m, i, uri = unit
        _, body = await self.fetch(self.base + uri)
        now = time.time()
        if len(body) < 16 or body[4:8] != b"moof":
            self.st.bad += 1
        if self.pos is not None and (m, i) <= self.pos:
            self.st.order_errors += 1
        tuned_in = self.pos is not None  # the tune-in part was listed before we came
        self.pos = (m, i)
        self.st.units += 1
        self.me[0] += 1
        if i != WHOLE:
            self.st.parts += 1
            t = self.probe.seen.get(uri) if self.probe and tuned_in else None
            if t is not None:
                ms = int((now - t) * 1000)
                self.st.delay_ms[ms] = self.st.delay_ms.get(ms, 0) + 1
        if self.failed_at is not None:
            self.st.recoveries.append(now - self.failed_at)
            self.me[3] = True
            self.failed_at = None

    def query(self):
        if self.pos is None:
            return ""
        m, i = self.pos
        if i == WHOLE:
            return "?_HLS_msn=%d&_HLS_part=0&_HLS_skip=YES" % (m + 1)
        return "?_HLS_msn=%d&_HLS_part=%d&_HLS_skip=YES" % (m, i + 1)

    async def run(self):
        backoff = 0.25
        while time.monotonic() < self.deadline:
            try:
                units = await self.playlist(self.query())
                new = self.connects(units)
                if new is None:
                    # As hls.js: a delta update that does not reach back to
                    # what we have is followed by a full reload.
                    units = await self.playlist(self.query().replace("&_HLS_skip=YES", ""))
                    new = self.after(units)
                for u in new:
                    await self.take(u)
                backoff = 0.25
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    HttpError, ValueError, IndexError, zlib.error) as e:
                self.conn.close()
                kind = type(e).__name__ + (": " + str(e) if isinstance(e, HttpError) else "")
                self.st.error_kinds[kind] = self.st.error_kinds.get(kind, 0) + 1
                self.st.errors += 1
                self.me[2] += 1
                if self.failed_at is None:
                    self.failed_at = time.time()
                    self.me[3] = False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
        self.conn.close()


class Probe:
    """Reads the origin directly: when each part is first listed there."""

    def __init__(self, url, ctx, deadline):
        self.v = Viewer(url, ctx, Stats(), None, deadline)
        self.seen = {}

    async def run(self):
        v = self.v
        while time.monotonic() < v.deadline:
            try:
                units = await v.playlist(v.query())
            except (OSError, asyncio.IncompleteReadError, HttpError, ValueError) as e:
                v.conn.close()
                await asyncio.sleep(0.1)
                continue
            now = time.time()
            for _, _, uri in units:
                self.seen.setdefault(uri, now)
            if units:
                v.pos = units[-1][:2]
        v.conn.close()


def percentile(hist, q):
    total = sum(hist.values())
    if not total:
        return None
    want, acc = q * total, 0
    for ms in sorted(hist):
        acc += hist[ms]
        if acc >= want:
            return ms
    return max(hist)


async def simulate(url, n, seconds, probe_url=None, cafile=None, ramp=2.0):
    ctx = None
    if urlsplit(url).scheme == "https":
        ctx = ssl.create_default_context(cafile=cafile)
    st = Stats()
    deadline = time.monotonic() + seconds
    probe = Probe(probe_url, None, deadline + 1) if probe_url else None
    tasks = [asyncio.create_task(probe.run())] if probe else []
    if probe:
        await asyncio.sleep(0.5)
    for k in range(n):
        tasks.append(asyncio.create_task(Viewer(url, ctx, st, probe, deadline).run()))
        if ramp and k % 50 == 49:
            await asyncio.sleep(ramp * 50 / n)
    await asyncio.gather(*tasks)
    return summary(st, n, seconds)


def summary(st, n, seconds):
    return {
        "viewers": n, "seconds": seconds,
        "requests": st.requests, "playlists": st.playlists, "units": st.units,
        "parts": st.parts, "bad": st.bad, "gaps": st.gaps, "order_errors": st.order_errors,
        "refills": st.refills, "gap_examples": st.gap_examples, "errors": st.errors, "error_kinds": st.error_kinds,
        "viewers_without_units": sum(1 for v in st.viewers if v[0] == 0),
        "viewers_with_errors": sum(1 for v in st.viewers if v[2]),
        "viewers_not_recovered": sum(1 for v in st.viewers if not v[3]),
        "min_units_per_viewer": min((v[0] for v in st.viewers), default=0),
        "max_recovery_s": round(max(st.recoveries), 3) if st.recoveries else None,
        "delay_samples": sum(st.delay_ms.values()),
        "delay_ms_p50": percentile(st.delay_ms, 0.5),
        "delay_ms_p99": percentile(st.delay_ms, 0.99),
        "delay_hist": st.delay_ms,
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("viewers", type=int)
    ap.add_argument("seconds", type=float)
    ap.add_argument("--probe")
    ap.add_argument("--cafile")
    ap.add_argument("--ramp", type=float, default=2.0)
    a = ap.parse_args()
    res = asyncio.run(simulate(a.url, a.viewers, a.seconds, a.probe, a.cafile, a.ramp))
    json.dump(res, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
