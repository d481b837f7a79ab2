"""RTMPS ingest: certificates made here with the openssl CLI (a CA and a leaf for
127.0.0.1, full chain). ffmpeg publishes over rtmps:// and the HLS decodes clean;
GStreamer's rtmp2sink publishes over rtmps:// too; openssl s_client gets TLS 1.2
and 1.3 but not 1.1. While the ffmpeg publisher keeps streaming, each of these is
closed with its log line: a plain RTMP client on the TLS port, a TLS client on the
plain port, a stalled TLS handshake (rtmp.setup_timeout) and a garbage handshake.
RTMPS shares the RTMP budgets: with rtmp.max_unauthenticated 2, stalled TLS and
plain connections make room for each other. A config with rtmps.listen but no
certificate is refused."""
import os
import socket
import ssl
import subprocess
import sys
import tempfile
import time

from onair_test import (Server, check, ffmpeg_publish, make_certs, media_playlist_path,
                        parse_media_playlist, run, s_client, wait_for)
from test_gstreamer import aac_encoder, have, pipeline


def segments(srv, media):
    status, _, body = srv.get(media)
    if status != 200:
        return []
    return parse_media_playlist(body.decode())[1]


def media_sequence(srv, media):
    status, _, body = srv.get(media)
    tags, segs, _ = parse_media_playlist(body.decode()) if status == 200 else ({}, [], [])
    return int(tags.get("#EXT-X-MEDIA-SEQUENCE", "0")) + len(segs)


def closed(s, timeout=15):
    """Reads until EOF or a reset; returns the bytes read. Fails if the socket stays open."""
    s.settimeout(timeout)
    got = b""
    t0 = time.monotonic()
    try:
        while time.monotonic() - t0 < timeout:
            b = s.recv(65536)
            if not b:
                return got
            got += b
    except (ConnectionResetError, BrokenPipeError):
        return got
    except socket.timeout:
        pass
    raise AssertionError("connection still open after %d s" % timeout)


def wait_log(srv, text, what, timeout=15):
    wait_for(lambda: text in srv.logtext(), timeout, what)


def bad_clients(srv, advancing):
    """Each bad client is closed with its log line while the publisher advances."""
    tls_port, plain_port = srv.rtmps_port, srv.rtmp_port

    # A plain RTMP client (C0 + C1) on the TLS port.
    s = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    s.sendall(b"\x03" + os.urandom(1536))
    reply = closed(s)
    s.close()
    check(not reply.startswith(b"\x03"), "the TLS port answered an RTMP handshake")
    wait_log(srv, "TLS handshake failed", "the plain-RTMP-on-TLS line")
    advancing("after a plain RTMP client on the TLS port")

    # A TLS client on the plain port.
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    raw = socket.create_connection(("127.0.0.1", plain_port), timeout=10)
    try:
        ctx.wrap_socket(raw, server_hostname="127.0.0.1").close()
        check(False, "TLS on the plain RTMP port completed a handshake")
    except (ssl.SSLError, OSError):
        pass
    raw.close()
    wait_log(srv, "a TLS ClientHello (an rtmps:// client on the plain RTMP port?)",
             "the TLS-on-plain line")
    advancing("after a TLS client on the plain port")

    # A stalled TLS handshake: half a ClientHello record, then nothing.
    s = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
    t0 = time.monotonic()
    closed(s, timeout=20)
    s.close()
    print("stalled TLS handshake closed after %.1f s" % (time.monotonic() - t0))
    wait_log(srv, "not publishing after 2 s (handshake, rtmp.setup_timeout)",
             "the stalled-handshake line")
    advancing("after a stalled TLS handshake")

    # Garbage: a TLS record header then random bytes.
    s = socket.create_connection(("127.0.0.1", tls_port), timeout=10)
    s.sendall(b"\x16\x03\x01\x00\x40" + os.urandom(2000))
    closed(s)
    s.close()
    wait_for(lambda: srv.logtext().count("TLS handshake failed") >= 2, 15,
             "the garbage-handshake line")
    advancing("after a garbage TLS handshake")


def shared_budget(binary, crt, key):
    """rtmp.max_unauthenticated counts RTMP and RTMPS connections together."""
    srv = Server(binary, {"rtmp": {"max_unauthenticated": 2, "setup_timeout": 30},
                          "rtmps": {"listen": "127.0.0.1:0", "cert": crt, "key": key}})
    try:
        a = socket.create_connection(("127.0.0.1", srv.rtmps_port), timeout=10)
        a.sendall(b"\x16\x03\x01\x02\x00")  # stalls in the TLS handshake
        wait_for(lambda: srv.logtext().count("connected over TLS") >= 1, 10, "the TLS connection")
        b = socket.create_connection(("127.0.0.1", srv.rtmp_port), timeout=10)
        wait_for(lambda: "2 not publishing" in srv.logtext(), 10, "two unauthenticated")
        c = socket.create_connection(("127.0.0.1", srv.rtmps_port), timeout=10)
        closed(a, timeout=10)  # the oldest one in the handshake made room
        wait_log(srv, "closed to make room (handshake, rtmp.max_unauthenticated reached)",
                 "the eviction line")
        for s in (a, b, c):
            s.close()
    finally:
        srv.stop()


def gstreamer(srv):
    """rtmp2sink over rtmps:// (GLib's TLS backend; the test CA is not trusted: no validation)."""
    enc = aac_encoder()
    if not enc or not all(have(e) for e in ("x264enc", "flvmux", "rtmp2sink")):
        print("gstreamer: elements missing, rtmp2sink over rtmps not tested")
        return
    cmd = pipeline("rtmp2sink", srv.rtmps_url("gst"), enc)
    i = cmd.index("rtmp2sink")
    cmd[i + 1:i + 1] = ["tls-validation-flags=0"]
    gst = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        media = wait_for(lambda: media_playlist_path(srv, "gst"), 20, "rtmp2sink's playlist")
        wait_for(lambda: len(segments(srv, media)) >= 2, 20, "two rtmp2sink segments")
        out, _ = gst.communicate(timeout=60)
    except BaseException:
        gst.kill()
        out, _ = gst.communicate()
        print(out[-3000:], file=sys.stderr)
        raise
    check(gst.returncode == 0 and "ERROR" not in out, "rtmp2sink over rtmps:\n" + out[-3000:])
    wait_for(lambda: "rtmp" in srv.logtext() and "gst" in srv.logtext(), 5, "gst in the log")
    print("gstreamer: rtmp2sink published over rtmps")


def main(binary):
    d = tempfile.mkdtemp(prefix="onair-rtmps-")
    ca, crt, key = make_certs(d)
    srv = Server(binary, {"rtmp": {"setup_timeout": 2},
                          "rtmps": {"listen": "127.0.0.1:0", "cert": crt, "key": key}})
    pub = None
    try:
        check(srv.rtmps_port, "no rtmps port in the ready line:\n" + srv.logtext())
        check("TLS 1.2+), certificate subject CN=127.0.0.1" in srv.logtext(),
              "rtmps listening line:\n" + srv.logtext())
        pub = ffmpeg_publish(srv.rtmps_url("secure"), 120)
        media = wait_for(lambda: media_playlist_path(srv, "secure"), 30, "the rtmps playlist")
        wait_for(lambda: len(segments(srv, media)) >= 2, 30, "two segments over rtmps")
        check("connected over TLS" in srv.logtext(), "no 'connected over TLS' line")

        r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                            srv.url("/live/secure/index.m3u8"), "-t", "3", "-f", "null", "-"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and not r.stderr.strip(),
              "the rtmps stream does not decode clean: %s" % r.stderr[-1500:])

        def advancing(when):
            before = media_sequence(srv, media)
            wait_for(lambda: media_sequence(srv, media) > before, 15,
                     "the rtmps publisher to advance %s" % when)
            if pub.poll() is not None:
                check(False, "ffmpeg stopped %s: %s" % (when, pub.stderr.read()))

        bad_clients(srv, advancing)
        # TLS 1.2 and 1.3 only (after bad_clients: a refused version logs a failed handshake).
        for version, ok in (("-tls1_2", True), ("-tls1_3", True), ("-tls1_1", False)):
            rc, out = s_client(srv.rtmps_port, version)
            if ok:
                check(rc == 0 and "TLSv1.%s" % version[-1] in out,
                      "s_client %s: rc %d\n%s" % (version, rc, out[-1500:]))
            else:
                check(rc != 0 or "Cipher is (NONE)" in out,
                      "s_client %s got a session:\n%s" % (version, out[-1500:]))

        gstreamer(srv)
        advancing("at the end")
        check(srv.alive(), "server died")
        check("secure" not in "".join(l for l in srv.logtext().splitlines()
                                      if "stream ended" in l),
              "the rtmps publisher was disconnected:\n" + srv.logtext()[-3000:])
    finally:
        if pub and pub.poll() is None:
            pub.kill()
            pub.wait()
        srv.stop()

    shared_budget(binary, crt, key)

    # rtmps.listen without a certificate, and a key that does not match, are refused.
    path = os.path.join(d, "bad.yaml")
    with open(path, "w") as f:
        f.write('rtmps:\n  listen: "127.0.0.1:0"\n')
    r = subprocess.run([binary, "--check-config", path], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "rtmps.listen needs rtmps.cert and rtmps.key" in r.stderr,
          "rtmps without a certificate: %r" % r.stderr)
    _, crt2, key2 = make_certs(d, prefix="other")
    with open(path, "w") as f:
        f.write('rtmp:\n  listen: "127.0.0.1:0"\nhttp:\n  listen: "127.0.0.1:0"\n'
                'rtmps:\n  listen: "127.0.0.1:0"\n  cert: "%s"\n  key: "%s"\n' % (crt, key2))
    r = subprocess.run([binary, "--config", path], capture_output=True, text=True, timeout=20)
    check(r.returncode != 0 and "error rtmps: rtmps.key" in r.stderr and "mismatch" in r.stderr,
          "mismatched key: exit %d %r" % (r.returncode, r.stderr[-1500:]))


if __name__ == "__main__":
    run(main)
