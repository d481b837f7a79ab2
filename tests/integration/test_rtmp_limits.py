"""RTMP limits: a connection that does not publish within rtmp.setup_timeout is
closed; a publisher that keeps sending bytes but no audio or video is dropped
after rtmp.idle_timeout; partial 8 MiB messages on 20 connections stay within
rtmp.max_buffer_bytes / rtmp.max_total_buffer_bytes (peak RSS under the cap);
1,100 idle connections that reconnect whenever closed cannot lock out a real
publisher (ffmpeg publishes and its playlist appears)."""
import os
import resource
import selectors
import socket
import struct
import tempfile
import threading
import time

from onair_test import (Server, check, ffmpeg_publish_file, make_flv, media_playlist_path, run,
                        wait_for)
from test_badinput import chunk, connect_sock, publish_sock, recv_until, wait_closed

MiB = 1 << 20


def proc_kib(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def asan_build():
    return bool(os.environ.get("ASAN_OPTIONS"))


def timeouts(binary):
    srv = Server(binary, {"rtmp": {"setup_timeout": 1, "idle_timeout": 2}})
    try:
        s = connect_sock(srv)
        s.sendall(b"\x03" + bytes(100))  # a handshake that never completes
        _, took = wait_closed(s, timeout=10)
        check(took < 5, "setup timeout: closed after %.1f s" % took)

        s = publish_sock(srv, "quiet")
        recv_until(s, b"NetStream.Publish.Start")
        # Bytes but no media: Set Buffer Length user control messages every 0.3 s.
        t0 = time.monotonic()
        s.settimeout(0.3)
        closed = False
        while time.monotonic() - t0 < 10 and not closed:
            try:
                s.sendall(chunk(2, 4, 0, struct.pack(">HII", 3, 1, 100)))
                closed = s.recv(65536) == b""
            except socket.timeout:
                pass
            except OSError:
                closed = True
        took = time.monotonic() - t0
        s.close()
        check(closed and took < 6, "silent publisher: closed=%s after %.1f s" % (closed, took))
        log = srv.logtext()
        check("not publishing after 1 s" in log, "no setup timeout line:\n" + log[-3000:])
        check("no audio or video for 2 s" in log, "no idle publisher line:\n" + log[-3000:])
    finally:
        srv.stop()


def partial_message(csid, length=8 * MiB, size=65536):
    """A LENGTH-byte video message on CSID in SIZE chunks, all but the last chunk."""
    return chunk(csid, 9, 1, bytes(length), size=size)[:-(size + 1)]


def partial_messages(binary):
    cap = 64 * MiB
    if asan_build():  # freed memory must not linger in ASan's quarantine
        os.environ["ASAN_OPTIONS"] += ":quarantine_size_mb=1"
    srv = Server(binary, {"rtmp": {"max_total_buffer_bytes": cap}})
    try:
        base = proc_kib(srv.proc.pid, "VmRSS")
        msgs = [partial_message(csid) for csid in (4, 5, 6, 7)]
        set_chunk = chunk(2, 1, 0, struct.pack(">I", 65536))
        closed = []

        def one(i):
            s = publish_sock(srv, "partial%d" % i)
            try:
                recv_until(s, b"NetStream.Publish.Start")
                s.sendall(set_chunk)
                for m in msgs:
                    s.sendall(m)
                wait_closed(s, timeout=20)
                closed.append(i)
            except OSError:
                closed.append(i)

        one(100)  # alone: stopped by rtmp.max_buffer_bytes (16 MiB < the total cap)
        check("partial messages exceed max_buffer_bytes" in srv.logtext(),
              "per-connection cap not logged")
        closed.clear()
        threads = [threading.Thread(target=one, args=(i,)) for i in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(40)
        peak = proc_kib(srv.proc.pid, "VmHWM")
        grew = (peak - base) * 1024
        print("partial messages: RSS %d KiB at start, peak %d KiB (+%.0f MiB), cap %d MiB"
              % (base, peak, grew / MiB, cap // MiB))
        check(len(closed) == 20, "only %d of 20 connections were closed" % len(closed))
        slack = 48 * MiB if not asan_build() else 160 * MiB
        check(grew < cap + slack, "RSS grew by %.0f MiB with a %d MiB cap" % (grew / MiB, cap // MiB))
        log = srv.logtext()
        check("rtmp.max_total_buffer_bytes" in log, "total cap not logged")
        check(srv.get("/healthz")[0] == 200, "server not answering")
    finally:
        srv.stop()


class Flood:
    """N idle TCP connections to PORT; each one the server closes reconnects after DELAY s."""

    def __init__(self, port, n, delay):
        self.port, self.n, self.delay = port, n, delay
        self.connects = self.closed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def open_one(self, sel):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", self.port))
        sel.register(s, selectors.EVENT_READ)
        self.connects += 1

    def run(self):
        sel = selectors.DefaultSelector()
        due = []
        for _ in range(self.n):
            self.open_one(sel)
        while not self.stop.is_set():
            for key, _ in sel.select(timeout=0.05):
                s = key.fileobj
                try:
                    d = s.recv(4096)
                except OSError:
                    d = b""
                if not d:
                    sel.unregister(s)
                    s.close()
                    self.closed += 1
                    due.append(time.monotonic() + self.delay)
            now = time.monotonic()
            while due and due[0] <= now:
                due.pop(0)
                self.open_one(sel)
        for key in list(sel.get_map().values()):
            key.fileobj.close()
        sel.close()


def flood_and_publish(binary):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 1100 if hard >= 1300 else hard - 200
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    d = tempfile.mkdtemp(prefix="onair-flood-")
    flv = os.path.join(d, "a.flv")
    make_flv(flv, 6, size="160x90")
    srv = Server(binary)
    flood = None
    try:
        flood = Flood(srv.rtmp_port, n, 0.5)
        wait_for(lambda: flood.closed >= n // 2, 30, "the flood to fill the budget")
        pub = ffmpeg_publish_file(flv, srv.rtmp_url("real"))
        path = wait_for(lambda: media_playlist_path(srv, "real"), 20, "the publisher's playlist")
        _, err = pub.communicate(timeout=60)
        print("flood: %d connections, %d connects, %d closed by the server; playlist %s"
              % (n, flood.connects, flood.closed, path))
        check(pub.returncode == 0, "ffmpeg failed under the flood: %s" % err)
        check(flood.closed > n, "the flood was not churned (%d closed)" % flood.closed)
        flood.stop.set()
        flood.thread.join(10)
        flood = None
        log = wait_for(lambda: "similar lines suppressed" in srv.logtext() and srv.logtext(), 15,
                       "a rate-limited summary line")
        check("closed to make room" in log, "no eviction logged")
        lines = log.count("\n")
        print("server log: %d lines for the whole flood" % lines)
        check(lines < 2000, "the flood was logged %d lines" % lines)
    finally:
        if flood:
            flood.stop.set()
            flood.thread.join(10)
        srv.stop()


def main(binary):
    timeouts(binary)
    partial_messages(binary)
    flood_and_publish(binary)


if __name__ == "__main__":
    run(main)
