"""End to end: ffmpeg publishes H.264 (B-frames) + AAC over RTMP for ~10 s;
the HLS comes back over HTTP, probes right, decodes without errors, and its
segment durations add up to what was published."""
import os
import subprocess
import tempfile
import time

from onair_test import (Server, check, ffmpeg_publish, media_playlist_path, parse_media_playlist,
                        run, wait_for)

SECONDS = 10
SEGMENT = 2


def main(binary):
    srv = Server(binary, {"hls": {"segment_seconds": SEGMENT, "window_segments": 10}})
    try:
        check(srv.get("/healthz")[0] == 200, "/healthz is not 200")
        check(srv.get("/live/show/index.m3u8")[0] == 404, "unknown stream is not 404")

        t0 = time.monotonic()
        pub = ffmpeg_publish(srv.rtmp_url("show"), SECONDS, size="640x360")
        media = wait_for(lambda: media_playlist_path(srv, "show"), SEGMENT + 6,
                         "the multivariant playlist")
        first = time.monotonic() - t0
        print("playlist available %.2f s after ffmpeg started" % first)

        # Multivariant playlist: codecs from the config records, resolution, rate.
        status, hdrs, body = srv.get("/live/show/index.m3u8")
        text = body.decode()
        check(hdrs.get("content-type") == "application/vnd.apple.mpegurl",
              "playlist content-type: %s" % hdrs.get("content-type"))
        check('CODECS="avc1.64001e,mp4a.40.2"' in text, "multivariant CODECS:\n" + text)
        check("RESOLUTION=640x360" in text and "FRAME-RATE=30.000" in text,
              "multivariant RESOLUTION/FRAME-RATE:\n" + text)
        check("BANDWIDTH=" in text, "no BANDWIDTH")

        # While live: a sliding playlist without ENDLIST.
        status, hdrs, body = srv.get(media)
        live = body.decode()
        check(status == 200 and "#EXT-X-ENDLIST" not in live, "live playlist:\n" + live)
        for tag in ("#EXT-X-VERSION", "#EXT-X-TARGETDURATION", "#EXT-X-MEDIA-SEQUENCE",
                    "#EXT-X-MAP", "#EXT-X-PROGRAM-DATE-TIME", "#EXT-X-INDEPENDENT-SEGMENTS"):
            check(tag in live, "%s missing:\n%s" % (tag, live))

        out, err = pub.communicate(timeout=SECONDS + 30)
        check(pub.returncode == 0, "ffmpeg publish failed: %s" % err)
        wait_for(lambda: b"#EXT-X-ENDLIST" in srv.get(media)[2], 10, "the playlist to end")

        status, hdrs, body = srv.get(media)
        tags, segs, maps = parse_media_playlist(body.decode())
        total = sum(d for d, _ in segs)
        print("segments: %d, durations %s, total %.3f s" %
              (len(segs), ", ".join("%.3f" % d for d, _ in segs), total))
        check(abs(total - SECONDS) <= SEGMENT, "durations add up to %.3f, published %d"
              % (total, SECONDS))
        target = int(tags["#EXT-X-TARGETDURATION"])
        check(all(round(d) <= target for d, _ in segs), "a segment exceeds the target duration")
        check(len(maps) == 1, "one init segment expected, got %s" % maps)

        # Objects: content types, immutable caching, HEAD, ACAO.
        base = media.rsplit("/", 1)[0] + "/"
        status, hdrs, init = srv.get(base + maps[0])
        check(status == 200 and hdrs.get("content-type") == "video/mp4", "init: %s %s"
              % (status, hdrs))
        check("immutable" in hdrs.get("cache-control", ""), "init cache-control %s" % hdrs)
        check(hdrs.get("access-control-allow-origin") == "*", "ACAO missing")
        blobs = [init]
        for _, uri in segs:
            status, hdrs, seg = srv.get(base + uri)
            check(status == 200 and len(seg) > 0, "segment %s: %d" % (uri, status))
            blobs.append(seg)
        status, hdrs, body = srv.get(base + segs[0][1], method="HEAD")
        check(status == 200 and body == b"" and int(hdrs["content-length"]) == len(blobs[1]),
              "HEAD on a segment: %s %s" % (status, hdrs))

        # ffprobe on the reassembled stream: H.264 640x360 and AAC.
        with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False) as f:
            for b in blobs:
                f.write(b)
            path = f.name
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                "stream=codec_name,width,height", "-of", "csv=p=0", path],
                               capture_output=True, text=True)
        os.unlink(path)
        print("ffprobe:", probe.stdout.strip().replace("\n", " | "))
        check("h264,640,360" in probe.stdout and "aac" in probe.stdout,
              "ffprobe: %s %s" % (probe.stdout, probe.stderr))

        # A real HLS client reads the whole thing without a single error.
        dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                              srv.url("/live/show/index.m3u8"), "-f", "null", "-"],
                             capture_output=True, text=True, timeout=60)
        check(dec.returncode == 0 and dec.stderr.strip() == "",
              "ffmpeg reading the HLS printed errors:\n" + dec.stderr[-3000:])
        check(srv.alive(), "server died")
    finally:
        srv.stop()


if __name__ == "__main__":
    run(main)
