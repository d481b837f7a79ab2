"""Recording (issue 9): ffmpeg publishes 20 s with record.enabled; while live,
/live/NAME/index.m3u8?dvr=1 is an EVENT playlist from the first segment while
the live playlist slides; afterwards the VOD playlist lists every recorded
segment, ffmpeg decodes it without a message, its duration matches the publish
within one segment; the MP4 has both tracks, the same duration, moov before
mdat and seeks; Range requests (first byte, last byte, suffix, several
ranges, beyond the end); the listing, latest.m3u8; traversal and links out of
record.path get 400/404."""
import http.client
import json
import os
import re
import struct
import subprocess
import tempfile

from onair_test import (Server, check, ffmpeg_publish, media_playlist_path, parse_media_playlist,
                        run, wait_for)

SECONDS = 20
SEGMENT = 2


def probe_duration(url):
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration",
                          "-of", "csv=p=0", url], capture_output=True, text=True, timeout=60)
    check(out.returncode == 0, "ffprobe %s: %s" % (url, out.stderr))
    return float(out.stdout.strip())


def decode_clean(url):
    out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60)
    check(out.returncode == 0 and out.stderr.strip() == "",
          "ffmpeg -v error decoding %s printed:\n%s" % (url, out.stderr[-3000:]))


def check_ranges(srv, path, size):
    status, hdrs, body = srv.get(path)
    check(status == 200 and len(body) == size and hdrs.get("accept-ranges") == "bytes",
          "%s: %s, %d bytes, %s" % (path, status, len(body), hdrs))
    whole = body
    cases = [("bytes=0-0", 0, 0), ("bytes=%d-%d" % (size - 1, size - 1), size - 1, size - 1),
             ("bytes=-100", size - 100, size - 1), ("bytes=1000-", 1000, size - 1),
             ("bytes=10-%d" % (size * 3), 10, size - 1)]
    for rng, first, last in cases:
        status, hdrs, body = srv.get(path, headers={"Range": rng})
        check(status == 206, "%s %s: %s" % (path, rng, status))
        check(hdrs.get("content-range") == "bytes %d-%d/%d" % (first, last, size),
              "%s: Content-Range %s" % (rng, hdrs.get("content-range")))
        check(body == whole[first:last + 1], "%s: wrong bytes" % rng)
        check(int(hdrs.get("content-length")) == last - first + 1, "%s: Content-Length" % rng)
    # Several ranges: answered with the whole file (200), as the README says.
    status, hdrs, body = srv.get(path, headers={"Range": "bytes=0-1,5-9"})
    check(status == 200 and body == whole, "multi-range: %s" % status)
    for rng in ("bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 10), "bytes=-0"):
        status, hdrs, body = srv.get(path, headers={"Range": rng})
        check(status == 416 and hdrs.get("content-range") == "bytes */%d" % size,
              "%s: %s %s" % (rng, status, hdrs.get("content-range")))
    # If-Range with another validator: the whole file.
    status, hdrs, body = srv.get(path, headers={"Range": "bytes=0-0", "If-Range": '"other"'})
    check(status == 200 and body == whole, "If-Range mismatch: %s" % status)
    etag = hdrs.get("etag")
    status, _, _ = srv.get(path, headers={"Range": "bytes=0-0", "If-Range": etag})
    check(status == 206, "If-Range match: %s" % status)
    print("ranges on %s (%d bytes): first, last, suffix, open, clamped 206; several 200; "
          "beyond 416" % (path, size))


def main(binary):
    root = os.path.join(tempfile.mkdtemp(prefix="onair-rec-"), "recordings")
    srv = Server(binary, {"hls": {"segment_seconds": SEGMENT, "window_segments": 3}},
                 extra_yaml="record:\n  enabled: true\n  path: %s\n" % root)
    srv_ok = False
    try:
        check(srv.get("/vod/show/")[0] == 404, "a stream never recorded lists as 404")
        status, _, body = srv.get("/vod/show/index.json")
        check(status == 200 and b'"replays":[]' in body, "index.json of nothing: %s" % body)
        pub = ffmpeg_publish(srv.rtmp_url("show"), SECONDS, size="640x360")
        media = wait_for(lambda: media_playlist_path(srv, "show"), 15, "the live playlist")

        # Live rewind: after the live window has slid, the DVR playlist still starts at 0.
        def slid():
            tags, segs, _ = parse_media_playlist(srv.get(media)[2].decode())
            return int(tags.get("#EXT-X-MEDIA-SEQUENCE", "0")) >= 3
        wait_for(slid, SECONDS, "the live playlist to slide")
        status, hdrs, body = srv.get("/live/show/index.m3u8?dvr=1")
        dvr = body.decode()
        check(status == 200 and "#EXT-X-PLAYLIST-TYPE:EVENT" in dvr and "#EXT-X-ENDLIST" not in dvr,
              "dvr playlist:\n" + dvr)
        tags, segs, maps = parse_media_playlist(dvr)
        check(tags.get("#EXT-X-MEDIA-SEQUENCE") == "0", "dvr MEDIA-SEQUENCE:\n" + dvr)
        m = re.match(r"/vod/show/([0-9-]+)/seg-00000\.m4s$", segs[0][1])
        check(m is not None, "dvr does not start at the event's first segment:\n" + dvr)
        rec_id = m.group(1)
        check(len(segs) >= 4, "dvr lists %d segments" % len(segs))
        # A DVR viewer counts as a viewer (admin API): this test's polling (127.0.0.1)
        # and one client that only fetches the DVR playlist (127.0.0.5).
        c = http.client.HTTPConnection("127.0.0.1", srv.http_port, timeout=10,
                                       source_address=("127.0.0.5", 0))
        c.request("GET", "/live/show/index.m3u8?dvr=1")
        check(c.getresponse().status == 200, "dvr playlist from 127.0.0.5")
        c.close()
        aport = int(re.search(r"admin API on \S+ \(port (\d+)\)", srv.logtext()).group(1))
        c = http.client.HTTPConnection("127.0.0.1", aport, timeout=10)
        c.request("GET", "/api/v1/streams/show")
        viewers = json.loads(c.getresponse().read())["viewers"]
        c.close()
        check(viewers == 2, "viewers with a DVR client: %r" % viewers)
        live_tags, live_segs, _ = parse_media_playlist(srv.get(media)[2].decode())
        check(len(live_segs) < len(segs), "the live playlist stays small")
        for _, uri in segs[:1] + segs[-1:]:
            full = uri if uri.startswith("/") else "/live/show/" + uri
            check(srv.get(full)[0] == 200, "dvr segment %s" % full)
        print("dvr: %d segments from seg-00000 (live window: %d from #%s)" %
              (len(segs), len(live_segs), live_tags["#EXT-X-MEDIA-SEQUENCE"]))

        out, err = pub.communicate(timeout=SECONDS + 30)
        check(pub.returncode == 0, "ffmpeg publish failed: %s" % err)
        wait_for(lambda: "recording %s finished" % rec_id in srv.logtext(), 15,
                 "the recording to finish")

        vod = "/vod/show/%s/index.m3u8" % rec_id
        status, hdrs, body = srv.get(vod)
        text = body.decode()
        check(status == 200 and "#EXT-X-PLAYLIST-TYPE:VOD" in text and "#EXT-X-ENDLIST" in text,
              "vod playlist:\n" + text)
        tags, segs, maps = parse_media_playlist(text)
        rec_dir = os.path.join(root, "show", rec_id)
        files = sorted(f for f in os.listdir(rec_dir) if f.startswith("seg-"))
        check([u for _, u in segs] == files, "playlist %s vs files %s" % (segs, files))
        total = sum(d for d, _ in segs)
        check(abs(total - SECONDS) <= SEGMENT, "EXTINFs add up to %.3f s" % total)
        url = srv.url(vod)
        decode_clean(url)
        dur = probe_duration(url)
        check(abs(dur - SECONDS) <= SEGMENT, "ffprobe: %.3f s, published %d" % (dur, SECONDS))
        print("vod: %d segments, EXTINF total %.3f s, ffprobe %.3f s, decodes clean" %
              (len(segs), total, dur))

        # The MP4: both tracks, the same duration, moov before mdat, seekable over Range.
        wait_for(lambda: "replay.mp4 ready" in srv.logtext(), 30, "the MP4")
        mp4 = "/vod/show/%s.mp4" % rec_id
        out = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                              "stream=codec_type,duration:format=duration", "-of", "json",
                              srv.url(mp4)], capture_output=True, text=True, timeout=60)
        info = json.loads(out.stdout)
        kinds = sorted(st["codec_type"] for st in info["streams"])
        mp4_dur = float(info["format"]["duration"])
        check(kinds == ["audio", "video"], "MP4 tracks: %s" % kinds)
        check(abs(mp4_dur - dur) <= SEGMENT, "MP4 %.3f s vs VOD %.3f s" % (mp4_dur, dur))
        status, _, body = srv.get(mp4)
        boxes, pos = [], 0
        while pos + 8 <= len(body):
            size, kind = struct.unpack(">I4s", body[pos:pos + 8])
            boxes.append(kind.decode("latin-1"))
            pos += size if size >= 8 else len(body)
        check("moov" in boxes and "mdat" in boxes and boxes.index("moov") < boxes.index("mdat"),
              "MP4 top-level boxes: %s" % boxes)
        decode_clean(srv.url(mp4))
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ss", "12", "-i", srv.url(mp4),
                              "-t", "2", "-f", "null", "-"], capture_output=True, text=True,
                             timeout=60)
        check(out.returncode == 0 and not out.stderr.strip(), "seek in the MP4: " + out.stderr)
        check_ranges(srv, mp4, len(body))
        status, hdrs, _ = srv.get("/vod/show/latest.mp4")
        check(status == 302 and hdrs.get("location") == mp4, "latest.mp4: %s" % hdrs.get("location"))
        print("mp4: %s, %.3f s, boxes %s, decodes clean, seeks" % (kinds, mp4_dur, boxes))

        seg = "/vod/show/%s/%s" % (rec_id, files[1])
        check_ranges(srv, seg, os.path.getsize(os.path.join(rec_dir, files[1])))

        # Listing and the stable "latest" link.
        status, hdrs, body = srv.get("/vod/show/")
        check(status == 200 and rec_id in body.decode(), "listing:\n" + body.decode())
        status, hdrs, body = srv.get("/vod/show/index.json")
        check(status == 200 and ('"id":"%s"' % rec_id) in body.decode(), body.decode())
        status, hdrs, _ = srv.get("/vod/show/latest.m3u8")
        check(status == 302 and hdrs.get("location") == vod, "latest.m3u8: %s %s" %
              (status, hdrs.get("location")))
        check(srv.get("/vod/other/latest.m3u8")[0] == 404, "latest of nothing")
        status, _, body = srv.get("/vod/show/latest.json")
        check(status == 200 and json.loads(body) == {"m3u8": vod, "mp4": "/vod/show/%s.mp4" % rec_id},
              "latest.json: %s" % body)
        status, _, body = srv.get("/vod/other/latest.json")
        check(status == 200 and json.loads(body) == {"m3u8": None, "mp4": None}, body)

        # Traversal and links out of record.path.
        os.symlink("/etc", os.path.join(root, "show", "20991231-000000"))
        os.symlink("/etc/passwd", os.path.join(rec_dir, "seg-99999.m4s"))
        os.symlink("/etc", os.path.join(root, "etc"))
        for path in ("/vod/../etc/passwd", "/vod/show/%2e%2e/%2e%2e/etc/passwd",
                     "/vod/show/%s/..%%2f..%%2f..%%2fetc%%2fpasswd" % rec_id,
                     "/vod/show/20991231-000000/passwd", "/vod/show/20991231-000000/index.m3u8",
                     "/vod/show/%s/seg-99999.m4s" % rec_id, "/vod/etc/", "/vod/etc/latest.m3u8",
                     "/vod/show/%s/.index.m3u8.tmp" % rec_id, "/vod/show/%s/onair.yaml" % rec_id,
                     "/vod/show/%s%%00/index.m3u8" % rec_id, "/vod/show/%s/index.m3u8%%00" % rec_id):
            status, _, body = srv.get(path)
            check(status in (400, 403, 404) and b"root:" not in body,
                  "%s: %s %r" % (path, status, body[:80]))
        print("traversal and link attempts: 400/404")
        srv.stop()
        srv_ok = True
    finally:
        if not srv_ok:
            print(srv.logtext()[-5000:])
            srv.proc.kill()


if __name__ == "__main__":
    run(main)
