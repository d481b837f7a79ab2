"""Live reload (SIGHUP and `onair --reload`) with publishers on air:
- adding a stream: its key publishes at once, the running publisher keeps
  streaming with no media-sequence gap and no discontinuity;
- a broken file: every error logged, the old config stays;
- moving http.listen (and changing CORS) through `onair --reload`: the new
  port serves, the old one is closed, RTMP is untouched;
- changing one stream's key: that publisher (only) is disconnected, the new
  key works."""
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time

from onair_test import (free_port, Failure, Server, check, ffmpeg_publish, media_playlist_path,
                        parse_media_playlist, run, wait_for)

K1, K2, K2B = "key-one-4Fh8", "key-two-8Kd3", "key-two-new-2Lq9"
PID_FILE = os.path.join(tempfile.mkdtemp(prefix="onair-pid-"), "onair.pid")


def write_config(srv, streams, http_listen="127.0.0.1:0", cors="*", extra=""):
    text = ('publish: keys\n'
            'streams:\n%s'
            'rtmp:\n  listen: "127.0.0.1:0"\n'
            'http:\n  listen: "%s"\n  cors_origin: "%s"\n'
            'hls:\n  segment_seconds: 1\n  window_segments: 8\n'
            'process:\n  pid_file: "%s"\n%s') % (
                "".join('  - name: %s\n    key: "%s"\n' % s for s in streams), http_listen,
                cors, PID_FILE, extra)
    with open(srv.config_path, "w") as f:
        f.write(text)


class Watcher(threading.Thread):
    """Polls a stream's media playlist and records every (msn, uri) it lists."""

    def __init__(self, srv, name):
        super().__init__(daemon=True)
        self.srv, self.name = srv, name
        self.seen, self.discontinuity, self.stop = {}, False, False
        self.path = None

    def run(self):
        while not self.stop:
            try:
                if not self.path:
                    self.path = media_playlist_path(self.srv, self.name)
                status, _, body = self.srv.get(self.path) if self.path else (0, 0, b"")
                if status == 200:
                    text = body.decode()
                    tags, segs, _ = parse_media_playlist(text)
                    first = int(tags.get("#EXT-X-MEDIA-SEQUENCE", "0"))
                    self.discontinuity |= "#EXT-X-DISCONTINUITY" in text
                    for i, (_, uri) in enumerate(segs):
                        prev = self.seen.setdefault(first + i, uri)
                        if prev != uri:
                            self.discontinuity = True  # one msn, two segments
                    if "#EXT-X-ENDLIST" in text:
                        return
            except OSError:
                pass  # the HTTP port moves during the test: the new one is picked up
            time.sleep(0.25)


def wait_log(srv, text, timeout=15):
    return wait_for(lambda: text in srv.logtext(), timeout, repr(text))


def main(binary):
    srv = Server(binary, {"process": {"pid_file": PID_FILE}}, extra_yaml="publish: keys\nstreams:\n  - name: one\n    key: \"%s\"\n" % K1)
    try:
        pub1 = ffmpeg_publish(srv.rtmp_url(K1), 24, size="320x240")
        wait_for(lambda: media_playlist_path(srv, "one"), 15, "stream one")
        watch = Watcher(srv, "one")
        watch.start()
        time.sleep(1.5)

        # 1. Add a stream with SIGHUP: its key works at once.
        write_config(srv, [("one", K1), ("two", K2)])
        srv.proc.send_signal(signal.SIGHUP)
        wait_log(srv, "SIGHUP: stream two added (key ")
        wait_for(lambda: re.search(r"SIGHUP: \d+ changes? applied", srv.logtext()), 15,
                 "the reload to apply")
        pub2 = ffmpeg_publish(srv.rtmp_url(K2), 30, size="320x240")
        wait_for(lambda: media_playlist_path(srv, "two"), 15, "stream two after the reload")

        # 2. A broken file: every error logged with its position, nothing changes.
        good = open(srv.config_path).read()
        with open(srv.config_path, "w") as f:
            f.write(good.replace("window_segments: 8", "window_segments: 800")
                        .replace("cors_origin:", "cors_orign:"))
        srv.proc.send_signal(signal.SIGHUP)
        wait_log(srv, "SIGHUP: 2 errors in %s; keeping the running configuration" % srv.config_path)
        log = srv.logtext()
        check(re.search(re.escape(srv.config_path) + r":\d+:\d+: hls.window_segments: must be", log)
              and re.search(re.escape(srv.config_path) +
                            r":\d+:\d+: unknown key 'http.cors_orign' \(did you mean", log),
              "the broken file's errors are not logged with positions:\n" + log[-3000:])
        check(srv.alive() and srv.get("/healthz")[0] == 200, "server down after a broken reload")

        # 3. Move http.listen and change CORS with `onair --reload` (validates, then SIGHUP).
        old_port, new_port = srv.http_port, free_port()
        write_config(srv, [("one", K1), ("two", K2)], http_listen="127.0.0.1:%d" % new_port,
                     cors="https://example.org")
        r = subprocess.run([binary, "--reload", "--config", srv.config_path],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 0 and "asked to reload" in r.stdout,
              "onair --reload failed: %s %s" % (r.stdout, r.stderr))
        wait_log(srv, "SIGHUP: http.listen 127.0.0.1:0 -> 127.0.0.1:%d" % new_port)
        srv.http_port = new_port
        wait_for(lambda: srv.get("/healthz")[0] == 200, 10, "the new HTTP port")
        status, hdrs, _ = srv.get("/healthz")
        check(hdrs.get("access-control-allow-origin") == "https://example.org",
              "CORS not applied at once: %s" % hdrs)

        def old_closed():
            try:
                socket.create_connection(("127.0.0.1", old_port), timeout=2).close()
                return False
            except OSError:
                return True
        wait_for(old_closed, 10, "the old HTTP port to close")
        # A broken file through --reload: refused before any signal.
        with open(srv.config_path, "a") as f:
            f.write("bogus: 1\n")
        r = subprocess.run([binary, "--reload", "--config", srv.config_path],
                           capture_output=True, text=True, timeout=20)
        check(r.returncode == 1 and "unknown section 'bogus'" in r.stderr,
              "--reload with a broken file: %s %s" % (r.returncode, r.stderr))

        # 4. Change stream two's key: its publisher, and only it, is disconnected.
        write_config(srv, [("one", K1), ("two", K2B)], http_listen="127.0.0.1:%d" % new_port,
                     cors="https://example.org")
        srv.proc.send_signal(signal.SIGHUP)
        wait_log(srv, "disconnecting: the key of stream two changed")
        try:
            pub2.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            raise Failure("the publisher of stream two was not disconnected")
        check(pub1.poll() is None, "stream one's publisher was disturbed by the key change")
        pub3 = ffmpeg_publish(srv.rtmp_url(K2B), 4, size="320x240")
        _, err = pub3.communicate(timeout=40)
        check(pub3.returncode == 0, "the new key does not publish: %s" % err[-400:])

        # Stream one went on through all of it: one publish, contiguous, no discontinuity.
        _, err = pub1.communicate(timeout=60)
        check(pub1.returncode == 0, "stream one's publisher failed: %s" % err[-400:])
        watch.join(timeout=20)
        watch.stop = True
        msns = sorted(watch.seen)
        print("stream one: media sequence %d..%d seen across 4 reloads" % (msns[0], msns[-1]))
        check(len(msns) >= 15 and msns == list(range(msns[0], msns[-1] + 1)),
              "media sequence gap in stream one: %s" % msns)
        check(not watch.discontinuity, "discontinuity in stream one")
        check(srv.logtext().count("live/one: publishing") == 1, "stream one was republished")
        for secret in (K1, K2, K2B):
            check(secret not in srv.logtext(), "a key in the log")
    finally:
        srv.stop()
    check(not os.path.exists(PID_FILE), "the pid file outlived the server")


if __name__ == "__main__":
    run(main)
