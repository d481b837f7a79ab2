"""Probe for scripts/bench-cut.sh: how long an RTMP server's ingest loop keeps
another publisher waiting. Stdlib only.

    bench_cut_probe.py PORT NAME SECONDS SMALL.FLV

Publishes SMALL.FLV (looped, in real time) as live/NAME, so the server treats
it as an ordinary publisher (no setup or idle timeout), and sends an RTMP User
Control PingRequest (event 6, spec 7.1.7) every 5 ms on the same connection;
the server answers each with a PingResponse (event 7) echoing its 4-byte
value. The round trip of every ping is recorded with time.monotonic(). Prints
one JSON object: ping count, lost pings (no answer 2 s after the last one),
RTT percentiles and maximum in ms, and the stalls: every RTT over 20 ms with
its start time in seconds since the probe started (consecutive ones merged).
"""
import json
import os
import select
import socket
import struct
import sys
import time

PING_EVERY = 0.005
CHUNK = 4096


def amf_str(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_num(x):
    return b"\x00" + struct.pack(">d", x)


def amf_obj(props):
    out = b"\x03"
    for k, v in props.items():
        kb = k.encode()
        out += struct.pack(">H", len(kb)) + kb + (amf_str(v) if isinstance(v, str) else amf_num(v))
    return out + b"\x00\x00\x09"


def read_flv(path):
    """[(type, ts_ms, body)] of an FLV file's audio (8) and video (9) tags."""
    with open(path, "rb") as f:
        data = f.read()
    pos, tags = 13, []
    while pos + 11 <= len(data):
        t, size = data[pos], int.from_bytes(data[pos + 1:pos + 4], "big")
        ts = int.from_bytes(data[pos + 4:pos + 7], "big") | data[pos + 7] << 24
        if t in (8, 9):
            tags.append((t, ts, data[pos + 11:pos + 11 + size]))
        pos += 11 + size + 4
    return tags


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


def main():
    port, name, seconds, flv = int(sys.argv[1]), sys.argv[2], float(sys.argv[3]), sys.argv[4]
    tags = read_flv(flv)
    loop_ms = tags[-1][1] + 40
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
    sent = {}      # ping value -> send time
    rtts = []      # (send time, rtt)
    seq = 0
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
                sent[seq] = time.monotonic()
                last_ping = sent[seq]
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
            d = sock.recv(262144)
            if not d:
                sys.exit("probe: the server closed the connection")
            got = time.monotonic()
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
            stalls.append([round(st - t0, 3), round(r * 1000, 1)])
        prev = st
    ms = lambda x: None if x is None else round(x * 1000, 2)
    print(json.dumps({
        "pings": seq, "answered": len(rtts), "lost": len(sent),
        "p50": ms(percentile(v, 0.5)), "p99": ms(percentile(v, 0.99)),
        "p999": ms(percentile(v, 0.999)), "max": ms(v[-1] if v else None),
        "over_5ms": sum(1 for x in v if x > 0.005), "over_20ms": sum(1 for x in v if x > 0.020),
        "stalls": stalls,
    }))


if __name__ == "__main__":
    main()
