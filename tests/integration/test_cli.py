"""The command line contract: --version, --help, --check-config (exit 0 for a
valid file, non-zero with FILE:LINE:COL: message for a bad one), a bad config
refuses to start, and SIGHUP with a broken file keeps the server running."""
import os
import re
import signal
import subprocess
import tempfile
import time

from onair_test import Server, check, run


def onair(binary, *args):
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=20)


def main(binary):
    r = onair(binary, "--version")
    check(r.returncode == 0 and re.match(r"onair \d+\.\d+\.\d+", r.stdout), "--version: %r" % r.stdout)
    r = onair(binary, "--help")
    check(r.returncode == 0 and "--check-config" in r.stdout, "--help: %r" % r.stdout)
    r = onair(binary, "--bogus")
    check(r.returncode != 0, "an unknown option must fail")

    d = tempfile.mkdtemp(prefix="onair-cli-")
    good = os.path.join(d, "good.yaml")
    with open(good, "w") as f:
        f.write("rtmp:\n  listen: \"127.0.0.1:1935\"\nhls:\n  segment_seconds: 4\n")
    r = onair(binary, "--check-config", good)
    check(r.returncode == 0, "valid config rejected: %s" % r.stderr)

    here = os.path.dirname(os.path.abspath(__file__))
    example = os.path.join(here, "..", "..", "config", "onair.example.yaml")
    r = onair(binary, "--check-config", example)
    check(r.returncode == 0, "the shipped example is rejected: %s" % r.stderr)

    cases = [
        ("hls:\n  window_segments: 1000\n", 2, 20, "window_segments"),
        ("hls:\n  segmnt_seconds: 2\n", 2, 3, "segmnt_seconds"),
        ("http:\n  listen: \"nonsense\"\n", 2, 11, "listen"),
        ("rtmp: [\n", 2, 1, ""),
    ]
    for text, line, col, word in cases:
        bad = os.path.join(d, "bad.yaml")
        with open(bad, "w") as f:
            f.write(text)
        r = onair(binary, "--check-config", bad)
        prefix = "%s:%d:%d: " % (bad, line, col)
        check(r.returncode != 0, "bad config accepted: %r" % text)
        check(r.stderr.startswith(prefix) and word in r.stderr,
              "expected %r... naming %r, got %r" % (prefix, word, r.stderr))
        r = onair(binary, "--config", bad)
        check(r.returncode != 0 and r.stderr.startswith(prefix), "server started on a bad config")

    # Five different mistakes: five messages in file order, then a count; exit 1.
    five = os.path.join(d, "five.yaml")
    with open(five, "w") as f:
        f.write("rtmp:\n"
                "  max_conections: 10\n"
                "http:\n"
                "  listen: \"localhost\"\n"
                "  threads: many\n"
                "hls:\n"
                "  segment_seconds: 45s\n"
                "streams:\n"
                "  - name: show\n"
                "    key: abcdefgh1\n"
                "  - name: show\n"
                "    key: abcdefgh2\n")
    r = onair(binary, "--check-config", five)
    lines = r.stderr.splitlines()
    check(r.returncode == 1, "five mistakes: exit %s" % r.returncode)
    want = ["%s:2:3: unknown key 'rtmp.max_conections'" % five,
            "%s:4:11: http.listen: 'localhost' is not a listen address" % five,
            "%s:5:12: http.threads: expected an integer" % five,
            "%s:7:20: hls.segment_seconds: must be from 500ms to 30s, got 45s" % five,
            "%s:11:11: streams: duplicate stream name 'show' (first at line 9)" % five,
            "%s: 5 errors" % five]
    check(len(lines) == len(want) and all(l.startswith(w) for l, w in zip(lines, want)),
          "five mistakes, expected\n%s\ngot\n%s" % ("\n".join(want), r.stderr))
    check("abcdefgh" not in r.stderr, "a stream key appears in the output")
    r = onair(binary, "--config", five)
    check(r.returncode != 0 and r.stderr.count("\n") == 6 and "start-up failed" in r.stderr,
          "start-up must list every error and refuse: %r" % r.stderr)

    r = onair(binary, "--config-reference")
    check(r.returncode == 0 and "| `hls.segment_seconds` | `2s` |" in r.stdout,
          "--config-reference: %r" % r.stdout[:300])

    r = onair(binary, "--check-config", os.path.join(d, "missing.yaml"))
    check(r.returncode != 0 and "missing.yaml" in r.stderr, "missing file: %r" % r.stderr)

    # SIGHUP with a now-broken file: logged, server keeps serving.
    srv = Server(binary)
    try:
        with open(srv.config_path, "a") as f:
            f.write("bogus: 1\n")
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(0.5)
        check(srv.alive() and srv.get("/healthz")[0] == 200, "server died on SIGHUP")
        check("keeping the running configuration" in srv.logtext(), "SIGHUP error not logged")
    finally:
        srv.stop()


if __name__ == "__main__":
    run(main)
