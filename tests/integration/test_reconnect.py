"""Reconnects viewers never notice.

- reconnect: publish, stop, publish again (another resolution) within the
  grace: the playlist never ends meanwhile, sequence numbers continue, exactly
  one EXT-X-DISCONTINUITY and a new EXT-X-MAP mark the join, hls.js in
  Chromium keeps playing through it without a reload, and after the grace the
  playlist ends and ffmpeg decodes both runs with no message;
- takeover: a second publisher of the same name while the first streams takes
  over at once; the first is disconnected; the newest segments are the new one's;
- half-open: a publisher stopped with SIGSTOP does not lock its name: a new
  publisher continues the playlist at once."""
import json
import os
import signal
import subprocess
import time

import hls_check
from onair_test import Server, check, ffmpeg_publish, run, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
GRACE = 6


def playlist(srv, name):
    status, _, body = srv.get("/live/%s/media.m3u8" % name)
    return hls_check.parse(body.decode()) if status == 200 else ({}, [])


def api_stream(srv, name):
    """The admin API's view of stream NAME."""
    status, _, body = srv.get("/api/v1/streams/" + name, port=srv.admin_port())
    check(status == 200, "API: %d %r" % (status, body[:200]))
    return json.loads(body)


def segments_with(srv, name, pred):
    _, segs = playlist(srv, name)
    return [s for s in segs if pred(s)]


def check_join(srv, name, tags, segs):
    """Sequence numbers continue, one discontinuity, one new map at it."""
    msns = [s["msn"] for s in segs]
    check(msns == list(range(msns[0], msns[0] + len(msns))), "%s: MSNs %s" % (name, msns))
    discs = [s for s in segs if s["discontinuity"]]
    check(len(discs) == 1, "%s: %d discontinuities" % (name, len(discs)))
    maps = []
    for s in segs:
        if not maps or maps[-1] != s["map"]:
            maps.append(s["map"])
    check(len(maps) == 2, "%s: init segments %s" % (name, maps))
    j = segs.index(discs[0])
    check(j > 0 and segs[j]["map"] == maps[1] and segs[j - 1]["map"] == maps[0],
          "%s: the new init segment does not start at the discontinuity" % name)
    check(len(set(s["uri"] for s in segs)) == len(segs), "%s: a segment URI repeats" % name)
    return j


def in_grace(srv, last_msn):
    """Right after the second run: still live, continued at the next MSN."""
    tags, segs = playlist(srv, "rec")
    check("#EXT-X-ENDLIST" not in tags, "live/rec ended before the grace passed")
    j = check_join(srv, "rec", tags, segs)
    check(segs[j]["msn"] == last_msn + 1, "the second run starts at %d, not %d" %
          (segs[j]["msn"], last_msn + 1))
    print("reconnect: playlist around the join:")
    text = srv.get("/live/rec/media.m3u8")[2].decode()
    lines = text.splitlines()
    k = lines.index("#EXT-X-DISCONTINUITY")
    for l in lines[:9] + ["..."] + lines[max(9, k - 7):k + 10]:
        if not l.startswith("#EXT-X-PART:"):
            print("    " + l)
    check(hls_check.resolution(srv, "rec", segs[0]) == "640x360", "first run resolution")
    check(hls_check.resolution(srv, "rec", segs[-1]) == "320x240", "second run resolution")


def reconnect(srv):
    pub = ffmpeg_publish(srv.rtmp_url("rec"), 8, size="640x360", gop=30)
    wait_for(lambda: playlist(srv, "rec")[1], 15, "live/rec first segment")
    watch = subprocess.Popen(["node", os.path.join(HERE, "browser_watch.js"),
                              srv.url("/live/rec/"), "30"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    try:
        check(pub.wait(timeout=30) == 0, "first publisher failed: %s" % pub.stderr.read())
        t_stop = time.time()
        time.sleep(1.5)
        tags, segs = playlist(srv, "rec")
        check(segs and "#EXT-X-ENDLIST" not in tags, "live/rec ended during the grace")
        last_msn = segs[-1]["msn"]
        first = api_stream(srv, "rec")
        check(first["live"] and not first["publishing"],
              "API during the grace: live %s, publishing %s" % (first["live"],
                                                               first["publishing"]))
        pub = ffmpeg_publish(srv.rtmp_url("rec"), 12, size="320x240", gop=30)
        wait_for(lambda: api_stream(srv, "rec")["publishing"], 15, "API: publishing again")
        check(pub.wait(timeout=40) == 0, "second publisher failed: %s" % pub.stderr.read())
        second = api_stream(srv, "rec")
        print("API: during the grace live=%s publishing=%s segments=%d; after the second run "
              "segments=%d media_sequence=%d publishes=%d, live_since %s -> %s" % (
                  first["live"], first["publishing"], first["segments"], second["segments"],
                  second["media_sequence"], second["publishes"], first["live_since"],
                  second["live_since"]))
        check(second["live_since"] == first["live_since"],
              "API: live_since changed at the reconnect")
        check(second["segments"] > first["segments"] and second["media_sequence"] > last_msn,
              "API: the segment counters did not continue across the reconnect")
        in_grace(srv, last_msn)
        out, err = watch.communicate(timeout=60)
    finally:
        if watch.poll() is None:
            watch.kill()
            watch.wait()
    res = json.loads([l for l in out.splitlines() if l.startswith("{")][-1])
    at_stop = max([s[1] for s in res["samples"] if s[0] <= t_stop] or [0])
    final = max(s[1] for s in res["samples"])
    sizes = sorted(set(s[2] for s in res["samples"] if s[1] > 0))
    print("browser: currentTime %.2f when the first publisher stopped, %.2f at the end; "
          "sizes %s; page loads %d; errors %s" % (at_stop, final, sizes, res["loads"],
                                                  res["errors"]))
    check(res["hlsjs"], "hls.js not running in the page")
    check(not res["errors"], "errors in the page: %s" % res["errors"])
    check(res["loads"] == 1, "the page was reloaded")
    check(final - at_stop >= 6, "playback did not continue across the reconnect (%.2f -> %.2f)"
          % (at_stop, final))
    check("320x240" in sizes, "the browser never showed the second publisher's video")

    # After the grace: ended, and both runs decode.
    wait_for(lambda: "#EXT-X-ENDLIST" in playlist(srv, "rec")[0], GRACE + 10,
             "live/rec to end after the grace")
    tags, segs = playlist(srv, "rec")
    check(not api_stream(srv, "rec")["live"], "API: still live after the grace")
    j = check_join(srv, "rec", tags, segs)
    err = hls_check.ffmpeg_reads(srv, "rec")
    check(err == "", "ffmpeg -v error on the reconnected playlist:\n" + err[-2000:])
    log = srv.logtext()
    check("publisher back after" in log and "no publisher for %d s: the stream ends" % GRACE
          in log, "reconnect/grace lines missing from the log")
    print("reconnect: %d segments, join at %d, ffmpeg -v error: no output" %
          (len(segs), segs[j]["msn"]))


def takeover(srv):
    a = ffmpeg_publish(srv.rtmp_url("tk"), 40, size="640x360", gop=30)
    b = None
    try:
        wait_for(lambda: len(playlist(srv, "tk")[1]) >= 2, 15, "live/tk segments")
        b = ffmpeg_publish(srv.rtmp_url("tk"), 10, size="320x240", gop=30)
        try:
            a.wait(timeout=15)
        except subprocess.TimeoutExpired:
            check(False, "the first publisher was not disconnected by the takeover")
        check(a.returncode != 0, "the first publisher ended cleanly?")
        wait_for(lambda: segments_with(srv, "tk", lambda s: s["discontinuity"]), 15,
                 "the new publisher's first segment")
        wait_for(lambda: len(segments_with(srv, "tk", lambda s: s["map"] == playlist(
            srv, "tk")[1][-1]["map"])) >= 2, 15, "two segments of the new publisher")
        tags, segs = playlist(srv, "tk")
        check_join(srv, "tk", tags, segs)
        check(hls_check.resolution(srv, "tk", segs[-1]) == "320x240",
              "newest segment is not the new publisher's")
        check(hls_check.resolution(srv, "tk", segs[0]) == "640x360", "oldest segment")
        check("a newer publisher took this stream over; closing" in srv.logtext(),
              "takeover not logged")
        print("takeover: first publisher disconnected (exit %d), newest segment 320x240" %
              a.returncode)
    finally:
        for p in (a, b):
            if p and p.poll() is None:
                p.kill()
                p.wait()


def half_open(srv):
    a = ffmpeg_publish(srv.rtmp_url("ho"), 60, size="640x360", gop=30)
    b = None
    try:
        wait_for(lambda: len(playlist(srv, "ho")[1]) >= 2, 15, "live/ho segments")
        os.kill(a.pid, signal.SIGSTOP)
        last = playlist(srv, "ho")[1][-1]["msn"]
        b = ffmpeg_publish(srv.rtmp_url("ho"), 10, size="320x240", gop=30)
        segs = wait_for(lambda: segments_with(srv, "ho", lambda s: s["discontinuity"]), 15,
                        "the new publisher's first segment after SIGSTOP")
        check(segs[0]["msn"] <= last + 2, "the playlist did not continue (%d after %d)" %
              (segs[0]["msn"], last))
        check(hls_check.resolution(srv, "ho", segs[0]) == "320x240",
              "the new publisher's segment has the wrong resolution")
        print("half-open: new publisher continued at segment %d (stopped one at %d)" %
              (segs[0]["msn"], last))
        os.kill(a.pid, signal.SIGCONT)
        try:
            a.wait(timeout=15)
        except subprocess.TimeoutExpired:
            check(False, "the stopped publisher was not disconnected once it sent again")
        check(b.wait(timeout=30) == 0, "the new publisher failed: %s" % b.stderr.read())
    finally:
        for p in (a, b):
            if p and p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                p.kill()
                p.wait()


def main(binary):
    srv = Server(binary, {"hls": {"segment_seconds": 1, "window_segments": 40,
                                  "reconnect_grace_seconds": GRACE}})
    try:
        reconnect(srv)
        takeover(srv)
        half_open(srv)
        check(srv.alive(), "server died")
    finally:
        srv.stop()


if __name__ == "__main__":
    run(main)
