"""Shared helpers for onair's integration tests.

Each test starts the real build/onair binary on loopback with a temporary YAML
config (port 0: the server picks free ports and logs them), publishes with
real clients (ffmpeg, GStreamer) and reads over real HTTP. Standard library only.
"""
import http.client
import os
import re
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


class Failure(Exception):
    pass


# AMF0 values for the raw RTMP clients of the tests

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
        body = data[pos + 11:pos + 11 + size]
        if t in (8, 9):
            tags.append((t, ts, body))
        pos += 11 + size + 4
    return tags


def check(cond, msg):
    """Assert that survives python -O, with a message."""
    if not cond:
        raise Failure(msg)


def wait_for(fn, timeout, what, interval=0.1):
    """Polls fn() until it returns a truthy value; returns it or raises."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except (OSError, http.client.HTTPException) as e:
            last_exc = e
        time.sleep(interval)
    raise Failure("timed out after %.0f s waiting for %s (%s)" % (timeout, what, last_exc))


class Server:
    """The real onair binary with a temporary config."""

    def __init__(self, binary, config=None, extra_yaml=""):
        """CONFIG: {section: {key: value}} over the test defaults; EXTRA_YAML: appended as is."""
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="onair-it-")
        self.config_path = os.path.join(self.dir, "onair.yaml")
        cfg = {
            "rtmp": {"listen": "127.0.0.1:0"},
            "http": {"listen": "127.0.0.1:0"},
            "admin": {"listen": "127.0.0.1:0"},
            # Most tests want a stream to end when its publisher leaves; the
            # reconnect tests set a grace.
            "hls": {"segment_seconds": 2, "window_segments": 6, "reconnect_grace_seconds": 0},
        }
        for section, values in (config or {}).items():
            cfg.setdefault(section, {}).update(values)
        with open(self.config_path, "w") as f:
            for section, values in cfg.items():
                f.write("%s:\n" % section)
                for k, v in values.items():
                    f.write('  %s: %s\n' % (k, '"%s"' % v if isinstance(v, str) else v))
            f.write(extra_yaml)
        self.log = []
        self.lock = threading.Lock()
        self.proc = subprocess.Popen([binary, "--config", self.config_path],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, errors="replace")
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        m = wait_for(self._ready, 15, "onair to start")
        self.rtmp_port, self.http_port = int(m.group(1)), int(m.group(2))
        self.rtmps_port = int(m.group(3)) if m.group(3) else None

    def _read(self):
        for line in self.proc.stderr:
            with self.lock:
                self.log.append(line.rstrip("\n"))
            if os.environ.get("ONAIR_TEST_VERBOSE"):
                sys.stderr.write("onair| " + line)

    def _ready(self):
        if self.proc.poll() is not None:
            raise Failure("onair exited early (%s):\n%s" % (self.proc.returncode, self.logtext()))
        with self.lock:
            for line in self.log:
                m = re.search(r"ready: rtmp port (\d+), http port (\d+)(?:, rtmps port (\d+))?",
                              line)
                if m:
                    return m
        return None

    def logtext(self):
        with self.lock:
            return "\n".join(self.log)

    def alive(self):
        return self.proc.poll() is None

    def rtmp_url(self, name, app="live"):
        return "rtmp://127.0.0.1:%d/%s/%s" % (self.rtmp_port, app, name)

    def rtmps_url(self, name, app="live"):
        return "rtmps://127.0.0.1:%d/%s/%s" % (self.rtmps_port, app, name)

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def admin_port(self):
        """The admin API's port (admin.listen 127.0.0.1:0 picks one), from the log."""
        m = wait_for(lambda: re.search(r"admin API on \S+ \(port (\d+)\)", self.logtext()), 10,
                     "the admin port in the log")
        return int(m.group(1))

    def get(self, path, method="GET", headers=None, port=None):
        """One request on a fresh connection: (status, headers dict lowercased, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", port or self.http_port, timeout=10)
        try:
            conn.request(method, path, headers=headers or {})
            r = conn.getresponse()
            body = r.read()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, body
        finally:
            conn.close()

    def stop(self):
        """SIGTERM and wait; raises if the exit was unclean or a sanitizer spoke."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise Failure("onair did not stop on SIGTERM:\n" + self.logtext()[-4000:])
        self.reader.join(timeout=5)
        text = self.logtext()
        for mark in SANITIZER_MARKS:
            check(mark not in text, "sanitizer report in the server log:\n" + text[-6000:])
        check(self.proc.returncode == 0,
              "onair exited with %s:\n%s" % (self.proc.returncode, text[-4000:]))


def ffmpeg_publish(url, seconds, size="640x360", rate=30, gop=None, audio=True, video=True,
                   extra=(), realtime=True):
    """Starts ffmpeg publishing a generated H.264 (B-frames) + AAC stream; returns the Popen."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error"]
    if realtime:
        cmd += ["-re"]
    if video:
        cmd += ["-f", "lavfi", "-i", "testsrc2=size=%s:rate=%d" % (size, rate)]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    cmd += ["-t", str(seconds)]
    if video:
        cmd += ["-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", str(gop or rate),
                "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac", "-b:a", "96k"]
    cmd += list(extra) + ["-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def parse_media_playlist(text):
    """Returns (tags dict of first values, list of (duration, uri), map uris)."""
    tags, segs, maps = {}, [], []
    dur = None
    for line in text.splitlines():
        if line.startswith("#EXTINF:"):
            dur = float(line[8:].split(",")[0])
        elif line.startswith("#EXT-X-MAP:"):
            maps.append(re.search(r'URI="([^"]+)"', line).group(1))
        elif line.startswith("#"):
            k, _, v = line.partition(":")
            tags.setdefault(k, v)
        elif line.strip():
            segs.append((dur, line.strip()))
    return tags, segs, maps


def media_playlist_path(server, name):
    """Fetches the multivariant playlist and returns the media playlist path it names."""
    status, _, body = server.get("/live/%s/index.m3u8" % name)
    if status != 200:
        return None
    uris = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
    return "/live/%s/%s" % (name, uris[0]) if uris else None


def run(main):
    """Runs main(binary) and maps Failure to exit code 1 with a message."""
    binary = sys.argv[1] if len(sys.argv) > 1 else "build/onair"
    try:
        main(binary)
    except Failure as e:
        print("FAIL:", e, file=sys.stderr)
        sys.exit(1)
    print("PASS")


def make_flv(path, seconds, size="320x240", rate=30, gop=None):
    """Encodes a test FLV once (H.264 with B-frames + AAC) for copy-publishing."""
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y",
                    "-f", "lavfi", "-i", "testsrc2=size=%s:rate=%d" % (size, rate),
                    "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-bf", "2",
                    "-g", str(gop or rate), "-pix_fmt", "yuv420p", "-c:a", "aac",
                    "-f", "flv", path], check=True)


def ffmpeg_publish_file(path, url, realtime=True):
    """Publishes an FLV file without re-encoding; returns the Popen."""
    cmd = ["ffmpeg", "-nostdin", "-v", "error"] + (["-re"] if realtime else [])
    cmd += ["-i", path, "-c", "copy", "-f", "flv", url]
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def free_port():
    """A loopback TCP port free right now (for settings that must name a real port,
    e.g. the RTMP address the front page shows)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_certs(d, cn="127.0.0.1", ca=None, prefix="leaf"):
    """With the openssl CLI: a CA (made here unless CA=(ca.pem, ca.key) is given) and a
    leaf for IP 127.0.0.1 signed by it, subject CN=CN. Returns (ca.pem, leaf.pem, leaf.key);
    leaf.pem is the full chain (leaf then CA)."""
    def ossl(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    if ca is None:
        ca = (os.path.join(d, "ca.pem"), os.path.join(d, "ca.key"))
        ossl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca[1], "-out", ca[0],
             "-days", "2", "-subj", "/CN=onair test CA")
    key, csr, crt, only = (os.path.join(d, prefix + ext) for ext in
                           (".key", ".csr", ".pem", ".only.pem"))
    ossl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj", "/CN=" + cn)
    ext = os.path.join(d, prefix + ".ext")
    with open(ext, "w") as f:
        f.write("subjectAltName=IP:127.0.0.1\n")
    ossl("x509", "-req", "-in", csr, "-CA", ca[0], "-CAkey", ca[1], "-CAcreateserial",
         "-out", only, "-days", "2", "-extfile", ext)
    with open(crt, "w") as out:
        for part in (only, ca[0]):
            with open(part) as f:
                out.write(f.read())
    return ca[0], crt, key


def s_client(port, *args):
    """openssl s_client to 127.0.0.1:PORT with ARGS; returns (exit code, stdout + stderr)."""
    r = subprocess.run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port] + list(args),
                       input="", capture_output=True, text=True, timeout=30)
    return r.returncode, r.stdout + r.stderr


def served_cert(port, ca):
    """(subject, serial) of the certificate a TLS server on PORT presents (verified with CA)."""
    rc, out = s_client(port, "-CAfile", ca, "-verify_return_error")
    check(rc == 0, "s_client to port %d: %s" % (port, out[-1500:]))
    pem = out[out.index("-----BEGIN CERTIFICATE-----"):out.index("-----END CERTIFICATE-----") + 25]
    r = subprocess.run(["openssl", "x509", "-noout", "-subject", "-serial"], input=pem,
                       capture_output=True, text=True, timeout=30, check=True)
    f = dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)
    return f.get("subject", "").strip(), f.get("serial", "").strip()
