"""LL-HLS over real sockets: ffmpeg publishes, the real server cuts parts, and
blocking playlist reloads, preload-hinted parts and delta updates are checked
from outside; 1,000 held requests are released by their part without new
threads; ffmpeg's HLS demuxer and GStreamer read the LL playlist as ordinary
HLS; SIGTERM with requests held exits cleanly."""
import asyncio
import re
import subprocess
import time

from onair_test import Server, check, make_flv, ffmpeg_publish_file, run, wait_for

PART_RE = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="([^"]+)"(,INDEPENDENT=YES)?')


def parts_of(text):
    return [(float(d), uri) for d, uri, _ in PART_RE.findall(text)]


def hint_of(text):
    m = re.search(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="([^"]+)"', text)
    return m.group(1) if m else None


def msn_part(uri):
    """part-GEN-MSN-IDX.m4s -> (msn, idx)"""
    m = re.match(r"part-[0-9a-f]+-(\d+)-(\d+)\.m4s$", uri)
    return int(m.group(1)), int(m.group(2))


def threads_of(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("Threads:"):
                return int(line.split()[1])
    return -1


async def held_get(port, path, results):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n" % path).encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ")[1]) if head else 0
    results.append((status, body))


async def many_held(port, path, n, ready_fn):
    results = []
    tasks = [asyncio.create_task(held_get(port, path, results)) for _ in range(n)]
    await asyncio.sleep(0)
    await ready_fn()
    await asyncio.wait_for(asyncio.gather(*tasks), 30)
    return results


def main(binary):
    flv = "/tmp/onair-llhls-%d.flv" % time.time_ns()
    make_flv(flv, 40, size="320x240", gop=30)  # 1 s keyframe interval
    srv = Server(binary, {"hls": {"segment_seconds": 1, "window_segments": 10,
                                  "part_seconds": 0.333}})
    pub = None
    try:
        # A playlist request that comes before the stream's first part is held,
        # not answered 404 (the publisher is connecting meanwhile).
        pub = ffmpeg_publish_file(flv, srv.rtmp_url("ll"))
        wait_for(lambda: any("live/ll: publishing" in l for l in srv.log), 10, "the publish")
        status, _, body = srv.get("/live/ll/index.m3u8")
        check(status == 200 and b"media.m3u8" in body, "early index.m3u8: %d %r" % (status, body))
        print("first request before any part: %d, held until the first part" % status)

        status, hdrs, body = srv.get("/live/ll/media.m3u8")
        text = body.decode()
        check("#EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES" in text, "server control:\n" + text)
        check(re.search(r"PART-HOLD-BACK=([0-9.]+)", text), "hold back:\n" + text)
        m = re.search(r"#EXT-X-PART-INF:PART-TARGET=([0-9.]+)", text)
        check(m, "part-inf:\n" + text)
        target = float(m.group(1))
        hold = float(re.search(r"PART-HOLD-BACK=([0-9.]+)", text).group(1))
        check(hold >= 3 * target - 1e-9, "PART-HOLD-BACK %.3f < 3 x %.3f" % (hold, target))
        check("#EXT-X-VERSION:6" in text, "version:\n" + text)

        # Let a few segments accumulate.
        wait_for(lambda: srv.get("/live/ll/media.m3u8")[2].count(b"#EXTINF") >= 8, 30,
                 "8 segments")
        text = srv.get("/live/ll/media.m3u8")[2].decode()
        for dur, uri in parts_of(text):
            check(dur <= target + 1e-9, "part %s %.3f > PART-TARGET %.3f" % (uri, dur, target))
        hint = hint_of(text)
        check(hint, "no preload hint:\n" + text)

        # 1. Blocking reload for the hinted part: answered once it is cut,
        # and the answer lists it.
        msn, idx = msn_part(hint)
        t0 = time.monotonic()
        status, _, body = srv.get("/live/ll/media.m3u8?_HLS_msn=%d&_HLS_part=%d" % (msn, idx))
        waited = time.monotonic() - t0
        check(status == 200, "blocking reload: %d" % status)
        check(reaches(body.decode(), msn, idx),
              "blocking reload returned without the part %s:\n%s" % (hint, body.decode()))
        print("blocking reload for %s answered in %.3f s" % (hint, waited))

        # 1b. The last part of a segment (1 s segments of three 0.333 s parts here) is
        # announced with its segment, not held back until the next segment's first part.
        msn2 = msn_part(hint_of(body.decode()))[0] + 1
        status, _, body2 = srv.get("/live/ll/media.m3u8?_HLS_msn=%d&_HLS_part=2" % msn2)
        listed = [msn_part(u) for _, u in parts_of(body2.decode())]
        check(status == 200 and (msn2, 2) in listed and (msn2 + 1, 0) not in listed,
              "last part of segment %d: %s" % (msn2, listed[-4:]))

        # 2. The next hinted part itself, asked for before it exists: held, then served.
        text = body.decode()
        hint = hint_of(text)
        status, hdrs, pbody = srv.get("/live/ll/" + hint)
        check(status == 200 and len(pbody) > 100, "hinted part: %d %d bytes" % (status, len(pbody)))
        check(pbody[4:8] == b"moof", "hinted part is not a fragment: %r" % pbody[:16])
        check(hdrs.get("cache-control", "").startswith("public, max-age=31536000"),
              "part cache-control %s" % hdrs.get("cache-control"))
        status, _, body = srv.get("/live/ll/media.m3u8")
        check(hint in body.decode(), "the served hinted part is not listed")

        # A segment is its parts, byte for byte.
        text = body.decode()
        segs = re.findall(r"#EXTINF:[0-9.]+,\n(seg-\S+)", text)
        last_seg = segs[-1]
        seg_msn = int(last_seg.rsplit("-", 1)[1].split(".")[0])
        seg_parts = [u for _, u in parts_of(text) if msn_part(u)[0] == seg_msn]
        check(seg_parts, "no parts listed for %s" % last_seg)
        joined = b"".join(srv.get("/live/ll/" + u)[2] for u in seg_parts)
        check(joined == srv.get("/live/ll/" + last_seg)[2],
              "%s is not the concatenation of its %d parts" % (last_seg, len(seg_parts)))

        # 3. Bad directives and a request too far ahead: 400 at once.
        for q in ("_HLS_msn=-1", "_HLS_msn=abc", "_HLS_part=2", "_HLS_msn=99999999999999999999",
                  "_HLS_msn=%d" % (seg_msn + 4), "_HLS_skip=maybe"):
            status, _, _ = srv.get("/live/ll/media.m3u8?" + q)
            check(status == 400, "?%s: %d, not 400" % (q, status))

        # 4. Delta update: same render as the full playlist, minus the skipped segments.
        for _ in range(20):
            full = srv.get("/live/ll/media.m3u8")[2].decode()
            delta = srv.get("/live/ll/media.m3u8?_HLS_skip=YES")[2].decode()
            if hint_of(full) == hint_of(delta):
                break
        check(hint_of(full) == hint_of(delta), "could not catch one render twice")
        m = re.search(r"#EXT-X-SKIP:SKIPPED-SEGMENTS=(\d+)", delta)
        check(m, "no EXT-X-SKIP in the delta update:\n" + delta)
        skipped = int(m.group(1))
        check("#EXT-X-VERSION:9" in delta, "delta update version:\n" + delta)
        skip_until = float(re.search(r"CAN-SKIP-UNTIL=([0-9.]+)", full).group(1))
        durs = [float(d) for d in re.findall(r"#EXTINF:([0-9.]+),", full)]
        open_dur = sum(d for d, u in parts_of(full) if msn_part(u)[0] > seg_msn_of_last(full))
        total = sum(durs) + open_dur
        want = 0
        end = 0.0
        for d in durs:
            end += d
            if total - end >= skip_until - 1e-9:
                want += 1
        full_uris = re.findall(r"#EXTINF:[0-9.]+,\n(seg-\S+)", full)
        delta_uris = re.findall(r"#EXTINF:[0-9.]+,\n(seg-\S+)", delta)
        check(skipped == want and delta_uris == full_uris[skipped:] and skipped > 0,
              "skipped %d, expected %d (skip-until %.1f):\n%s\n---\n%s" %
              (skipped, want, skip_until, full, delta))
        print("delta update skips %d of %d segments" % (skipped, len(full_uris)))

        # 5. 1,000 requests held for the next part, released together by it, no new thread.
        text = srv.get("/live/ll/media.m3u8")[2].decode()
        hint = hint_of(text)
        msn, idx = msn_part(hint)
        path = "/live/ll/media.m3u8?_HLS_msn=%d&_HLS_part=%d" % (msn, idx + 1)
        before = threads_of(srv.proc.pid)
        during = []

        async def sample():
            await asyncio.sleep(0.2)
            during.append(threads_of(srv.proc.pid))

        results = asyncio.run(many_held(srv.http_port, path, 1000, sample))
        after = threads_of(srv.proc.pid)
        ok = [b for s, b in results if s == 200]
        check(len(ok) == 1000, "held requests: %d of 1000 answered 200 (%s)" %
              (len(ok), sorted(set(s for s, _ in results))))
        want_part = "part-%s-%d-%d.m4s" % (hint.split("-")[1], msn, idx + 1)
        check(all(reaches(b.decode(), msn, idx + 1) for b in ok),
              "a released answer lacks the part it waited for")
        check(during and during[0] == before and after == before,
              "threads before %d, while 1000 held %s, after %d" % (before, during, after))
        print("1000 held requests released by %s; threads %d -> %s -> %d" %
              (want_part, before, during, after))

        # 6. Ordinary HLS clients read the LL playlist: ffmpeg's demuxer, GStreamer.
        p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", srv.url("/live/ll/index.m3u8"),
                            "-t", "4", "-f", "null", "-"], capture_output=True, text=True,
                           timeout=60)
        check(p.returncode == 0 and not p.stderr.strip(),
              "ffmpeg read the LL playlist with errors: %s" % p.stderr[-2000:])
        p = subprocess.run(["timeout", "8", "gst-launch-1.0", "-q", "playbin",
                            "uri=" + srv.url("/live/ll/index.m3u8"),
                            "video-sink=fakesink sync=true", "audio-sink=fakesink sync=true"],
                           capture_output=True, text=True)
        check(p.returncode == 124 and "ERROR" not in p.stdout + p.stderr,
              "GStreamer playbin: rc %d %s" % (p.returncode, (p.stdout + p.stderr)[-2000:]))
        print("ffmpeg and GStreamer playbin read the LL playlist without errors")

        # 7. Requests held at shutdown: SIGTERM still exits promptly and cleanly.
        text = srv.get("/live/ll/media.m3u8")[2].decode()
        msn, idx = msn_part(hint_of(text))
        socks = []
        import socket
        for _ in range(50):
            s = socket.create_connection(("127.0.0.1", srv.http_port))
            s.sendall(("GET /live/ll/media.m3u8?_HLS_msn=%d HTTP/1.1\r\nHost: t\r\n\r\n" %
                       (msn + 2)).encode())
            socks.append(s)
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.stop()  # raises on a non-zero exit or a sanitizer report
        print("SIGTERM with 50 held requests: exit 0 after %.2f s" % (time.monotonic() - t0))
        for s in socks:
            s.close()
    finally:
        if pub:
            pub.kill()
            pub.wait()
        srv.stop()
        subprocess.run(["rm", "-f", flv])


def reaches(text, msn, idx):
    """True if playlist TEXT has part IDX of segment MSN, or anything after it."""
    have = [msn_part(u) for _, u in parts_of(text)]
    done = [int(m) for m in re.findall(r"#EXTINF:[0-9.]+,\nseg-[0-9a-f]+-(\d+)\.m4s", text)]
    return (msn, idx) in have or any(p > (msn, idx) for p in have) or (done and max(done) >= msn
                                                                      and (msn, idx) not in have
                                                                      and any(p[0] > msn for p in have))


def seg_msn_of_last(text):
    segs = re.findall(r"#EXTINF:[0-9.]+,\nseg-[0-9a-f]+-(\d+)\.m4s", text)
    return int(segs[-1]) if segs else -1


if __name__ == "__main__":
    run(main)
