"""The front page (/) and the public listing of live streams (/streams.json),
over plain HTTP: the listing follows publishers as they start and stop, says
only what a viewer may know, and the front page carries this server's RTMP
address (HTML-escaped) for the publishing help."""
import datetime
import json
import time

from onair_test import Server, check, ffmpeg_publish, free_port, run, wait_for

ALLOWED_KEYS = {"name", "url", "playlist", "live_since", "codecs", "width", "height", "thumbnail"}


def listing(srv):
    status, hdrs, body = srv.get("/streams.json")
    check(status == 200, "/streams.json: %d" % status)
    check(hdrs.get("content-type") == "application/json", "type %s" % hdrs.get("content-type"))
    check(hdrs.get("cache-control") == "no-cache", "cache-control %s" % hdrs.get("cache-control"))
    check(body.endswith(b"\n"), "no final newline")
    return json.loads(body)


def names(srv):
    return [s["name"] for s in listing(srv)["streams"]]


def parse_iso(text):
    check(text.endswith("Z"), "not UTC: %s" % text)
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def check_front_page(srv, app_html):
    status, hdrs, body = srv.get("/")
    check(status == 200, "/: %d" % status)
    check(hdrs.get("content-type") == "text/html; charset=utf-8", "type %s" % hdrs)
    check(hdrs.get("cache-control") == "no-cache", "cache-control %s" % hdrs)
    text = body.decode()
    check("{{" not in text, "unfilled placeholder in the front page")
    server = ':%d/%s</code>' % (srv.rtmp_port, app_html)
    check(server in text, "publishing help lacks %r" % server)
    check("/streams.json" in text, "front page does not poll /streams.json")
    status, hdrs, body = srv.get("/", method="HEAD")
    check(status == 200 and body == b"", "HEAD /: %d, %d bytes" % (status, len(body)))


def main(binary):
    # The front page shows the configured RTMP port (port 0 would show as 0).
    # An application name that needs escaping: the page must not break or inject.
    srv = Server(binary, {"rtmp": {"app": "tv<b>&x", "listen": "127.0.0.1:%d" % free_port()}})
    try:
        check_front_page(srv, "tv&lt;b&gt;&amp;x")
    finally:
        srv.stop()

    srv = Server(binary, {"rtmp": {"listen": "127.0.0.1:%d" % free_port()},
                          "hls": {"segment_seconds": 1, "window_segments": 4}})
    pubs = []
    try:
        check_front_page(srv, "live")
        j = listing(srv)
        check(j["streams"] == [], "streams before any publisher: %s" % j)
        now = parse_iso(j["now"])
        check(abs(now - time.time()) < 60, "server 'now' is off: %s" % j["now"])
        status, hdrs, _ = srv.get("/streams.json", method="HEAD")
        check(status == 200, "HEAD /streams.json: %d" % status)
        status, _, _ = srv.get("/streams.json", method="POST")
        check(status == 405, "POST /streams.json: %d" % status)
        status, hdrs, _ = srv.get("/streams.json", headers={"Origin": "http://example.test"})
        check(hdrs.get("access-control-allow-origin") == "*", "no CORS header: %s" % hdrs)

        app = srv.rtmp_url("x").rsplit("/", 1)[0]
        started = time.time()
        pubs.append(ffmpeg_publish(app + "/zeta", 60, size="320x180", gop=30,
                                   extra=["-preset", "ultrafast", "-tune", "zerolatency"]))
        pubs.append(ffmpeg_publish(app + "/alpha", 60, video=False))
        wait_for(lambda: names(srv) == ["alpha", "zeta"], 20, "both streams listed, by name")
        by_name = {s["name"]: s for s in listing(srv)["streams"]}

        z = by_name["zeta"]
        check(set(z) <= ALLOWED_KEYS, "unexpected keys in the listing: %s" % sorted(z))
        check(z["url"] == "/live/zeta/" and z["playlist"] == "/live/zeta/index.m3u8", str(z))
        check((z.get("width"), z.get("height")) == (320, 180), "size %s" % z)
        check(z["codecs"].startswith("avc1.") and z["codecs"].endswith(",mp4a.40.2"), str(z))
        since = parse_iso(z["live_since"])
        check(started - 5 <= since <= time.time() + 5, "live_since %s" % z["live_since"])
        status, _, body = srv.get(z["playlist"])
        check(status == 200 and body.startswith(b"#EXTM3U"), "listed playlist: %d" % status)
        status, _, body = srv.get(z["url"])
        check(status == 200 and b"<video" in body, "listed page: %d" % status)

        a = by_name["alpha"]
        check(set(a) <= ALLOWED_KEYS, "unexpected keys in the listing: %s" % sorted(a))
        check("width" not in a and "height" not in a, "audio-only stream has a size: %s" % a)
        check(a["codecs"] == "mp4a.40.2", "audio-only codecs %s" % a["codecs"])
        print("listing:", json.dumps(listing(srv)))

        # A publisher that stops leaves the listing at once, while its ended
        # playlist stays readable for players that are finishing it.
        pubs[0].kill()
        pubs[0].wait()
        wait_for(lambda: names(srv) == ["alpha"], 20, "zeta to leave the listing")
        status, _, body = srv.get("/live/zeta/media.m3u8")
        check(status == 200 and b"#EXT-X-ENDLIST" in body, "ended playlist: %d" % status)

        # Republishing the name lists it again, with a new live_since.
        pubs[0] = ffmpeg_publish(app + "/zeta", 60, size="320x180", gop=30)
        wait_for(lambda: "zeta" in names(srv), 20, "zeta listed again")
        again = {s["name"]: s for s in listing(srv)["streams"]}["zeta"]
        check(parse_iso(again["live_since"]) > since, "live_since did not move: %s" % again)
    finally:
        for p in pubs:
            p.kill()
            p.wait()
        srv.stop()


if __name__ == "__main__":
    run(main)
