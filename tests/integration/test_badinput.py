"""Bad input does not hurt anyone else: while ffmpeg publishes live/good, other
TCP connections send garbage, stall in the handshake, announce a huge message,
nest AMF 1,000 deep and publish HEVC (a second publisher of the same name takes
the stream over: test_reconnect.py). Each of
them is closed by the server (for the right reason, per its log), the good
stream keeps producing segments, its publisher ends cleanly, and the server is
still alive."""
import os
import socket
import struct
import threading
import time

from onair_test import (Failure, Server, amf_num, amf_obj, amf_str, check, ffmpeg_publish,
                        media_playlist_path, parse_media_playlist, run, wait_for)

PUBLISH_SECONDS = 30
SEGMENT = 1
CLOSE_TIMEOUT = 15  # > the server's 5 s setup timeout


# ---- a minimal RTMP client ----------------------------------------------------

AMF_NULL = b"\x05"


def chunk(csid, mtype, msid, payload, ts=0, size=128):
    """One message as a type 0 chunk plus type 3 continuations (csid < 64)."""
    out = bytes([csid]) + ts.to_bytes(3, "big") + len(payload).to_bytes(3, "big") + \
        bytes([mtype]) + struct.pack("<I", msid)
    for i in range(0, max(len(payload), 1), size):
        if i:
            out += bytes([0xC0 | csid])
        out += payload[i:i + size]
    return out


def command(csid, msid, *values):
    return chunk(csid, 20, msid, b"".join(values))


def connect_sock(srv):
    s = socket.create_connection(("127.0.0.1", srv.rtmp_port), timeout=CLOSE_TIMEOUT + 5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        d = s.recv(n - len(buf))
        if not d:
            raise Failure("server closed during the handshake (%d of %d bytes)" % (len(buf), n))
        buf += d
    return buf


def handshake(s):
    """Plain handshake: C0+C1, read S0+S1+S2, C2 = S1."""
    s.sendall(b"\x03" + bytes(8) + os.urandom(1528))
    reply = recv_exact(s, 1 + 2 * 1536)
    check(reply[0] == 3, "S0 is %d" % reply[0])
    s.sendall(reply[1:1537])


def recv_until(s, needle, timeout=10):
    buf, deadline = b"", time.monotonic() + timeout
    while needle not in buf:
        if time.monotonic() > deadline:
            raise Failure("no %r from the server; got %r" % (needle, buf[-200:]))
        d = s.recv(65536)
        if not d:
            raise Failure("server closed before sending %r" % needle)
        buf += d
    return buf


def connect_cmd(app="live"):
    return command(3, 0, amf_str("connect"), amf_num(1),
                   amf_obj({"app": app, "type": "nonprivate", "flashVer": "FMLE/3.0 (test)",
                            "tcUrl": "rtmp://127.0.0.1/" + app}))


def wait_closed(s, timeout=CLOSE_TIMEOUT):
    """Reads until the server closes; returns (everything read, seconds it took)."""
    t0, buf = time.monotonic(), b""
    s.settimeout(timeout)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
    except ConnectionResetError:
        pass
    except socket.timeout:
        raise Failure("the server did not close the connection within %d s" % timeout)
    finally:
        s.close()
    return buf, time.monotonic() - t0


def publish_sock(srv, name):
    s = connect_sock(srv)
    handshake(s)
    s.sendall(connect_cmd())
    recv_until(s, b"NetConnection.Connect.Success")
    s.sendall(command(3, 0, amf_str("createStream"), amf_num(2), AMF_NULL))
    s.sendall(command(8, 1, amf_str("publish"), amf_num(3), AMF_NULL, amf_str(name),
                      amf_str("live")))
    return s


# ---- the bad clients -------------------------------------------------------------
# Each returns a short description; it raises Failure if the server misbehaved.

def bad_random(srv):
    s = connect_sock(srv)
    s.sendall(b"\x07" + os.urandom(65535))  # anything but version 3
    wait_closed(s)
    return "random bytes"


def bad_random_after_handshake(srv):
    s = connect_sock(srv)
    handshake(s)
    try:
        s.sendall(os.urandom(65536))
    except (BrokenPipeError, ConnectionResetError):
        pass
    wait_closed(s)  # a protocol error, or at the latest the setup timeout
    return "random chunks"


def bad_truncated_stall(srv):
    s = connect_sock(srv)
    s.sendall(b"\x03" + bytes(100))
    _, took = wait_closed(s)
    check(took >= 4, "stalled handshake closed after only %.1f s" % took)  # 5 s, from accept
    return "truncated handshake, stalled (closed after %.1f s)" % took


def bad_truncated_close(srv):
    s = connect_sock(srv)
    s.sendall(b"\x03" + bytes(700))
    s.close()
    return "truncated handshake, closed by the client"


def bad_huge_message(srv):
    s = connect_sock(srv)
    handshake(s)
    # The 24-bit length field tops out at 16 MiB - 1 (a "100 MB" message cannot be
    # announced); the server must refuse it from the header, before any payload.
    s.sendall(bytes([3]) + bytes(3) + b"\xff\xff\xff" + bytes([20]) + bytes(4) + b"x" * 100)
    _, took = wait_closed(s)
    check(took < 5, "huge message header: closed only after %.1f s" % took)
    return "16 MiB message announced"


def bad_deep_amf(srv):
    s = connect_sock(srv)
    handshake(s)
    s.sendall(connect_cmd())
    recv_until(s, b"NetConnection.Connect.Success")
    deep = b"".join(b"\x03\x00\x01a" for _ in range(1000)) + amf_num(1) + b"\x00\x00\x09" * 1000
    s.sendall(chunk(3, 20, 0, amf_str("deep") + amf_num(0) + deep, size=128))
    _, took = wait_closed(s)
    check(took < 5, "deep AMF: closed only after %.1f s" % took)
    return "AMF nested 1,000 deep"


def bad_wrong_app(srv):
    s = connect_sock(srv)
    handshake(s)
    s.sendall(connect_cmd("nope"))
    data, _ = wait_closed(s)
    check(b"NetConnection.Connect.Rejected" in data, "wrong app: no Connect.Rejected")
    return "unknown application"


def bad_hevc(srv):
    s = publish_sock(srv, "hevc")
    recv_until(s, b"NetStream.Publish.Start")
    # Enhanced RTMP: IsExHeader | key frame | PacketTypeSequenceStart, FourCC 'hvc1'.
    s.sendall(chunk(6, 9, 1, b"\x90hvc1" + bytes(40)))
    data, took = wait_closed(s)
    check(b"NetStream.Publish.Failed" in data, "HEVC: no Publish.Failed onStatus")
    return "HEVC over enhanced RTMP"


BAD = [bad_random, bad_random_after_handshake, bad_truncated_stall, bad_truncated_close,
       bad_huge_message, bad_deep_amf, bad_wrong_app, bad_hevc]

# What the server log must show (each bad client detected for its own reason).
EXPECTED_LOG = [
    "handshake failed",
    "message longer than max_message_bytes",
    "too deep",
    "unknown application 'nope'",
    "unsupported video codec HEVC",
    "not publishing after 5 s",
]


def progress(srv, media):
    """Media sequence + segment count of the good stream's playlist."""
    status, _, body = srv.get(media)
    check(status == 200, "good stream playlist: HTTP %d" % status)
    tags, segs, _ = parse_media_playlist(body.decode())
    return int(tags.get("#EXT-X-MEDIA-SEQUENCE", "0")) + len(segs)


def main(binary):
    srv = Server(binary, {"hls": {"segment_seconds": SEGMENT, "window_segments": 4}})
    pub = None
    try:
        pub = ffmpeg_publish(srv.rtmp_url("good"), PUBLISH_SECONDS, size="320x180")
        media = wait_for(lambda: media_playlist_path(srv, "good"), 15, "live/good playlist")
        before = wait_for(lambda: progress(srv, media), 10, "a first segment")

        results, errors = {}, []

        t0 = time.monotonic()

        def runner(fn):
            try:
                results[fn.__name__] = "%s [%.1f s]" % (fn(srv), time.monotonic() - t0)
            except Exception as e:  # collected and reported below
                errors.append("%s: %s" % (fn.__name__, e))

        threads = [threading.Thread(target=runner, args=(fn,)) for fn in BAD]
        for t in threads:
            t.start()
        for t in threads:
            t.join(CLOSE_TIMEOUT + 20)
        for name in sorted(results):
            print("ok: %s" % results[name])
        check(not errors, "bad clients:\n  " + "\n  ".join(errors))

        check(srv.alive(), "server died")
        if pub.poll() is not None:
            raise Failure("the good publisher stopped: %s" % pub.stderr.read())
        mid = progress(srv, media)
        time.sleep(3 * SEGMENT)
        after = progress(srv, media)
        print("good stream: %d -> %d -> %d (sequence + segments)" % (before, mid, after))
        check(mid > before and after > mid, "the good stream stopped advancing")

        log = srv.logtext()
        for needle in EXPECTED_LOG:
            check(needle in log, "server log lacks %r" % needle)

        _, err = pub.communicate(timeout=PUBLISH_SECONDS + 30)
        check(pub.returncode == 0, "the good publisher failed: %s" % err)
        pub = None
        check(srv.alive(), "server died")
    finally:
        if pub:
            pub.kill()
            pub.wait()
        srv.stop()


if __name__ == "__main__":
    run(main)
