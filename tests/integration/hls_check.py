"""Playlist and segment checks shared by the reconnect and timestamp tests:
the media playlist as a list of segments (with their discontinuity and init
segment), each segment probed with ffprobe as init + segment, and the rules of
RFC 8216 that onair promises to keep. Standard library + ffmpeg/ffprobe only."""
import json
import os
import re
import subprocess
import tempfile

from onair_test import check


def parse(text):
    """Returns (tags, segments): tags maps each tag to its list of values;
    each segment is a dict: msn, uri, duration, map, discontinuity."""
    tags, segs = {}, []
    seq, disc, cur_map, dur = 0, False, None, None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            k, _, v = line.partition(":")
            tags.setdefault(k, []).append(v)
            if k == "#EXT-X-MEDIA-SEQUENCE":
                seq = int(v)
            elif k == "#EXT-X-DISCONTINUITY":
                disc = True
            elif k == "#EXT-X-MAP":
                cur_map = re.search(r'URI="([^"]+)"', v).group(1)
            elif k == "#EXTINF":
                dur = float(v.split(",")[0])
            continue
        segs.append({"msn": seq + len(segs), "uri": line, "duration": dur, "map": cur_map,
                     "discontinuity": disc})
        disc, dur = False, None
    return tags, segs


def fetch(srv, name, obj):
    status, _, body = srv.get("/live/%s/%s" % (name, obj))
    check(status == 200, "GET %s/%s: HTTP %d" % (name, obj, status))
    return body


def segment_file(srv, name, seg, tmpdir):
    """Writes init + segment into one file for ffprobe; returns its path."""
    path = os.path.join(tmpdir, seg["uri"] + ".mp4")
    with open(path, "wb") as f:
        f.write(fetch(srv, name, seg["map"]))
        f.write(fetch(srv, name, seg["uri"]))
    return path


CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"mvex", b"moof", b"traf"}


def boxes(b, off=0, end=None):
    """(type, body start, body end) of the ISO BMFF boxes in b[off:end], recursing into
    the containers the checks need."""
    end = len(b) if end is None else end
    while off + 8 <= end:
        size, typ = int.from_bytes(b[off:off + 4], "big"), b[off + 4:off + 8]
        head = 8
        if size == 1:
            size, head = int.from_bytes(b[off + 8:off + 16], "big"), 16
        elif size == 0:
            size = end - off
        if size < head:
            break
        yield typ, off + head, off + size
        if typ in CONTAINERS:
            yield from boxes(b, off + head, off + size)
        off += size


def declared_durations(path):
    """The sample durations the file itself declares (trun, tfhd, trex; in seconds),
    per track kind, and each track's first decode time (tfdt): what a player plays.
    ffprobe fills a missing packet duration from the frame rate, so it cannot see a
    last frame that lasts longer, and shifts AAC decode times by the priming."""
    b = open(path, "rb").read()
    kind, scale, trex, out, first = {}, {}, {}, {}, {}
    tid = None
    for typ, s0, s1 in boxes(b):
        if typ == b"tkhd":
            v = b[s0]
            tid = int.from_bytes(b[s0 + (20 if v else 12):s0 + (24 if v else 16)], "big")
        elif typ == b"mdhd":
            v = b[s0]
            scale[tid] = int.from_bytes(b[s0 + (20 if v else 12):s0 + (24 if v else 16)], "big")
        elif typ == b"hdlr":
            kind[tid] = {b"vide": "video", b"soun": "audio"}.get(b[s0 + 8:s0 + 12])
        elif typ == b"trex":
            trex[int.from_bytes(b[s0 + 4:s0 + 8], "big")] = int.from_bytes(b[s0 + 12:s0 + 16],
                                                                             "big")
        elif typ == b"tfhd":
            flags = int.from_bytes(b[s0 + 1:s0 + 4], "big")
            tid = int.from_bytes(b[s0 + 4:s0 + 8], "big")
            q, dflt = s0 + 8, trex.get(tid, 0)
            if flags & 1:
                q += 8
            if flags & 2:
                q += 4
            if flags & 8:
                dflt = int.from_bytes(b[q:q + 4], "big")
        elif typ == b"tfdt":
            t = int.from_bytes(b[s0 + 4:s0 + (12 if b[s0] else 8)], "big")
            first.setdefault(kind.get(tid), t / scale.get(tid, 1))
        elif typ == b"trun":
            flags = int.from_bytes(b[s0 + 1:s0 + 4], "big")
            n = int.from_bytes(b[s0 + 4:s0 + 8], "big")
            q = s0 + 8 + (4 if flags & 1 else 0) + (4 if flags & 4 else 0)
            step = 4 * bin(flags & 0xF00).count("1")
            for _ in range(n):
                d = int.from_bytes(b[q:q + 4], "big") if flags & 0x100 else dflt
                out.setdefault(kind.get(tid), []).append(d / scale.get(tid, 1))
                q += step
    return out, first


def probe(path):
    """Per track of the file: {'video'|'audio': (packets, first decode time s, sum of
    durations s, width, height, [durations s])}; times as the file declares them."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-show_packets",
                          "-of", "json", path], capture_output=True, text=True, check=True)
    j = json.loads(out.stdout)
    res = {}
    for st in j.get("streams", []):
        kind = st["codec_type"]
        pk = [p for p in j.get("packets", []) if p["stream_index"] == st["index"]]
        total = sum(float(p.get("duration_time", 0)) for p in pk)
        first = float(pk[0]["dts_time"]) if pk else 0.0
        res[kind] = (len(pk), first, total, st.get("width", 0), st.get("height", 0),
                     [float(p.get("duration_time", 0)) for p in pk])
    durations, first = declared_durations(path)
    for kind, durs in durations.items():
        if kind in res and len(durs) == res[kind][0]:
            r = res[kind]
            res[kind] = (r[0], first.get(kind, r[1]), sum(durs), r[3], r[4], durs)
    return res


def resolution(srv, name, seg):
    with tempfile.TemporaryDirectory() as d:
        v = probe(segment_file(srv, name, seg, d)).get("video")
    return "%dx%d" % (v[3], v[4]) if v else ""


def check_media(srv, name, cap_bytes=None, frame=0.034):
    """Every rule for the finished playlist of NAME: one target duration, every
    rounded EXTINF within it, every EXTINF equal to the media in its segment
    (the track it is cut on, within one frame), no segment over CAP_BYTES, no
    frame shorter than a frame... Returns (tags, segs, report lines)."""
    text = fetch(srv, name, "media.m3u8").decode()
    tags, segs = parse(text)
    targets = tags.get("#EXT-X-TARGETDURATION", [])
    check(len(targets) == 1, "%s: target duration tags %s" % (name, targets))
    target = int(targets[0])
    report = []
    with tempfile.TemporaryDirectory() as d:
        for s in segs:
            check(s["duration"] is not None and s["duration"] > 0,
                  "%s: segment %d has EXTINF %s" % (name, s["msn"], s["duration"]))
            check(round(s["duration"]) <= target,
                  "%s: segment %d EXTINF %.3f exceeds the target %d" %
                  (name, s["msn"], s["duration"], target))
            path = segment_file(srv, name, s, d)
            if cap_bytes:
                check(os.path.getsize(path) <= cap_bytes + 65536,
                      "%s: segment %d is %d bytes" % (name, s["msn"], os.path.getsize(path)))
            tr = probe(path)
            cut = tr.get("video") or tr.get("audio")
            check(cut and cut[0] > 0, "%s: segment %d has no packets" % (name, s["msn"]))
            step = frame if "video" in tr else 0.0214
            check(abs(cut[2] - s["duration"]) <= step + 0.002,
                  "%s: segment %d EXTINF %.3f but its %s lasts %.3f" %
                  (name, s["msn"], s["duration"], "video" if "video" in tr else "audio",
                   cut[2]))
            if "audio" in tr:
                short = [x for x in tr["audio"][5] if x < 1024 / 48000 - 0.0005]  # 48 kHz or less
                check(not short, "%s: segment %d has %d audio samples shorter than a frame" %
                      (name, s["msn"], len(short)))
            if "video" in tr:
                tiny = [x for x in tr["video"][5] if x < 0.005]
                check(not tiny, "%s: segment %d has %d video frames under 5 ms" %
                      (name, s["msn"], len(tiny)))
            report.append("  %s seg %d: EXTINF %.3f, %s %.3f s%s" % (
                name, s["msn"], s["duration"], "video" if "video" in tr else "audio", cut[2],
                ", disc" if s["discontinuity"] else ""))
    return tags, segs, report


def ffmpeg_reads(srv, name):
    """ffmpeg -v error decodes the whole (ended) playlist; returns its stderr."""
    p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                        srv.url("/live/%s/media.m3u8" % name), "-f", "null", "-"],
                       capture_output=True, text=True, timeout=120)
    return p.stderr.strip()


def ffmpeg_reads_segment(srv, name, seg):
    """ffmpeg -v error decodes one segment with its init segment; returns its stderr."""
    with tempfile.TemporaryDirectory() as d:
        p = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                            segment_file(srv, name, seg, d), "-f", "null", "-"],
                           capture_output=True, text=True, timeout=60)
    return p.stderr.strip()
