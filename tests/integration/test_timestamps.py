"""Timestamps from any encoder. A small raw RTMP publisher (below) sends the
tags of a real ffmpeg-encoded FLV with rewritten timestamps, as ffmpeg itself
would "fix" them: backwards 10 s, forward 1 h, audio 500 ms late and ahead,
duplicate and non-monotonic video DTS, the 2^31 and 2^32 ms wraps, a late AAC
sequence header, no keyframe after the first, all timestamps zero, and ten
minutes of slightly overlapping audio timestamps. For each: the server stays
up, EXT-X-TARGETDURATION never changes, every EXTINF matches the duration of
the media in its segment (ffprobe's packets with the durations the file
declares) within one frame, no segment exceeds the byte cap, and ffmpeg -v
error reads the playlist with no output. The ten minutes: A/V does not drift
(within one AAC frame) and no audio sample is shorter than a frame."""
import os
import socket
import struct
import tempfile
import threading
import time

import hls_check
from onair_test import (Failure, Server, amf_num, amf_obj, amf_str, check, make_flv, read_flv, run,
                        wait_for)

CAP = 4 * 1024 * 1024   # hls.max_segment_bytes for this test
TARGET = 2
OVERLAP_TARGET = 6      # 100 segments (the most a window lists) for ten minutes


# ---- FLV tags -------------------------------------------------------------------

def is_config(t, body):
    return body[1] == 0 if t in (8, 9) else False


def is_key(t, body):
    return t == 9 and body[0] >> 4 == 1


# ---- a minimal raw RTMP publisher ---------------------------------------------------

CHUNK = 4096


class RawPublisher:
    """Handshake, connect, createStream, publish; then one FLV tag per message,
    each as a type 0 chunk (extended timestamp when needed) + type 3 chunks."""

    def __init__(self, port, name):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b"\x03" + bytes(8) + os.urandom(1528))
        reply = b""
        while len(reply) < 1 + 2 * 1536:
            d = self.sock.recv(1 + 2 * 1536 - len(reply))
            if not d:
                raise Failure("server closed during the handshake")
            reply += d
        self.sock.sendall(reply[1:1537])
        self.closed = False
        self.drainer = threading.Thread(target=self._drain, daemon=True)
        self.drainer.start()
        self.message(2, 1, 0, 0, struct.pack(">I", CHUNK), size=128)
        self.message(3, 20, 0, 0, amf_str("connect") + amf_num(1) + amf_obj(
            {"app": "live", "type": "nonprivate", "tcUrl": "rtmp://127.0.0.1/live"}))
        self.message(3, 20, 0, 0, amf_str("createStream") + amf_num(2) + b"\x05")
        self.message(8, 20, 1, 0, amf_str("publish") + amf_num(3) + b"\x05" + amf_str(name) +
                     amf_str("live"))

    def _drain(self):
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.closed = True

    def message(self, csid, mtype, msid, ts, payload, size=CHUNK):
        ts &= 0xFFFFFFFF
        ext = ts >= 0xFFFFFF
        hdr = bytes([csid]) + (0xFFFFFF if ext else ts).to_bytes(3, "big") + \
            len(payload).to_bytes(3, "big") + bytes([mtype]) + struct.pack("<I", msid)
        out = [hdr + (struct.pack(">I", ts) if ext else b"")]
        for i in range(0, max(len(payload), 1), size):
            if i:
                out.append(bytes([0xC0 | csid]) + (struct.pack(">I", ts) if ext else b""))
            out.append(payload[i:i + size])
        self.sock.sendall(b"".join(out))

    def tag(self, t, ts, body):
        self.message(4 if t == 8 else 6, t, 1, ts, body)

    def close(self):
        """A FIN, then read until the server closes its side: closing with the
        server's acknowledgements unread would send a RST, and a RST makes the
        kernel drop what the server has not read yet (the tail of the media)."""
        self.sock.shutdown(socket.SHUT_WR)
        self.drainer.join(30)
        check(not self.drainer.is_alive(), "the server did not close after the publisher's FIN")
        self.sock.close()


# ---- the cases: functions from the source tags to the tags to send ---------------

def shift_after(tags, at_ms, delta):
    return [(t, ts + (delta if ts >= at_ms and not is_config(t, b) else 0), b)
            for t, ts, b in tags]


def case_back_10s(tags):
    return shift_after([(t, ts + 20000, b) for t, ts, b in tags], 26000, -10000)


def case_forward_1h(tags):
    return shift_after(tags, 6000, 3600 * 1000)


def case_audio_late(tags):
    return [(t, ts + (500 if t == 8 else 0), b) for t, ts, b in tags]


def case_audio_ahead(tags):
    return [(t, ts + (0 if t == 8 else 500), b) for t, ts, b in tags]


def with_cts(body, cts):
    return body[:2] + (cts & 0xFFFFFF).to_bytes(3, "big") + body[5:]


def case_video_dts(tags):
    """As a hardware encoder: every 10th video frame repeats the previous DTS,
    every 10th + 3 steps back 15 ms; presentation times stay right (the
    composition offset takes up the difference)."""
    out, i, prev = [], 0, 0
    for t, ts, b in tags:
        if t == 9 and not is_config(t, b):
            new = prev if i % 10 == 5 else prev - 15 if i % 10 == 8 else ts
            cts = int.from_bytes(b[2:5], "big", signed=True)
            b = with_cts(b, cts + ts - new)
            ts = prev = new
            i += 1
        out.append((t, ts, b))
    return out


def case_wrap31(tags):
    return [(t, ts + 2 ** 31 - 6000, b) for t, ts, b in tags]


def case_wrap32(tags):
    return [(t, (ts + 2 ** 32 - 6000) % 2 ** 32, b) for t, ts, b in tags]


def case_late_aac_header(tags):
    """The AAC sequence header only after 3 s of video (and audio frames)."""
    hdr = [x for x in tags if x[0] == 8 and is_config(*x[::2])]
    rest = [x for x in tags if not (x[0] == 8 and is_config(*x[::2]))]
    k = next(i for i, x in enumerate(rest) if x[1] >= 3000)
    return rest[:k] + [(8, rest[k][1], hdr[0][2])] + rest[k:]


def case_zero(tags):
    return [(t, 0, b) for t, ts, b in tags]


CASES = [
    ("back10s", case_back_10s, "src"),
    ("fwd1h", case_forward_1h, "src"),
    ("alate", case_audio_late, "src"),
    ("aahead", case_audio_ahead, "src"),
    ("vdts", case_video_dts, "src"),
    ("wrap31", case_wrap31, "src"),
    ("wrap32", case_wrap32, "src"),
    ("lateaac", case_late_aac_header, "src"),
    ("nokey", lambda tags: tags, "nokey"),
    ("zero", case_zero, "src"),
]


def publish(srv, name, tags, early=None):
    """Sends TAGS as live/NAME; EARLY: a list that gets the status of a playlist
    request made once the stream exists and before any media (it is held until
    the first segment or part)."""
    pub = RawPublisher(srv.rtmp_port, name)
    targets = set()
    if early is not None:
        wait_for(lambda: srv.get("/api/v1/streams/" + name, port=srv.admin_port())[0] == 200,
                 15, "live/%s to be published" % name)
        held = threading.Thread(target=lambda: early.append(
            srv.get("/live/%s/media.m3u8" % name)[0]), daemon=True)
        held.start()
        time.sleep(0.5)  # the request is held before the media starts
    for i, (t, ts, b) in enumerate(tags):
        pub.tag(t, ts, b)
        if i == len(tags) // 2:
            st, _, body = srv.get("/live/%s/media.m3u8" % name)
            if st == 200:
                targets.update(hls_check.parse(body.decode())[0].get("#EXT-X-TARGETDURATION",
                                                                    []))
    if early is not None:
        held.join(30)
    pub.close()
    wait_for(lambda: "#EXT-X-ENDLIST" in srv.get("/live/%s/media.m3u8" % name)[2].decode(), 20,
             "live/%s to end" % name)
    return targets


def check_case(srv, name, targets, target=TARGET):
    tags, segs, report = hls_check.check_media(srv, name, CAP)
    targets.update(tags["#EXT-X-TARGETDURATION"])
    check(targets == {str(target)}, "%s: EXT-X-TARGETDURATION %s" % (name, sorted(targets)))
    check(len(segs) >= 3, "%s: only %d segments" % (name, len(segs)))
    if name == "lateaac":
        # The audio track joins with a new init segment; ffmpeg's HLS demuxer
        # keeps the first moov (one track), so each segment is decoded with its own.
        err = "\n".join(hls_check.ffmpeg_reads_segment(srv, name, s) for s in segs).strip()
    else:
        err = hls_check.ffmpeg_reads(srv, name)
    check(err == "", "%s: ffmpeg -v error:\n%s" % (name, err[-1500:]))
    check(srv.alive(), "server died after %s" % name)
    return segs, report


def audio_overlap(srv, src):
    """Ten minutes with audio timestamps 21 ms apart for 21.33 ms frames (the
    samples overlap: 1.6% more audio than the clock says), over the whole video."""
    one = [x for x in src if not is_config(x[0], x[2])]
    cfg = [x for x in src if is_config(x[0], x[2])]
    span = max(ts for _, ts, _ in one) + 34
    loops = 600 * 1000 // span + 1
    video = [x for x in one if x[0] == 9]
    audio = [x[2] for x in one if x[0] == 8]
    tags = list(cfg)
    for loop in range(loops):
        tags += [(t, ts + loop * span, b) for t, ts, b in video]
    end = max(ts for _, ts, _ in tags)
    tags += [(8, k * 21, audio[k % len(audio)]) for k in range(end // 21)]
    tags.sort(key=lambda x: x[1])
    publish(srv, "overlap", tags)
    segs, report = check_case(srv, "overlap", set(), OVERLAP_TARGET)
    offs = []
    with tempfile.TemporaryDirectory() as d:
        for s in segs:
            tr = hls_check.probe(hls_check.segment_file(srv, "overlap", s, d))
            check("audio" in tr and tr["audio"][0] > 0, "overlap: segment %d has no audio" %
                  s["msn"])
            offs.append(tr["audio"][1] - tr["video"][1])
    frame = 1024 / 48000
    head, tail = offs[:20], offs[-20:]
    drift = sum(tail) / len(tail) - sum(head) / len(head)
    print("overlap: 10 min, %d segments, %s; first audio minus first video decode time per "
          "segment: %.4f .. %.4f s, mean of the last 20 minus the first 20: %+.4f s" %
          (len(segs), "audio frames dropped (logged)" if "dropping a frame" in srv.logtext()
           else "no audio frame dropped", min(offs), max(offs), drift))
    # The sample clock stays within one AAC frame of the FLV clock, and where the
    # first audio frame of a segment falls varies by up to a frame more: no drift.
    check(abs(drift) <= frame, "overlap: A/V drifted by %.4f s in 10 min" % drift)
    check(max(offs) - min(offs) <= 2 * frame + 0.002,
          "overlap: A/V offset varies by %.4f s" % (max(offs) - min(offs)))


def without_ll(binary, tags):
    """LL-HLS off: the same rules, and a segment is still made of fragments of
    about 0.5 s (several moof boxes), so ending one never copies it whole."""
    srv = Server(binary, {"hls": {"segment_seconds": TARGET, "window_segments": 40,
                                  "part_seconds": 0, "max_segment_bytes": CAP}})
    try:
        for name, src in (("plain", "src"), ("plainnokey", "nokey")):
            early = []
            targets = publish(srv, name, tags[src], early)
            check(early == [200], "%s: a playlist request before the first segment got %s "
                  "(held until it exists, LL-HLS off)" % (name, early))
            segs, report = check_case(srv, name, targets)
            check("#EXT-X-PART" not in srv.get("/live/%s/media.m3u8" % name)[2].decode(),
                  "%s: parts listed with LL-HLS off" % name)
            moofs = []
            for s in segs[:-1]:  # the last one may be short
                body = hls_check.fetch(srv, name, s["uri"])
                moofs.append(sum(1 for t, _, _ in hls_check.boxes(body) if t == b"moof"))
            print("%s (LL-HLS off): %d segments, fragments per segment %s" % (name, len(segs),
                                                                              moofs))
            check(min(moofs) >= 3, "%s: segments of %s fragments" % (name, moofs))
    finally:
        srv.stop()


def main(binary):
    tmp = tempfile.TemporaryDirectory(prefix="onair-ts-")
    d = tmp.name
    srcs = {"src": os.path.join(d, "src.flv"), "nokey": os.path.join(d, "nokey.flv")}
    make_flv(srcs["src"], 12, size="320x240", gop=30)
    make_flv(srcs["nokey"], 12, size="320x240", gop=100000)
    tags = {k: read_flv(v) for k, v in srcs.items()}
    srv = Server(binary, {"hls": {"segment_seconds": TARGET, "window_segments": 40,
                                  "max_segment_bytes": CAP}})
    failed = []
    try:
        for name, fn, src in CASES:
            seen = len(srv.logtext().splitlines())
            try:
                targets = publish(srv, name, fn(tags[src]))
                segs, report = check_case(srv, name, targets)
            except Failure as e:  # every case runs; all failures are reported
                failed.append(str(e))
                print("%s: FAILED: %s\n  the server's log meanwhile:\n    %s" % (
                    name, e, "\n    ".join(srv.logtext().splitlines()[seen:][-60:])))
                continue
            print("%s: %d segments, target %d, every EXTINF = its media (trun) within a frame, "
                  "ffmpeg -v error silent" % (name, len(segs), TARGET))
            for line in report:
                print(line)
        log = srv.logtext()
        for needle in ("timestamps jumped -10.0", "timestamps jumped +3600.0",
                       "decode timestamps repeat or go back", "no keyframe for",
                       "audio configuration arrived late"):
            if needle not in log:
                failed.append("server log lacks %r" % needle)
        if not srv.alive():
            failed.append("server died")
        try:
            # its own server: a window that lists (nearly) all ten minutes
            srv.stop()
            srv = Server(binary, {"hls": {"segment_seconds": OVERLAP_TARGET,
                                          "window_segments": 100,
                                          "max_segment_bytes": CAP}})
            audio_overlap(srv, tags["src"])
        except Failure as e:
            failed.append(str(e))
            print("overlap: FAILED: %s" % e)
        try:
            without_ll(binary, tags)
        except Failure as e:
            failed.append(str(e))
            print("LL-HLS off: FAILED: %s" % e)
        check(not failed, "%d check(s) failed:\n  %s" % (len(failed), "\n  ".join(failed)))
    finally:
        srv.stop()
        tmp.cleanup()


if __name__ == "__main__":
    run(main)
