#!/usr/bin/env python3
"""Writes the small seed corpus of the RTMP parser fuzz targets.

Run from anywhere: python3 tests/fuzz/make_corpus.py
Each file is a valid (or deliberately edge-case) input; the first byte of the
chunk, handshake and flv inputs is the control byte their target reads.
"""
import hashlib
import hmac
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
KEY_TAIL = bytes.fromhex(
    "F0EEC24A8068BEE82E00D0D1029E7E576EEC5D2D29806FAB93B8E636CFEB31AE")
FP_KEY = b"Genuine Adobe Flash Player 001"


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- AMF0 -----------------------------------------------------------------

def amf_num(v):
    return b"\x00" + struct.pack(">d", v)


def amf_bool(v):
    return b"\x01" + bytes([1 if v else 0])


def amf_str(s):
    b = s.encode()
    return b"\x02" + struct.pack(">H", len(b)) + b


def amf_key(k):
    b = k.encode()
    return struct.pack(">H", len(b)) + b


def amf_obj(props, marker=b"\x03"):
    out = marker
    for k, v in props:
        out += amf_key(k) + v
    return out + b"\x00\x00\x09"


def amf_ecma(props, count=None):
    n = len(props) if count is None else count
    return amf_obj(props, b"\x08" + struct.pack(">I", n))


def amf_strict(items):
    return b"\x0a" + struct.pack(">I", len(items)) + b"".join(items)


connect = (amf_str("connect") + amf_num(1) + amf_obj([
    ("app", amf_str("live")),
    ("type", amf_str("nonprivate")),
    ("flashVer", amf_str("FMLE/3.0 (compatible; FMSc/1.0)")),
    ("tcUrl", amf_str("rtmp://127.0.0.1:1935/live")),
    ("fpad", amf_bool(False)),
    ("capabilities", amf_num(15)),
    ("videoCodecs", amf_num(252)),
    ("objectEncoding", amf_num(0)),
]))
publish = amf_str("publish") + amf_num(5) + b"\x05" + amf_str("show") + amf_str("live")
metadata = amf_str("@setDataFrame") + amf_str("onMetaData") + amf_ecma([
    ("duration", amf_num(0)),
    ("width", amf_num(1920)),
    ("height", amf_num(1080)),
    ("videocodecid", amf_num(7)),
    ("encoder", amf_str("Lavf60.16.100")),
    ("stereo", amf_bool(True)),
], count=0)
misc = (amf_strict([amf_num(1), b"\x05", b"\x06", amf_strict([])]) +
        b"\x0b" + struct.pack(">d", 1.6e12) + b"\x00\x00" +
        b"\x0c" + struct.pack(">I", 5) + b"hello")
nested = b""
for _ in range(AMF_DEPTH := 15):
    nested += b"\x03" + amf_key("a")
nested += b"\x05" + b"\x00\x00\x09" * AMF_DEPTH

write("amf", "connect", connect)
write("amf", "publish", publish)
write("amf", "metadata", metadata)
write("amf", "misc", misc)
write("amf", "nested", nested)
# past the caps: 20 nested strict arrays (depth), 4100 nulls in one array (nodes)
write("amf", "too_deep", b"\x0a\x00\x00\x00\x01" * 19 + b"\x0a\x00\x00\x00\x00")
write("amf", "too_many", b"\x0a" + struct.pack(">I", 4100) + b"\x05" * 4100)
# node cap reached by nesting: [[4093 nulls], null, null] and {a: [4094 nulls], b: null}
write("amf", "too_many_items",
      amf_strict([amf_strict([b"\x05"] * 4093), b"\x05", b"\x05"]))
write("amf", "too_many_props",
      amf_obj([("a", amf_strict([b"\x05"] * 4094)), ("b", b"\x05")]))

# ---- chunk stream ----------------------------------------------------------

def basic(fmt, csid):
    if csid < 64:
        return bytes([fmt << 6 | csid])
    if csid < 320:
        return bytes([fmt << 6, csid - 64])
    return bytes([fmt << 6 | 1, (csid - 64) & 0xFF, (csid - 64) >> 8])


def chunks(csid, mtype, sid, ts, payload, chunk_size=128):
    ext = ts >= 0xFFFFFF
    field = 0xFFFFFF if ext else ts
    out = basic(0, csid) + field.to_bytes(3, "big") + len(payload).to_bytes(3, "big")
    out += bytes([mtype]) + struct.pack("<I", sid)
    if ext:
        out += struct.pack(">I", ts)
    for off in range(0, max(len(payload), 1), chunk_size):
        if off:
            out += basic(3, csid) + (struct.pack(">I", ts) if ext else b"")
        out += payload[off:off + chunk_size]
    return out


video = bytes([0x17, 1, 0, 0, 0x21]) + bytes(range(256)) * 2
write("chunk", "connect", b"\x00" + chunks(3, 20, 0, 0, connect))
write("chunk", "set_chunk_size",
      b"\x05" + chunks(2, 1, 0, 0, struct.pack(">I", 4096)) +
      chunks(6, 9, 1, 40, video, 4096) + chunks(4, 8, 1, 41, b"\xaf\x01" + b"\x21" * 20, 4096))
# a type 3 chunk starting a new message repeats the extended field: delta 0x10
type3_new = b"".join(basic(3, 6) + struct.pack(">I", 0x10) + video[off:off + 128]
                     for off in range(0, len(video), 128))
write("chunk", "ext_timestamp", b"\x01" + chunks(6, 9, 1, 0x01000000, video) + type3_new)
write("chunk", "csid_forms",
      b"\x10" + chunks(74, 9, 1, 16, video[:200]) + chunks(64 + 0x1234, 8, 1, 32, b"wxyz") +
      chunks(65599, 18, 1, 7, metadata))
fmts = bytes.fromhex(
    "04 0003e8 000003 09 01000000 aabbcc"
    "44 000014 000002 08 ddee"
    "84 00001e 1122"
    "c4 3344")
abort = (chunks(4, 9, 1, 1, video)[:140] + chunks(2, 2, 0, 0, struct.pack(">I", 4)) +
         chunks(4, 9, 1, 9, b"\xab\xcd"))
write("chunk", "fmt_0123", b"\x02" + fmts)
write("chunk", "abort", b"\x03" + abort)

# ---- handshake -------------------------------------------------------------

def digest_pos(b, base):
    return sum(b[base:base + 4]) % 728 + base + 4


def make_c1(schema_base=None, seed=1):
    c1 = bytearray(hashlib.sha256(bytes([seed])).digest() * 48)
    c1[0:8] = b"\0\0\0\0" + (b"\x09\x00\x7c\x02" if schema_base else b"\0\0\0\0")
    if schema_base:
        pos = digest_pos(c1, schema_base)
        msg = bytes(c1[:pos] + c1[pos + 32:])
        c1[pos:pos + 32] = hmac.new(FP_KEY, msg, hashlib.sha256).digest()
    return bytes(c1)


c2 = bytes(1536)
write("handshake", "plain", b"\x00" + b"\x03" + make_c1() + c2 + b"\x02\x00")
write("handshake", "digest8", b"\x07" + b"\x03" + make_c1(8, 2) + c2)
write("handshake", "digest772", b"\xff" + b"\x03" + make_c1(772, 3) + c2)
write("handshake", "rtmpe", b"\x00\x06" + make_c1(8, 4))
write("handshake", "c0c1_only", b"\x01\x03" + make_c1(8, 5))

# ---- FLV (byte 0 % 3: 0 video, 1 audio, 2 timestamp unwrap) ---------------

write("flv", "avc_seq", b"\x00" + bytes.fromhex("1700000000 01640028ffe1"))
write("flv", "avc_nalu_neg_cts", b"\x00" + bytes.fromhex("2701ffffdf 0000000141"))
write("flv", "hvc1_coded", b"\x00" + b"\x91hvc1" + bytes.fromhex("000021 aabb"))
write("flv", "av01_seq", b"\x00" + b"\x90av01" + b"\x81\x00")
write("flv", "aac_seq", b"\x01" + bytes.fromhex("af00 1210"))
write("flv", "mp3", b"\x01" + bytes.fromhex("2fff fb"))
write("flv", "ts_wraps", b"\x02" + b"".join(struct.pack(">I", t) for t in (
    0xFFFFFF00, 0xFFFFFFF0, 0x10, 0xFFFFFFF8, 0x20, 0x7FFFFF00, 0x100, 0x7FFFFFF0, 0x5)))


# ---- codec configurations (fuzz_codec: byte 0 even = avcC, odd = ASC) --------
# avcC records taken from ffmpeg/x264 output (baseline 320x240, high 1280x720
# with cropping, high 4:4:4); AudioSpecificConfigs for AAC-LC, HE-AAC with an
# explicit rate, and an escape object type.

CODEC_SEEDS = {
    "avcc_baseline_320x240": "00" "0142c00dffe100186742c00dd90141fb0110000003001000000303c0f142a4"
    "8001000568cb83cb20",
    "avcc_high_1280x720": "00" "0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f1"
    "83196001000668ebe3cb22c0fdf8f800",
    "avcc_high444_176x144": "00" "01f4000bffe1001967f4000b919b28589d8088000003000800000301e078a1"
    "4cb001000668ebe3c44844fff8f800",
    "asc_lc_44k1_mono_ffmpeg": "01" "120856e500",
    "asc_lc_48k_stereo": "01" "1190",
    "asc_he_explicit_rate": "01" "2f8bb80010",
    "asc_escape_aot": "01" "f8c8",
}


def codec_seeds():
    for name, hexstr in CODEC_SEEDS.items():
        write("codec", name, bytes.fromhex(hexstr))


codec_seeds()


# ---- segmenter frame scripts (fuzz_segmenter.c documents the ops) ------------
# Header byte: bits 0-1 segment length (300/1000/2000/6000 ms), bits 2-3 part
# length (none/100/200/333 ms), bits 4-6 window - 2.

VCFG_HIGH, VCFG_BASE = b"\x80", b"\xc0"


def acfg(k):
    return bytes([0x81 | k << 5])


def burst(count, gop_sel=3):
    return bytes([0x07 | gop_sel << 3, count])


def video(delta, key=False, cts=0, size=16, wide=False):
    op = 0x02 | (0x08 if key else 0) | (0x10 if wide else 0)
    d = struct.pack("<i", delta) if wide else struct.pack("<h", delta)
    return bytes([op]) + d + struct.pack("<b", cts) + bytes([size])


def audio(delta=None, size=16):
    if delta is None:
        return bytes([0x03, size])
    return bytes([0x0b]) + struct.pack("<h", delta) + bytes([size])


def meta(flags=3, fps=30, kbps=50):
    return bytes([0x04, flags, fps, kbps])


def segmenter_seeds():
    av = VCFG_HIGH + acfg(0) + meta()
    write("segmenter", "av_ll_1s_100ms", b"\x15" + av + burst(200) + burst(200))
    write("segmenter", "av_2s_no_parts", b"\x02" + av + burst(250) + burst(250))
    write("segmenter", "av_6s_333ms_gop9", b"\x3f" + av + burst(250, 1) * 3)
    write("segmenter", "audio_only_ll", b"\x05" + acfg(1) + meta(2) + audio(size=20) * 300)
    write("segmenter", "video_only_cts_jumps", b"\x09" + VCFG_BASE + b"".join(
        video(33, key=i % 15 == 0, cts=(i % 3) * 10, size=8) for i in range(90)) +
        video(-5000, key=True) + video(33) + video(100000, key=True, wide=True) +
        b"".join(video(33, key=i % 15 == 0) for i in range(60)) + video(0) + video(0, key=True))
    write("segmenter", "reconnect", b"\x15" + av + burst(100) + b"\x06" + av + burst(100) +
          b"\x06" + b"\x06" + VCFG_HIGH + burst(60))
    write("segmenter", "reload_timing", b"\x14" + av + burst(100) + b"\x05\x23" + burst(200) +
          b"\x05\x00" + burst(100))
    write("segmenter", "frames_before_config", b"\x15" + audio() * 5 + video(33, key=True) * 3 +
          VCFG_HIGH + burst(40) + acfg(0) + burst(60) + VCFG_BASE + burst(40))
    write("segmenter", "audio_waits_for_video", b"\x15" + VCFG_HIGH + acfg(0) + meta() +
          audio(size=8) * 150 + burst(60))
    write("segmenter", "raw_config_bytes", b"\x15" + b"\x00\x05\x01\x64\x00\x1f\xff" +
          b"\x01\x02\x12\x10" + burst(30))


segmenter_seeds()
