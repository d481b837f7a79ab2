"""Shared helpers for onair's integration tests.

Each test starts the real build/onair binary on loopback with a temporary YAML
config (port 0: the server picks free ports and logs them), publishes with
real clients (ffmpeg, GStreamer) and reads over real HTTP. Standard library only.
"""
import http.client
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time

SANITIZER_MARKS = ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer")


class Failure(Exception):
    pass


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
            "hls": {"segment_seconds": 2, "window_segments": 6},
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
                m = re.search(r"ready: rtmp port (\d+), http port (\d+)", line)
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

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.http_port, path)

    def get(self, path, method="GET", headers=None):
        """One request on a fresh connection: (status, headers dict lowercased, body)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=10)
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
