"""Probe for scripts/bench-cut.sh: how long an RTMP server's ingest loop keeps
another publisher waiting. Stdlib only.

    bench_cut_probe.py PORT NAME SECONDS SMALL.FLV > PROBE.json
    bench_cut_probe.py cuts PROBE.json CUTS   (CUTS: one wall-clock time a line)

Publishes SMALL.FLV (looped, in real time) as live/NAME, so the server treats
it as an ordinary publisher (no setup or idle timeout), and sends an RTMP User
Control PingRequest (event 6, spec 7.1.7) every 5 ms on the same connection;
the server answers each with a PingResponse (event 7) echoing its 4-byte
value. A ping's round trip runs from just before its send() to the kernel's
receive time of the answer (SO_TIMESTAMPNS, CLOCK_REALTIME), so the probe's
own scheduling delays after the answer has arrived do not count. Prints one
JSON object: ping count, lost pings (no answer 2 s after the last one), RTT
percentiles and maximum in ms, the stalls (runs of consecutive pings answered
after more than 20 ms: start in s since the probe started, longest RTT), and
every ping over 2 ms (wall-clock send time, RTT) for the second form.

The second form sorts the pings by whether they were sent within 250 ms
before to 50 ms after a segment cut (the server's log time of the finished
segment, or the birth time of nginx-rtmp's next fragment file) and prints
the longest RTT of each kind.
"""
import json
import os
import select
import socket
import struct
import sys
import time

# the tests' raw-RTMP helpers (AMF0 values, FLV tags): stdlib only as well
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests",
                                "integration"))
from onair_test import amf_num, amf_obj, amf_str, read_flv  # noqa: E402

PING_EVERY = 0.005
CHUNK = 4096
SO_TIMESTAMPNS = 35  # asm-generic/socket.h (SO_TIMESTAMPNS_OLD); socket.py lacks it
NEAR_BEFORE, NEAR_AFTER = 0.250, 0.050


def is_config(t, body):
    return t in (8, 9) and len(body) > 1 and body[1] == 0


def chunks(csid, mtype, msid, ts, payload):
    """One message as a type 0 chunk (extended timestamp when needed) + type 3 chunks."""
    ts &= 0xFFFFFFFF
    ext = ts >= 0xFFFFFF
    out = [bytes([csid]) + (0xFFFFFF if ext else ts).to_bytes(3, "big") +
           len(payload).to_bytes(3, "big") + bytes([mtype]) + struct.pack("<I", msid) +
           (struct.pack(">I", ts) if ext else b"")]
    for i in range(0, max(len(payload), 1), CHUNK):
        if i:
            out.append(bytes([0xC0 | csid]) + (struct.pack(">I", ts) if ext else b""))
        out.append(payload[i:i + CHUNK])
    return b"".join(out)


class ChunkReader:
    """Reassembles the server's chunk stream into (type, payload) messages."""

    def __init__(self):
        self.buf = bytearray()
        self.size = 128
        self.state = {}  # csid -> [ts, len, type, msid, ext, partial]

    def feed(self, data):
        self.buf += data
        out = []
        while True:
            m = self._one()
            if m is None:
                return out
            if m[0] == 1 and len(m[1]) >= 4:
                self.size = struct.unpack(">I", m[1][:4])[0] & 0x7FFFFFFF
            out.append(m)

    def _one(self):
        b, pos = self.buf, 1
        if len(b) < 1:
            return None
        fmt, csid = b[0] >> 6, b[0] & 0x3F
        if csid == 0:
            if len(b) < 2:
                return None
            csid, pos = 64 + b[1], 2
        elif csid == 1:
            if len(b) < 3:
                return None
            csid, pos = 64 + b[1] + 256 * b[2], 3
        hlen = (11, 7, 3, 0)[fmt]
        if len(b) < pos + hlen:
            return None
        st = self.state.setdefault(csid, [0, 0, 0, 0, False, bytearray()])
        ts, ln, ty, msid, ext = st[0], st[1], st[2], st[3], st[4]
        if fmt <= 2:
            ts = int.from_bytes(b[pos:pos + 3], "big")
            ext = ts == 0xFFFFFF
        if fmt <= 1:
            ln, ty = int.from_bytes(b[pos + 3:pos + 6], "big"), b[pos + 6]
        if fmt == 0:
            msid = struct.unpack("<I", b[pos + 7:pos + 11])[0]
        pos += hlen
        if ext:
            if len(b) < pos + 4:
                return None
            pos += 4
        n = min(self.size, ln - len(st[5]))
        if len(b) < pos + n:
            return None
        st[:5] = [ts, ln, ty, msid, ext]
        st[5] += b[pos:pos + n]
        del b[:pos + n]
        if len(st[5]) < ln:
            return self._one()
        payload, st[5] = bytes(st[5]), bytearray()
        return ty, payload


def percentile(sorted_v, q):
    if not sorted_v:
        return None
    i = min(len(sorted_v) - 1, max(0, int(round(q * (len(sorted_v) - 1)))))
    return sorted_v[i]


def kernel_time(ancdata):
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9
    return None


def cuts(probe_json, cuts_file):
    with open(probe_json) as f:
        p = json.load(f)
    with open(cuts_file) as f:
        cut = sorted(float(x) for x in f.read().split())
    near = lambda t: any(c - NEAR_BEFORE <= t <= c + NEAR_AFTER for c in cut)
    t0, t1 = p["t0"], p["t0"] + p["seconds"]
    at = [r for t, r in p["slow"] if near(t)]
    other = [r for t, r in p["slow"] if not near(t)]
    print(json.dumps({"cuts": sum(1 for c in cut if t0 <= c <= t1),
                      "max_at_cut": max(at, default=None),
                      "max_elsewhere": max(other, default=None)}))


def main():
    if sys.argv[1] == "cuts":
        return cuts(sys.argv[2], sys.argv[3])
    port, name, seconds, flv = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    tags = read_flv(flv)
    loop_ms = tags[-1][1] + 40
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.sendall(b"\x03" + bytes(8) + os.urandom(1528))
    reply = b""
    while len(reply) < 1 + 2 * 1536:
        d = sock.recv(1 + 2 * 1536 - len(reply))
        if not d:
            sys.exit("probe: server closed during the handshake")
        reply += d
    sock.sendall(reply[1:1537])
    sock.sendall(chunks(2, 1, 0, 0, struct.pack(">I", CHUNK)) +
                 chunks(3, 20, 0, 0, amf_str("connect") + amf_num(1) + amf_obj(
                     {"app": "live", "type": "nonprivate",
                      "tcUrl": "rtmp://127.0.0.1:%d/live" % port})) +
                 chunks(3, 20, 0, 0, amf_str("createStream") + amf_num(2) + b"\x05") +
                 chunks(8, 20, 1, 0, amf_str("publish") + amf_num(3) + b"\x05" +
                        amf_str(name) + amf_str("live")))
    rd = ChunkReader()
    sent = {}      # ping value -> wall-clock send time
    rtts = []      # (wall-clock send time, rtt)
    seq = 0
    wall0 = time.time()
    t0 = time.monotonic()
    end = t0 + seconds
    next_ping = t0
    tag_i, loop = 0, 0
    last_ping = 0.0

    def due_tag():
        t, ts, _ = tags[tag_i]
        return t0 + (loop * loop_ms + ts) / 1000.0

    while True:
        now = time.monotonic()
        if now >= end and (not sent or now >= last_ping + 2.0):
            break
        out = []
        if now < end:
            while next_ping <= now:
                seq += 1
                sent[seq] = time.time()
                last_ping = now
                out.append(chunks(2, 4, 0, 0, struct.pack(">HI", 6, seq)))
                next_ping += PING_EVERY
                if next_ping < now - PING_EVERY:  # we were descheduled: no burst
                    next_ping = now + PING_EVERY
            while due_tag() <= now:
                t, ts, body = tags[tag_i]
                if loop == 0 or not is_config(t, body):
                    out.append(chunks(4 if t == 8 else 6, t, 1, loop * loop_ms + ts, body))
                tag_i += 1
                if tag_i == len(tags):
                    tag_i, loop = 0, loop + 1
            if out:
                sock.sendall(b"".join(out))
        wake = min(next_ping, due_tag()) if now < end else last_ping + 2.0
        r, _, _ = select.select([sock], [], [], max(0.0, wake - time.monotonic()))
        if r:
            d, anc, _, _ = sock.recvmsg(262144, 256)
            if not d:
                sys.exit("probe: the server closed the connection")
            got = kernel_time(anc) or time.time()
            for ty, payload in rd.feed(d):
                if ty != 4 or len(payload) < 6:
                    continue
                event, v = struct.unpack(">HI", payload[:6])
                if event == 7:
                    st = sent.pop(v, None)
                    if st is not None:
                        rtts.append((st, got - st))
                elif event == 6:  # nginx-rtmp pings its clients too
                    sock.sendall(chunks(2, 4, 0, 0, struct.pack(">HI", 7, v)))
    sock.close()
    v = sorted(r for _, r in rtts)
    stalls, prev = [], None  # runs of consecutive pings answered after > 20 ms: [start s, max ms]
    for st, r in sorted(rtts):
        if r <= 0.020:
            prev = None
            continue
        if stalls and prev is not None:
            stalls[-1][1] = max(stalls[-1][1], round(r * 1000, 1))
        else:
            stalls.append([round(st - wall0, 3), round(r * 1000, 1)])
        prev = st
    ms = lambda x: None if x is None else round(x * 1000, 2)
    print(json.dumps({
        "pings": seq, "answered": len(rtts), "lost": len(sent),
        "p50": ms(percentile(v, 0.5)), "p99": ms(percentile(v, 0.99)),
        "p999": ms(percentile(v, 0.999)), "max": ms(v[-1] if v else None),
        "over_5ms": sum(1 for x in v if x > 0.005), "over_20ms": sum(1 for x in v if x > 0.020),
        "stalls": stalls, "t0": wall0, "seconds": seconds,
        "slow": [[round(st, 4), round(r * 1000, 2)] for st, r in rtts if r > 0.002],
    }))


if __name__ == "__main__":
    main()
