"""Over real RTMP: audio-only and video-only streams, and a stream whose
timestamps cross ffmpeg's 2^31 ms FLV clock wrap, all come out as HLS whose
durations add up and which ffmpeg reads without an error."""
import subprocess

from onair_test import (Server, check, ffmpeg_publish, media_playlist_path, parse_media_playlist,
                        run, wait_for)

SECONDS = 8


def publish_and_check(srv, name, codecs, **kw):
    pub = ffmpeg_publish(srv.rtmp_url(name), SECONDS, size="320x240", realtime=False, **kw)
    _, err = pub.communicate(timeout=60)
    check(pub.returncode == 0, "%s: ffmpeg failed: %s" % (name, err))
    media = wait_for(lambda: media_playlist_path(srv, name), 10, "%s playlist" % name)
    wait_for(lambda: b"#EXT-X-ENDLIST" in srv.get(media)[2], 10, "%s to end" % name)
    _, _, index = srv.get("/live/%s/index.m3u8" % name)
    check(('CODECS="%s"' % codecs).encode() in index, "%s: %s" % (name, index.decode()))
    _, _, body = srv.get(media)
    _, segs, _ = parse_media_playlist(body.decode())
    total = sum(d for d, _ in segs)
    print("%s: %d segments, %.3f s, %s" % (name, len(segs), total, codecs))
    check(abs(total - SECONDS) <= 2, "%s: durations add up to %.3f" % (name, total))
    dec = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                          srv.url("/live/%s/index.m3u8" % name), "-f", "null", "-"],
                         capture_output=True, text=True, timeout=60)
    check(dec.returncode == 0 and not dec.stderr.strip(),
          "%s: ffmpeg reading the HLS: %s" % (name, dec.stderr[-2000:]))


def main(binary):
    srv = Server(binary)
    try:
        publish_and_check(srv, "audio", "mp4a.40.2", video=False)
        publish_and_check(srv, "video", "avc1.64000d", audio=False)
        # 2^31 ms = 2147483.648 s: start 4 s before ffmpeg's FLV clock wraps.
        publish_and_check(srv, "wrap", "avc1.64000d,mp4a.40.2",
                          extra=["-output_ts_offset", "2147479.6"])
        check(srv.alive(), "server died")
    finally:
        srv.stop()


if __name__ == "__main__":
    run(main)
