"""The viewer page with recording on, in headless Chromium (issue 9): while the
stream is live and recorded it offers "Rewind to the start", which reloads it
with ?dvr=1 and plays the event from its start, well behind the live edge;
after the stream ends the offline page offers the latest replay
(/vod/NAME/latest.mp4), whose MP4 plays."""
import json
import os
import subprocess
import tempfile

from onair_test import Server, check, ffmpeg_publish, run

HERE = os.path.dirname(os.path.abspath(__file__))


def main(binary):
    root = os.path.join(tempfile.mkdtemp(prefix="onair-recweb-"), "rec")
    srv = Server(binary, {"hls": {"segment_seconds": 1}},
                 extra_yaml="record:\n  enabled: true\n  path: %s\n" % root)
    arts = os.environ.get("ONAIR_ARTIFACTS") or os.path.join(
        os.path.dirname(os.path.abspath(binary)), "meson-logs", "artifacts")
    os.makedirs(arts, exist_ok=True)
    ok = False
    pub = ffmpeg_publish(srv.rtmp_url("show"), 18, size="640x360")
    try:
        p = subprocess.run(["node", os.path.join(HERE, "browser_record.js"),
                            srv.url("/live/show/"), os.path.join(arts, "record")],
                           capture_output=True, text=True, timeout=150)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        check(lines, "browser script printed nothing: %s %s" % (p.stdout, p.stderr[-2000:]))
        res = json.loads(lines[-1])
        print(json.dumps(res))
        check(not res["errors"], "browser errors: %s" % res["errors"])
        check(not res["console"], "console errors: %s" % res["console"])
        check(res.get("rewindOffered"), "no rewind control while live")
        check("dvr=1" in res.get("dvrUrl", ""), "rewind did not load ?dvr=1: %s" % res.get("dvrUrl"))
        s = res.get("dvrSample")
        check(res.get("dvrPlaying") and s, "the rewound page did not play")
        check(s["time"] - s["start"] < 4 and s["end"] - s["time"] > 3,
              "rewind does not play from the start: %s" % s)
        check(res.get("replayOffered") and res["last"]["replayHref"] == "/vod/show/latest.mp4",
              "no replay offered once offline: %s" % res.get("last"))
        status, hdrs, _ = srv.get("/vod/show/latest.mp4")
        check(status == 302, "latest.mp4: %s" % status)
        pub.wait(timeout=30)
        srv.stop()
        ok = True
    finally:
        if pub.poll() is None:
            pub.kill()
        if not ok:
            print(srv.logtext()[-4000:])
            srv.proc.kill()


if __name__ == "__main__":
    run(main)
