"""HTTP limits: 200 partial requests closed by their clients leave no socket in
CLOSE-WAIT after 2 s and /healthz answers; 1,000 query arguments get a 414 and
30 KB of headers a 431 at once; a client that drips its request head is closed
after http.request_timeout; http.max_connections_per_ip refuses the extra
connections of one address while others are served."""
import socket
import subprocess
import time

from onair_test import Server, check, run, wait_for


def close_wait(port):
    out = subprocess.run(["ss", "-tanH", "state", "close-wait", "sport", "= :%d" % port],
                         capture_output=True, text=True, check=True).stdout
    return len([l for l in out.splitlines() if l.strip()])


def raw(port, data, timeout=5):
    """Sends DATA on a new connection; returns the first line of the answer (b"" if closed)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(data)
        buf = b""
        while b"\r\n" not in buf:
            d = s.recv(4096)
            if not d:
                break
            buf += d
        return buf.split(b"\r\n")[0]
    finally:
        s.close()


def main(binary):
    srv = Server(binary, {"http": {"request_timeout": 2, "max_connections_per_ip": 50}})
    try:
        port = srv.http_port
        # Half-closed partial requests: data and FIN arrive together.
        for _ in range(4):  # 4 x 50 (the per-address limit)
            for _ in range(50):
                s = socket.create_connection(("127.0.0.1", port))
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Part")
                s.close()
            time.sleep(0.3)
        time.sleep(2)
        n = close_wait(port)
        check(n == 0, "%d sockets in CLOSE-WAIT 2 s after 200 half-closed requests" % n)
        check(srv.get("/healthz")[0] == 200, "/healthz after the half-closed requests")

        # Oversized requests: answered at once.
        q = "&".join("a%d=%d" % (i, i) for i in range(1000))
        t0 = time.monotonic()
        line = raw(port, ("GET /healthz?%s HTTP/1.1\r\nHost: x\r\n\r\n" % q).encode())
        check(line.startswith(b"HTTP/1.1 414"), "1,000 query arguments: %r" % line)
        hdrs = "".join("X-H%d: %s\r\n" % (i, "v" * 90) for i in range(300))  # ~30 KB
        line = raw(port, ("GET /healthz HTTP/1.1\r\nHost: x\r\n%s\r\n" % hdrs).encode())
        check(line.startswith(b"HTTP/1.1 431"), "30 KB of headers: %r" % line)
        check(time.monotonic() - t0 < 3, "oversized requests were not answered at once")
        # A CORS preflight asking for 20 KB of request headers: answered, without echoing them.
        acrh = ",".join("x-h%d" % i for i in range(3000))[:20000]
        status, h, _ = srv.get("/live/x/media.m3u8", method="OPTIONS",
                               headers={"Origin": "http://a.example",
                                        "Access-Control-Request-Method": "GET",
                                        "Access-Control-Request-Headers": acrh})
        check(status == 204 and "access-control-allow-headers" not in h,
              "large preflight: %d %r" % (status, h))
        # A real player's request still works.
        status, _, _ = srv.get("/healthz?_HLS_msn=5&_HLS_part=1&_HLS_skip=YES",
                               headers={"User-Agent": "x" * 2000, "Cookie": "c=" + "y" * 3000})
        check(status == 200, "an ordinary request with query and large headers: %d" % status)

        # A request head dripped one byte a second: closed after request_timeout (2 s).
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        t0, closed = time.monotonic(), False
        s.settimeout(1)
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: abcdefghijklmnop":
            try:
                s.sendall(bytes([b]))
                if s.recv(100) == b"":
                    closed = True
                    break
            except socket.timeout:
                continue
            except OSError:
                closed = True
                break
        took = time.monotonic() - t0
        s.close()
        check(closed and took < 6, "dripped head: closed=%s after %.1f s" % (closed, took))
        wait_for(lambda: "http.request_timeout" in srv.logtext(), 5, "the request timeout line")

        # Per-address limit: 60 idle connections from 127.0.0.1, 50 allowed.
        held = [socket.create_connection(("127.0.0.1", port)) for _ in range(60)]
        time.sleep(0.5)
        refused = 0
        for h in held:
            h.settimeout(0.5)
            try:
                if h.recv(1) == b"":
                    refused += 1
            except socket.timeout:
                pass
            except OSError:
                refused += 1
        for h in held:
            h.close()
        check(refused >= 10, "only %d of 60 connections from one address refused (limit 50)"
              % refused)
        time.sleep(0.5)
        check(srv.get("/healthz")[0] == 200, "/healthz after the per-address test")
    finally:
        srv.stop()


if __name__ == "__main__":
    run(main)
