"""HTTPS for viewers: certificates made here with the openssl CLI (a CA and a
leaf for 127.0.0.1); the player page, playlists and segments over https with
HSTS, ffmpeg decodes the HLS over https trusting the CA, openssl s_client gets
TLS 1.2 and 1.3 but not 1.1, and plain HTTP on the TLS port gets no page."""
import http.client
import json
import os
import re
import socket
import ssl
import subprocess
import time

from onair_test import Server, check, ffmpeg_publish, make_certs, run, s_client, wait_for


def get(port, ca, path):
    ctx = ssl.create_default_context(cafile=ca)
    conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=10, context=ctx)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def raw(port, request):
    """Sends REQUEST (bytes) on a new plain connection; returns (status, headers, body)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.sendall(request)
    data = b""
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    hdr = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    return int(lines[0].split()[1]), hdr, body


def redirects(srv, https_port):
    """http.redirect_listen: 301/308 to the same path and query on HTTPS, 400 without Host."""
    m = re.search(r"redirecting plain HTTP on \S+ \(port (\d+)\) to HTTPS \(port (\d+)\)",
                  srv.logtext())
    check(m and int(m.group(2)) == https_port, "no redirect line:\n" + srv.logtext())
    rport = int(m.group(1))
    path = "/live/tls/index.m3u8?exp=1767225600&sig=00ff"
    cases = [
        (b"GET %s HTTP/1.1\r\nHost: example.org:80\r\nConnection: close\r\n\r\n" % path.encode(),
         301, "https://example.org:%d%s" % (https_port, path)),
        (b"HEAD / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nConnection: close\r\n\r\n" % rport,
         301, "https://127.0.0.1:%d/" % https_port),
        (b"POST /api?x=1 HTTP/1.1\r\nHost: [::1]:8080\r\nContent-Length: 3\r\n"
         b"Connection: close\r\n\r\nabc", 308, "https://[::1]:%d/api?x=1" % https_port),
        (b"GET /x HTTP/1.0\r\n\r\n", 400, None),
        (b"GET /x HTTP/1.1\r\nHost: evil.org/\r\nConnection: close\r\n\r\n", 400, None),
    ]
    for req, status, location in cases:
        got, hdr, _ = raw(rport, req)
        check(got == status and hdr.get("location") == location,
              "redirect %r: %d %r" % (req[:60], got, hdr.get("location")))
    # A client that follows it ends on the HTTPS page.
    r = subprocess.run(["curl", "-sS", "-L", "--cacert", ca_path[0], "-o", "/dev/null", "-w",
                        "%{http_code} %{url_effective}",
                        "http://127.0.0.1:%d/live/tls/" % rport],
                       capture_output=True, text=True, timeout=30)
    check(r.stdout == "200 https://127.0.0.1:%d/live/tls/" % https_port,
          "curl -L: %r %r" % (r.stdout, r.stderr))


ca_path = []


def main(binary):
    import tempfile
    d = tempfile.mkdtemp(prefix="onair-tls-")
    ca, crt, key = make_certs(d)
    ca_path.append(ca)
    srv = Server(binary, config={"http": {"tls_cert": crt, "tls_key": key, "request_timeout": 2,
                                          "redirect_listen": "127.0.0.1:0"}})
    pub = None
    try:
        port = srv.http_port
        check("HTTPS, TLS 1.2+" in srv.logtext(), "HTTPS not logged:\n" + srv.logtext())
        pub = ffmpeg_publish(srv.rtmp_url("tls"), 90)
        status, hdr, page = get(port, ca, "/live/tls/")
        check(status == 200 and b"index.m3u8" in page, "player page over https: %d" % status)
        check(hdr.get("strict-transport-security") == "max-age=31536000", "no HSTS: %r" % hdr)
        check(b"http://" not in page.replace(b"http://www.w3.org", b""),
              "the page loads something over plain http")
        wait_for(lambda: get(port, ca, "/live/tls/media.m3u8")[0] == 200 and
                 b"seg-" in get(port, ca, "/live/tls/media.m3u8")[2], 30, "a segment over https")
        media = get(port, ca, "/live/tls/media.m3u8")[2].decode()
        seg = [l for l in media.splitlines() if l.startswith("seg-")][0]
        status, hdr, data = get(port, ca, "/live/tls/" + seg)
        check(status == 200 and len(data) > 1000, "segment over https: %d" % status)
        check(get(port, ca, "/static/hls.min.js")[0] == 200, "hls.js over https")

        r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-ca_file", ca, "-tls_verify", "1",
                            "-i", "https://127.0.0.1:%d/live/tls/index.m3u8" % port, "-t", "3",
                            "-f", "null", "-"], capture_output=True, text=True, timeout=60)
        check(r.returncode == 0, "ffmpeg over https: %s" % r.stderr[-800:])

        # hls.js in Chromium plays the HTTPS page (the test CA's certificate: errors ignored).
        p = subprocess.run(["node", os.path.join(os.path.dirname(__file__), "browser_pages.js"),
                            "viewer", "https://127.0.0.1:%d/live/tls/" % port, "5", "-", "0",
                            "60"], capture_output=True, text=True, timeout=90)
        lines = [l for l in p.stdout.splitlines() if l.startswith('{"mode"')]
        res = json.loads(lines[-1]) if lines else {}
        check(res.get("played") and not res.get("errors"),
              "Chromium over https: %s %s" % (p.stdout[-2000:], p.stderr[-1000:]))
        print("chromium over https: played 5 s, player %s" % res.get("player"))

        # TLS 1.2 and 1.3 only.
        for version, ok in (("-tls1_2", True), ("-tls1_3", True), ("-tls1_1", False)):
            rc, out = s_client(port, version)
            check((rc == 0 and "BEGIN CERTIFICATE" in out) == ok or
                  (not ok and "Cipher is (NONE)" in out),
                  "s_client %s: rc %d\n%s" % (version, rc, out[-1500:]))
            if ok:
                check("Protocol  : TLSv1.%s" % version[-1] in out or
                      "TLSv1.%s" % version[-1] in out, "s_client %s: %s" % (version, out[-800:]))

        # Plain HTTP on the TLS port: no page comes back.
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b"GET /live/tls/ HTTP/1.1\r\nHost: x\r\n\r\n")
        try:
            reply = s.recv(4096)
        except OSError:
            reply = b""
        s.close()
        check(b"index.m3u8" not in reply and not reply.startswith(b"HTTP/1.1 200"),
              "plain HTTP on the TLS port got a page: %r" % reply[:200])
        check(srv.alive(), "server died")
        check(get(port, ca, "/healthz")[0] == 200, "https after plain HTTP on its port")

        # A stalled TLS handshake (half a ClientHello) is cut at http.request_timeout.
        s = socket.create_connection(("127.0.0.1", port), timeout=15)
        s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
        t0 = time.monotonic()
        try:
            while s.recv(4096):
                pass
        except OSError:
            pass
        took = time.monotonic() - t0
        s.close()
        check(took < 12, "a stalled TLS handshake stayed open %.1f s" % took)
        wait_for(lambda: "sent no complete request head within 2 s" in srv.logtext(), 10,
                 "the stalled-handshake line")
        print("stalled TLS handshake closed after %.1f s" % took)
        redirects(srv, port)
    finally:
        if pub:
            pub.kill()
            pub.wait()
        srv.stop()

    # redirect_listen without HTTPS is a config error.
    path = os.path.join(d, "redir.yaml")
    with open(path, "w") as f:
        f.write("http:\n  redirect_listen: \":8081\"\n")
    r = subprocess.run([binary, "--check-config", path], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "it needs http.tls_cert" in r.stderr, "redirect without TLS: %r"
          % r.stderr)

    # tls_cert without tls_key is a config error.
    path = os.path.join(d, "half.yaml")
    with open(path, "w") as f:
        f.write("http:\n  tls_cert: \"%s\"\n" % crt)
    r = subprocess.run([binary, "--check-config", path], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "set both or neither" in r.stderr, "half TLS config: %r" % r.stderr)


if __name__ == "__main__":
    run(main)
