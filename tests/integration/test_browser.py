"""hls.js in headless Chromium plays a live stream from onair's player page:
the <video> element's clock advances by several seconds with no error."""
import json
import os
import subprocess

from onair_test import Server, check, ffmpeg_publish, media_playlist_path, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def main(binary):
    srv = Server(binary, {"hls": {"segment_seconds": 1, "window_segments": 6}})
    pub = None
    try:
        pub = ffmpeg_publish(srv.rtmp_url("web"), 40, size="640x360", gop=30)
        wait_for(lambda: media_playlist_path(srv, "web"), 10, "the stream to go live")
        status, hdrs, body = srv.get("/live/web/")
        check(status == 200 and b"hls.min.js" in body, "player page: %s" % status)
        status, hdrs, js = srv.get("/static/hls.min.js")
        check(status == 200 and len(js) > 100000, "hls.min.js not served (%d)" % status)
        p = subprocess.run(["node", os.path.join(HERE, "browser_play.js"),
                            srv.url("/live/web/"), "4", "30"],
                           capture_output=True, text=True, timeout=90)
        lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
        check(lines, "browser script printed no result: %s %s" % (p.stdout, p.stderr[-2000:]))
        res = json.loads(lines[-1])
        print("browser: played %.2f s, hls.js=%s, size %s, errors %s" %
              (res["played"], res["hlsjs"], res.get("size"), res["errors"]))
        check(res["hlsjs"], "hls.js was not loaded/supported in the page")
        check(res["played"] >= 4, "video did not play 4 s: %s" % json.dumps(res)[:3000])
        check(res.get("size") == "640x360", "video size %s" % res.get("size"))
        check(not res["errors"], "errors in the page: %s" % res["errors"])
    finally:
        if pub:
            pub.kill()
            pub.wait()
        srv.stop()


if __name__ == "__main__":
    run(main)
