"""Crash safety and retention (issue 9): onair is killed (SIGKILL) in the
middle of a recording; at the next start the recording is closed (ENDLIST)
and plays (ffmpeg decodes it without a message), and record.max_bytes deletes
the oldest finished recordings first."""
import os
import subprocess
import tempfile
import time

from onair_test import Server, check, ffmpeg_publish, media_playlist_path, run, wait_for


def fake_recording(root, name, rec_id, size, age_s):
    d = os.path.join(root, name, rec_id)
    os.makedirs(d)
    with open(os.path.join(d, "seg-00000.m4s"), "wb") as f:
        f.write(b"\0" * size)
    pl = os.path.join(d, "index.m3u8")
    with open(pl, "w") as f:
        f.write("#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:VOD\n"
                "#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2.000,\nseg-00000.m4s\n#EXT-X-ENDLIST\n")
    t = time.time() - age_s
    os.utime(pl, (t, t))
    with open(os.path.join(d, "replay.mp4"), "wb") as f:
        f.write(b"\0" * 10)  # no MP4 job for these


def main(binary):
    root = os.path.join(tempfile.mkdtemp(prefix="onair-reccrash-"), "rec")
    yaml = "record:\n  enabled: true\n  path: %s\n" % root
    srv = Server(binary, {"hls": {"segment_seconds": 2}}, extra_yaml=yaml)
    pub = ffmpeg_publish(srv.rtmp_url("show"), 30, size="320x240")
    try:
        wait_for(lambda: media_playlist_path(srv, "show"), 15, "the live playlist")

        def recorded():
            for dirpath, _, files in os.walk(root):
                if "index.m3u8" in files:
                    with open(os.path.join(dirpath, "index.m3u8")) as f:
                        if f.read().count("#EXTINF") >= 3:
                            return dirpath
            return None
        rec_dir = wait_for(recorded, 20, "three recorded segments")
    finally:
        srv.proc.kill()  # SIGKILL: no chance to close anything
        srv.proc.wait()
        pub.kill()
        pub.wait()
    rec_id = os.path.basename(rec_dir)
    with open(os.path.join(rec_dir, "index.m3u8")) as f:
        text = f.read()
    check("#EXT-X-ENDLIST" not in text and "EVENT" in text, "left open by the crash:\n" + text)
    print("killed with %d segments recorded in %s" % (text.count("#EXTINF"), rec_id))

    # Retention at the next start: 2 x 1.5 MB of older replays plus this one, at most 3 MiB.
    fake_recording(root, "old", "20200101-000000", 1500000, 7200)
    fake_recording(root, "old", "20200102-000000", 1500000, 3600)
    srv = Server(binary, {"hls": {"segment_seconds": 2}},
                 extra_yaml=yaml + "  max_bytes: 3MiB\n")
    ok = False
    try:
        wait_for(lambda: "unfinished recording closed" in srv.logtext(), 10, "the recovery")
        wait_for(lambda: "retention: deleted old/20200101-000000" in srv.logtext(), 10,
                 "retention")
        check(not os.path.exists(os.path.join(root, "old", "20200101-000000")), "oldest kept")
        check(os.path.exists(os.path.join(root, "old", "20200102-000000")),
              "the second oldest was deleted too")
        check(os.path.exists(rec_dir), "the recovered recording was deleted")
        vod = "/vod/show/%s/index.m3u8" % rec_id
        status, _, body = srv.get(vod)
        check(status == 200 and b"#EXT-X-ENDLIST" in body and b"PLAYLIST-TYPE:VOD" in body,
              "recovered playlist: %s\n%s" % (status, body.decode()))
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", srv.url(vod),
                              "-f", "null", "-"], capture_output=True, text=True, timeout=60)
        check(out.returncode == 0 and not out.stderr.strip(),
              "the recovered recording does not decode cleanly:\n" + out.stderr[-2000:])
        wait_for(lambda: "vod/show/%s: replay.mp4 ready" % rec_id in srv.logtext(), 20,
                 "the recovered recording's MP4")
        status, hdrs, _ = srv.get("/vod/show/latest.m3u8")
        check(status == 302 and hdrs.get("location") == vod, "latest: %s" % hdrs.get("location"))
        status, hdrs, _ = srv.get("/vod/show/latest.mp4")
        check(status == 302 and hdrs.get("location") == "/vod/show/%s.mp4" % rec_id,
              "latest.mp4: %s %s" % (status, hdrs.get("location")))
        print("recovered: closed, decodes clean, MP4 made, latest.m3u8/mp4 point at it; "
              "retention deleted the oldest")
        srv.stop()
        ok = True
    finally:
        if not ok:
            print(srv.logtext()[-4000:])
            srv.proc.kill()


if __name__ == "__main__":
    run(main)
