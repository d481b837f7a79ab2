"""Publish webhooks against a small HTTP server in this test: on_publish allows
(2xx), denies (403), times out (fail closed) and is down (fail closed, or open
when configured); while one publish waits on a slow hook another stream keeps
advancing; on_live / on_end arrive once each, a failed notification is retried."""
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from onair_test import (Server, check, ffmpeg_publish, media_playlist_path, run, wait_for)


class Receiver:
    """Records every POST; on_publish answers by stream name."""

    def __init__(self):
        self.lock = threading.Lock()
        self.posts = []  # (path, body dict, answered status)
        self.release = threading.Event()
        recv = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(n) or b"{}")
                status = recv.answer(self.path, body, self.headers.get("Content-Type"))
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                except OSError:
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def answer(self, path, body, ctype):
        name = body.get("name", "")
        status = 200
        if ctype != "application/json":
            status = 415
        elif path == "/publish" and name.startswith("deny"):
            status = 403
        elif path == "/publish" and name.startswith("slow"):
            self.release.wait(20)  # past hooks.timeout
        elif path == "/live" and name == "show" and not self.seen("/live", "show"):
            status = 500  # the first on_live for show fails: it must be retried
        with self.lock:
            self.posts.append((path, body, status))
        return status

    def seen(self, path, name, status=None):
        with self.lock:
            return [b for p, b, s in self.posts
                    if p == path and b.get("name") == name and (status is None or s == status)]

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def close(self):
        self.release.set()
        self.httpd.shutdown()


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def refused(srv, name, url=None):
    pub = ffmpeg_publish(url or srv.rtmp_url(name), 4)
    _, err = pub.communicate(timeout=60)
    check(pub.returncode != 0, "publish of %s was not refused" % name)
    return err


def main(binary):
    rx = Receiver()
    srv = Server(binary, config={"hooks": {
        "on_publish": rx.url("/publish"), "on_live": rx.url("/live"), "on_end": rx.url("/end"),
        "timeout": 3}})
    try:
        # Allowed: the body carries name, key, query, app and the client address.
        pub = ffmpeg_publish(srv.rtmp_url("show?token=abc"), 4)
        wait_for(lambda: media_playlist_path(srv, "show"), 20, "show's playlist")
        _, err = pub.communicate(timeout=60)
        check(pub.returncode == 0, "allowed publish failed: %s" % err[-500:])
        body = rx.seen("/publish", "show")[0]
        check(body["event"] == "publish" and body["app"] == "live" and body["key"] == "show"
              and body["query"] == "token=abc" and body["addr"].startswith("127.0.0.1:"),
              "on_publish body: %r" % body)

        # Denied: refused with the onStatus error, nothing served.
        err = refused(srv, "denyme")
        check("Rejected" in err or "refused" in err, "ffmpeg not told why: %r" % err[-400:])
        check(srv.get("/live/denyme/index.m3u8")[0] == 404, "denyme stream is served")
        check("publish of denyme refused: the hook answered 403" in srv.logtext(),
              "denial not logged:\n" + srv.logtext()[-2000:])

        # Slow: while the hook hangs, another publisher keeps streaming; then a timeout refuses.
        steady = ffmpeg_publish(srv.rtmp_url("steady"), 20)
        path = wait_for(lambda: media_playlist_path(srv, "steady"), 20, "steady's playlist")
        slow = ffmpeg_publish(srv.rtmp_url("slowpoke"), 10)
        wait_for(lambda: "live/slowpoke waits" in srv.logtext(),
                 10, "the slow hook to be asked")
        before = srv.get(path)[2]
        wait_for(lambda: srv.get(path)[2] != before, 10,
                 "steady's playlist to advance while a hook is slow")
        _, err = slow.communicate(timeout=60)
        check(slow.returncode != 0, "publish went on although the hook timed out")
        check("publish of slowpoke refused: the hook failed: Timeout" in srv.logtext(),
              "timeout not logged:\n" + srv.logtext()[-2000:])
        rx.release.set()
        _, err = steady.communicate(timeout=60)
        check(steady.returncode == 0, "steady publisher failed: %s" % err[-500:])

        # on_live / on_end: once each per stream that went live; show's first on_live was retried.
        for name in ("show", "steady"):
            wait_for(lambda: rx.seen("/end", name, 200), 15, "on_end for %s" % name)
        time.sleep(2)
        for name in ("show", "steady"):
            check(len(rx.seen("/live", name, 200)) == 1, "on_live for %s not once" % name)
            check(len(rx.seen("/end", name, 200)) == 1, "on_end for %s not once" % name)
            check("key" not in rx.seen("/live", name, 200)[0], "on_live carries the key")
        check(len(rx.seen("/live", "show")) == 2, "failed on_live was not retried")
        for name in ("denyme", "slowpoke"):
            check(not rx.seen("/live", name) and not rx.seen("/end", name),
                  "refused stream %s was announced" % name)
    finally:
        srv.stop()

    # Down: fail closed by default, open when hooks.on_failure is allow.
    down = "http://127.0.0.1:%d/publish" % closed_port()
    srv = Server(binary, config={"hooks": {"on_publish": down}})
    try:
        refused(srv, "closed")
        check("publish of closed refused: the hook failed" in srv.logtext(),
              "unreachable hook not logged:\n" + srv.logtext()[-2000:])
    finally:
        srv.stop()
    srv = Server(binary, config={"hooks": {"on_publish": down, "on_failure": "allow"}})
    try:
        pub = ffmpeg_publish(srv.rtmp_url("open"), 3)
        wait_for(lambda: media_playlist_path(srv, "open"), 20, "open's playlist")
        _, err = pub.communicate(timeout=60)
        check(pub.returncode == 0, "fail-open publish failed: %s" % err[-500:])
    finally:
        srv.stop()
    rx.close()


if __name__ == "__main__":
    run(main)
