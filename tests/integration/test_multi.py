"""Many publishers at once, each on its own name: every stream gets its own
playlist and segments, none leaks into another, and one publisher leaving
does not disturb the rest."""
import os
import tempfile

from onair_test import (Server, check, ffmpeg_publish_file, make_flv, media_playlist_path,
                        parse_media_playlist, run, wait_for)

N = 6
SECONDS = 8


def main(binary):
    flv = os.path.join(tempfile.mkdtemp(prefix="onair-multi-"), "in.flv")
    make_flv(flv, SECONDS)
    short = flv.replace("in.flv", "short.flv")
    make_flv(short, 3)
    srv = Server(binary, {"hls": {"segment_seconds": 1, "window_segments": 20}})
    pubs = []
    try:
        names = ["cam%d" % i for i in range(N)]
        for name in names:
            pubs.append(ffmpeg_publish_file(flv, srv.rtmp_url(name)))
        quitter = ffmpeg_publish_file(short, srv.rtmp_url("quitter"))
        for name in names + ["quitter"]:
            wait_for(lambda: media_playlist_path(srv, name), 10, "stream %s live" % name)
        check(quitter.wait(timeout=30) == 0, "short publisher failed")
        for p in pubs:
            _, err = p.communicate(timeout=SECONDS + 30)
            check(p.returncode == 0, "a publisher failed: %s" % err)
        seen = set()
        for name in names:
            wait_for(lambda: b"#EXT-X-ENDLIST" in srv.get("/live/%s/media.m3u8" % name)[2], 10,
                     "%s to end" % name)
            _, _, body = srv.get("/live/%s/media.m3u8" % name)
            tags, segs, maps = parse_media_playlist(body.decode())
            total = sum(d for d, _ in segs)
            check(abs(total - SECONDS) <= 1.0, "%s: durations add up to %.3f" % (name, total))
            for _, uri in segs:
                status, _, seg = srv.get("/live/%s/%s" % (name, uri))
                check(status == 200 and seg, "%s/%s: %d" % (name, uri, status))
            uris = set(maps) | {u for _, u in segs}
            check(not (uris & seen), "%s reuses another stream's URIs" % name)
            seen |= uris
        print("%d streams, %d distinct objects" % (N, len(seen)))
        check(srv.alive(), "server died")
    finally:
        for p in pubs:
            if p.poll() is None:
                p.kill()
                p.wait()
        srv.stop()


if __name__ == "__main__":
    run(main)
