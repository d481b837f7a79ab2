"""A publisher that reconnects in the middle of an event (issue 9). With the
reconnect grace (issue 11: hls.reconnect_grace_seconds in the build's config
reference) it is one recording with one EXT-X-DISCONTINUITY and two init
segments, closed when the grace ends; without it each publish is its own
recording: two replays, latest.m3u8 on the second. Either way they play.
A stream whose entry says `record: false` is not recorded.
Also a stream with `playback: signed`: its replays need the signed link's
exp/sig, and its playlist is rewritten to carry them."""
import os
import subprocess
import tempfile
import time
import urllib.parse

from onair_test import Server, check, ffmpeg_publish, run, wait_for

SECRET = "0123456789abcdef-secret"


def main(binary):
    root = os.path.join(tempfile.mkdtemp(prefix="onair-recre-"), "rec")
    yaml = ("record:\n  enabled: true\n  path: %s\n"
            "streams:\n  - name: show\n    key: showkey123\n"
            "  - name: priv\n    key: privkey123\n    playback: signed\n"
            "  - name: norec\n    key: norecky123\n    record: false\n" % root)
    ref = subprocess.run([binary, "--config-reference"], capture_output=True, text=True).stdout
    grace = "hls.reconnect_grace_seconds" in ref
    hls = {"segment_seconds": 1}
    if grace:
        hls["reconnect_grace_seconds"] = 3
    srv = Server(binary, {"hls": hls, "http": {"signing_secret": SECRET}}, extra_yaml=yaml)
    ok = False
    try:
        for i in range(2):
            pub = ffmpeg_publish(srv.rtmp_url("showkey123"), 4, size="320x240")
            out, err = pub.communicate(timeout=60)
            check(pub.returncode == 0, "publish %d: %s" % (i, err))
            if not grace:
                wait_for(lambda: srv.logtext().count("replay.mp4 ready") >= i + 1, 20,
                         "replay %d" % (i + 1))
            time.sleep(1.1)  # IDs have a one-second resolution (a collision gets "-2")
        replays = 1 if grace else 2
        wait_for(lambda: srv.logtext().count("replay.mp4 ready") >= replays, 20, "the replays")
        ids = sorted(os.listdir(os.path.join(root, "show")))
        check(len(ids) == replays, "%d recording(s) expected: %s" % (replays, ids))
        status, hdrs, body = srv.get("/vod/show/%s/index.m3u8" % ids[0])
        if grace:
            text = body.decode()
            check(text.count("#EXT-X-DISCONTINUITY\n") == 1 and text.count("#EXT-X-MAP") == 2,
                  "one discontinuity and two init segments expected:\n" + text)
        status, hdrs, _ = srv.get("/vod/show/latest.m3u8")
        check(status == 302 and ids[-1] in hdrs.get("location", ""), "latest: %s" % hdrs)
        for rec_id in ids:
            url = srv.url("/vod/show/%s/index.m3u8" % rec_id)
            out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i", url, "-f", "null",
                                  "-"], capture_output=True, text=True, timeout=60)
            check(out.returncode == 0, "%s: %s" % (rec_id, out.stderr))
            if out.stderr.strip():
                print("ffmpeg on %s said: %s" % (rec_id, out.stderr.strip()[:300]))
        print("reconnect (%s): recordings %s decode; latest is the newest" %
              ("grace: one recording, one discontinuity" if grace else "no grace", ids))

        # A signed stream's replays.
        pub = ffmpeg_publish(srv.rtmp_url("privkey123"), 3, size="320x240")
        pub.communicate(timeout=60)
        wait_for(lambda: srv.logtext().count("replay.mp4 ready") >= replays + 1, 20 + 3 * grace,
                 "the signed replay")
        rec_id = os.listdir(os.path.join(root, "priv"))[0]
        for path in ("/vod/priv/", "/vod/priv/latest.m3u8", "/vod/priv/%s/index.m3u8" % rec_id,
                     "/vod/priv/%s.mp4" % rec_id, "/vod/priv/%s/seg-00000.m4s" % rec_id):
            check(srv.get(path)[0] == 403, "%s without a signature is not 403" % path)
        p = subprocess.run([binary, "--config", srv.config_path, "sign", "priv", "--ttl", "1h"],
                           capture_output=True, text=True, timeout=10)
        check(p.returncode == 0, "onair sign: %s" % p.stderr)
        query = urllib.parse.urlsplit(p.stdout.strip().split()[-1]).query
        status, _, body = srv.get("/vod/priv/%s/index.m3u8?%s" % (rec_id, query))
        text = body.decode()
        check(status == 200 and "seg-00000.m4s?" + query in text, "signed playlist:\n" + text)
        status, hdrs, _ = srv.get("/vod/priv/latest.mp4?" + query)
        check(status == 302 and hdrs.get("location", "").endswith(".mp4?" + query),
              "signed latest.mp4: %s" % hdrs.get("location"))
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                              srv.url("/vod/priv/%s/index.m3u8?%s" % (rec_id, query)),
                              "-f", "null", "-"], capture_output=True, text=True, timeout=60)
        check(out.returncode == 0 and not out.stderr.strip(), "signed replay: " + out.stderr)
        print("signed: 403 without exp/sig, playlist rewritten, decodes with them")

        # A stream whose entry says record: false is not recorded.
        pub = ffmpeg_publish(srv.rtmp_url("norecky123"), 2, size="320x240")
        pub.communicate(timeout=60)
        check("live/norec: started" in srv.logtext(), "norec did not publish")
        check(not os.path.exists(os.path.join(root, "norec")), "record: false was recorded")
        check("live/norec: recording" not in srv.logtext(), "record: false was recorded")
        srv.stop()
        ok = True
    finally:
        if not ok:
            print(srv.logtext()[-4000:])
            srv.proc.kill()


if __name__ == "__main__":
    run(main)
