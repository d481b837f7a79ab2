"""GStreamer publishers: rtmpsink (librtmp) and rtmp2sink (GStreamer's own RTMP
client) each publish H.264 + AAC from flvmux; the HLS playlist appears, the
init segment plus media segments probe as H.264 and AAC, and the pipeline
ends cleanly (EOS over RTMP, then FCUnpublish/deleteStream)."""
import os
import subprocess
import sys
import tempfile

from onair_test import (Failure, Server, check, media_playlist_path, parse_media_playlist, run,
                        wait_for)

SECONDS = 8
SEGMENT = 2
FPS = 30


def have(element):
    return subprocess.run(["gst-inspect-1.0", element], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def aac_encoder():
    for enc in ("avenc_aac", "voaacenc", "fdkaacenc"):
        if have(enc):
            return enc
    return None


def pipeline(sink, url, enc):
    location = url + " live=1" if sink == "rtmpsink" else url
    audio_buffers = SECONDS * 44100 // 1024 + 1
    return ["gst-launch-1.0", "-e",
            "videotestsrc", "num-buffers=%d" % (SECONDS * FPS), "is-live=true", "!",
            "video/x-raw,format=I420,width=320,height=240,framerate=%d/1" % FPS, "!",
            "x264enc", "tune=zerolatency", "key-int-max=%d" % FPS, "!", "h264parse", "!",
            "flvmux", "name=m", "streamable=true", "!", sink, "location=%s" % location,
            "audiotestsrc", "is-live=true", "num-buffers=%d" % audio_buffers, "!",
            "audio/x-raw,rate=44100", "!", "audioconvert", "!", enc, "!", "aacparse", "!", "m."]


def probe_stream(srv, name):
    """Waits for two segments of NAME, returns ffprobe's 'codec_name' lines for init+segments."""
    media = wait_for(lambda: media_playlist_path(srv, name), 15, "%s playlist" % name)

    def two_segments():
        status, _, body = srv.get(media)
        tags, segs, maps = parse_media_playlist(body.decode()) if status == 200 else ({}, [], [])
        return (segs, maps) if len(segs) >= 2 and maps else None

    segs, maps = wait_for(two_segments, SECONDS + 10, "two segments of %s" % name)
    base = media.rsplit("/", 1)[0] + "/"
    blobs = []
    for uri in [maps[0]] + [u for _, u in segs]:
        status, _, body = srv.get(base + uri)
        check(status == 200 and body, "%s: HTTP %d" % (uri, status))
        blobs.append(body)
    with tempfile.NamedTemporaryFile(suffix=".mp4", delete=False) as f:
        f.write(b"".join(blobs))
        path = f.name
    try:
        probe = subprocess.run(["ffprobe", "-v", "error", "-show_entries",
                                "stream=codec_name,width,height", "-of", "csv=p=0", path],
                               capture_output=True, text=True, timeout=30)
    finally:
        os.unlink(path)
    return probe.stdout + probe.stderr


def publish_and_check(srv, sink, name, enc):
    gst = subprocess.Popen(pipeline(sink, srv.rtmp_url(name), enc), stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
    try:
        probe = probe_stream(srv, name)
        out, _ = gst.communicate(timeout=SECONDS + 30)
    except (Failure, subprocess.TimeoutExpired):
        gst.kill()
        out, _ = gst.communicate()
        print(out[-3000:], file=sys.stderr)
        raise
    print("%s: ffprobe %s" % (sink, probe.strip().replace("\n", " | ")))
    check("h264,320,240" in probe and "aac" in probe, "%s: ffprobe says %r" % (sink, probe))
    check(gst.returncode == 0, "%s: gst-launch exited %d:\n%s" % (sink, gst.returncode, out[-3000:]))
    check("ERROR" not in out, "%s: pipeline error:\n%s" % (sink, out[-3000:]))
    # The publisher ended its stream: the playlist gets its ENDLIST.
    media = media_playlist_path(srv, name)
    wait_for(lambda: b"#EXT-X-ENDLIST" in srv.get(media)[2], 10, "%s playlist to end" % name)


def main(binary):
    enc = aac_encoder()
    missing = [e for e in ("x264enc", "h264parse", "flvmux", "aacparse", "rtmpsink",
                           "rtmp2sink") if not have(e)]
    if missing or not enc:
        print("SKIP: GStreamer elements missing: %s" % (missing or ["an AAC encoder"]))
        sys.exit(77)
    srv = Server(binary, {"hls": {"segment_seconds": SEGMENT, "window_segments": 6}})
    try:
        publish_and_check(srv, "rtmp2sink", "gst2", enc)
        publish_and_check(srv, "rtmpsink", "gst1", enc)
        check(srv.alive(), "server died")
    finally:
        srv.stop()


if __name__ == "__main__":
    run(main)
