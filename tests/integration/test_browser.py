"""onair's pages in headless Chromium at a phone-sized viewport (390x844):

- the front page says how to publish while nothing is live, then lists a live
  stream with a link to its viewer page;
- the viewer page plays the stream with hls.js in low-latency mode for 20 s with
  no fatal error and no console error, shows the latency, and, when the stream
  is stopped and published again under the same name, says so (offline or
  reconnecting) and resumes playing by itself, without a reload;
- when the publisher stalls (SIGSTOP: connection open, no media) the page says
  "reconnecting" instead of freezing on "live", and plays on when it resumes.

Screenshots are kept as artifacts: $ONAIR_ARTIFACTS, by default
meson-logs/artifacts/ next to the binary under test (the meson build dir)."""
import json
import os
import re
import signal
import subprocess
import time

from onair_test import Failure, Server, check, free_port, media_playlist_path, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "browser_pages.js")
PLAY_SECONDS = 20
RESUME_DEADLINE = 60  # after the republish; generous for a loaded CI machine


def publish(srv, name, seconds=300):
    """ffmpeg publishing a light 640x360 30 fps stream with a 1 s GOP."""
    return subprocess.Popen(
        ["ffmpeg", "-nostdin", "-v", "error", "-re",
         "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=30",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", str(seconds),
         "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-g", "30",
         "-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "64k", "-f", "flv", srv.rtmp_url(name)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def stop(p):
    if p and p.poll() is None:
        p.kill()
    if p:
        p.wait()


def artifacts_dir(binary):
    d = os.environ.get("ONAIR_ARTIFACTS") or os.path.join(
        os.path.dirname(os.path.abspath(binary)), "meson-logs", "artifacts")
    os.makedirs(d, exist_ok=True)
    return d


def node(*args, timeout=90):
    """Runs browser_pages.js to completion; returns its last JSON line."""
    p = subprocess.run(["node", SCRIPT] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    lines = [l for l in p.stdout.splitlines() if l.startswith("{")]
    check(lines, "browser script printed nothing: %s %s" % (p.stdout, p.stderr[-2000:]))
    return json.loads(lines[-1])


def check_front(srv, expect, shot):
    res = node("front", srv.url("/"), expect, shot)
    print("front page (%s): state %s, streams %s, help open %s, errors %s" %
          (expect, res.get("state"), res.get("streams"), res.get("helpOpen"), res["errors"]))
    check(not res["errors"], "errors on the front page: %s" % res["errors"])
    check(res.get("server") == "rtmp://127.0.0.1:%d/live" % srv.rtmp_port,
          "publishing help: %s" % res.get("server"))
    if expect == "empty":
        check(res.get("state") == "empty", "front page state %s" % res.get("state"))
        check(res.get("emptyVisible") and res.get("helpOpen"),
              "no-stream text or publishing help not shown: %s" % res)
        check("/live/show" in res.get("ffmpeg", ""), "ffmpeg line: %s" % res.get("ffmpeg"))
    else:
        check(res.get("state") == "live", "front page state %s" % res.get("state"))
        cards = [s for s in res.get("streams", []) if s["name"] == expect]
        check(cards, "stream %s not listed: %s" % (expect, res.get("streams")))
        check(cards[0]["href"] == "/live/%s/" % expect, "link %s" % cards[0]["href"])
        check("640\u00d7360" in cards[0]["text"], "no resolution on the card: %s" % cards[0])
        thumb = cards[0].get("thumb") or {}
        check(thumb.get("shown") and thumb.get("width") == 480 and
              thumb.get("src", "").startswith("/live/%s/thumb.jpg?t=" % expect),
              "no thumbnail on the card: %s" % cards[0])
    return res


def main(binary):
    art = artifacts_dir(binary)
    srv = Server(binary, {"rtmp": {"listen": "127.0.0.1:%d" % free_port()},
                          "hls": {"segment_seconds": 1, "window_segments": 6}})
    pub = None
    try:
        status, _, body = srv.get("/static/hls.min.js")
        check(status == 200 and len(body) > 100000, "hls.min.js not served (%d)" % status)

        check_front(srv, "empty", os.path.join(art, "front-empty-390x844.png"))

        pub = publish(srv, "web")
        wait_for(lambda: media_playlist_path(srv, "web"), 15, "the stream to go live")
        status, _, body = srv.get("/live/web/")
        check(status == 200 and b"/static/hls.min.js" in body, "viewer page: %d" % status)
        check_front(srv, "web", os.path.join(art, "front-390x844.png"))

        shot = os.path.join(art, "viewer-390x844.png")
        deadline = PLAY_SECONDS + 2 * RESUME_DEADLINE + 60
        browser = subprocess.Popen(["node", SCRIPT, "viewer", srv.url("/live/web/"),
                                    str(PLAY_SECONDS), shot, "2", str(deadline)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        res, acted_at = None, None
        try:
            for line in browser.stdout:
                if not line.startswith("{"):
                    continue
                ev = json.loads(line)
                event = ev.get("event")
                if event == "played":
                    # Cycle 1: the publisher goes away and publishes again.
                    print("played %d s (latency %.2f s); stopping the publisher" %
                          (PLAY_SECONDS, ev.get("latency") or -1))
                    stop(pub)
                    pub = None
                elif event == "down" and ev["cycle"] == 1:
                    print("page says %s; publishing again" % ev["state"])
                    pub = publish(srv, "web")
                    acted_at = time.monotonic()
                elif event == "resumed" and ev["cycle"] == 1:
                    # Cycle 2: the publisher stalls (connection open, no media), then goes on.
                    print("page resumed %.1f s after the republish; pausing the publisher" %
                          (time.monotonic() - acted_at))
                    pub.send_signal(signal.SIGSTOP)
                elif event == "down" and ev["cycle"] == 2:
                    print("page says %s; resuming the publisher" % ev["state"])
                    pub.send_signal(signal.SIGCONT)
                    acted_at = time.monotonic()
                elif event == "resumed":
                    print("page resumed %.1f s after the publisher did" %
                          (time.monotonic() - acted_at))
                else:
                    res = ev
            browser.wait(timeout=30)
        finally:
            if browser.poll() is None:
                browser.kill()
                browser.wait()
            if pub and pub.poll() is None:
                pub.send_signal(signal.SIGCONT)
        check(res, "browser script printed no result: %s" % browser.stderr.read()[-2000:])
        print("page history: %s" % res.get("history"))
        first = res.get("seen", [])[:res.get("seen", []).index(res["downs"][0])
                                    if res.get("downs") else None]
        if "reconnecting" in first:
            # Not a failure (the page recovered by itself, which is its job), but
            # the player stalled while the stream was fine: worth a look.
            print("NOTE: the video stalled during the first %d s: %s" % (PLAY_SECONDS, first))
        print("hls.js errors: %s" % res.get("hlsErrors"))
        print("viewer: states %s, player %s, lowLatencyMode %s, size %s, latency %s, "
              "errors %s" % (res.get("seen"), res.get("player"), res.get("lowLatencyMode"),
                             res.get("size"), res.get("latencyText"), res["errors"]))
        check(res["played"], "did not play %d s: %s" % (PLAY_SECONDS, json.dumps(res)[:3000]))
        check(res.get("player") == "hls.js" and res.get("lowLatencyMode") is True,
              "not hls.js in low-latency mode: %s %s" % (res.get("player"),
                                                         res.get("lowLatencyMode")))
        check(res.get("size") == "640x360", "video size %s" % res.get("size"))
        check(res.get("fatalWhilePlaying") == [], "fatal hls.js errors: %s" %
              res.get("fatalWhilePlaying"))
        check(res.get("latencyText") and res["latencyText"].endswith(" s"),
              "no latency shown: %s" % res.get("latencyText"))
        check(res.get("badge") == "Live", "badge says %s while playing" % res.get("badge"))
        check(res.get("poster") == "/live/web/thumb.jpg", "poster: %s" % res.get("poster"))
        downs = res.get("downs", [])
        check(downs[:1] and downs[0] in ("offline", "reconnecting"),
              "page did not notice the stream stopped: %s" % downs)
        check(downs[1:2] == ["reconnecting"],
              "page did not say reconnecting while the publisher stalled: %s" % downs)
        check(res["resumed"] == 2, "page did not resume by itself: %s" % json.dumps(res)[:3000])
        seen = res.get("seen", [])
        check(seen[-1:] == ["live"] and seen.count("live") >= 3, "states went %s" % seen)
        # Playing and restarting: no error at all. While the publisher stalls, a
        # blocking playlist reload (LL-HLS) may get its 503 after 3 target durations.
        stall_ok = re.compile(r"^\[2\] (HTTP 503 .*\.m3u8|console: Failed to load resource: "
                              r"the server responded with a status of 503)")
        bad = [e for e in res["errors"] if not stall_ok.search(e)]
        check(not bad, "errors in the page: %s" % bad)
        for name in ("front-empty-390x844.png", "front-390x844.png", "viewer-390x844.png",
                     "viewer-390x844-%s.png" % downs[0], "viewer-390x844-reconnecting.png"):
            path = os.path.join(art, name)
            check(os.path.getsize(path) > 10000, "screenshot %s missing or empty" % path)
            print("artifact:", path)
    except Failure:
        print("server log (tail):\n" + "\n".join(srv.logtext().splitlines()[-40:]))
        raise
    finally:
        stop(pub)
        srv.stop()


if __name__ == "__main__":
    run(main)
