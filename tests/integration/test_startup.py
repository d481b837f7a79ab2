"""Start-up failure paths: each port in use, an unresolvable listen host, an
unreadable hls.min.js or config file, too low an open-file limit. Every one
must exit with status 1 and a clear message, without a crash or a sanitizer
report. A SIGHUP during start-up must not kill the server."""
import os
import resource
import signal
import socket
import subprocess
import tempfile
import time

from onair_test import SANITIZER_MARKS, check, run, wait_for


def write_config(d, text):
    path = os.path.join(d, "onair.yaml")
    with open(path, "w") as f:
        f.write(text)
    return path


def expect_failure(binary, d, text, words, nofile=None):
    """Starts onair on config TEXT; asserts exit 1 and that stderr names WORDS."""
    def limit():
        if nofile:
            resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))

    path = write_config(d, text)
    r = subprocess.run([binary, "--config", path], capture_output=True, text=True, timeout=30,
                       preexec_fn=limit)
    what = "%r (nofile %s)" % (text, nofile)
    check(r.returncode == 1, "%s: exit %s, want 1:\n%s" % (what, r.returncode, r.stderr))
    for mark in SANITIZER_MARKS:
        check(mark not in r.stderr, "%s: sanitizer report:\n%s" % (what, r.stderr))
    for w in words:
        check(w in r.stderr, "%s: message should name %r:\n%s" % (what, w, r.stderr))


def main(binary):
    d = tempfile.mkdtemp(prefix="onair-startup-")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    free = 'listen: "127.0.0.1:0"'
    busy = 'listen: "127.0.0.1:%d"' % port

    expect_failure(binary, d, "rtmp:\n  %s\nhttp:\n  %s\n" % (busy, free),
                   ["rtmp", "127.0.0.1:%d" % port, "Address already in use", "start-up failed"])
    expect_failure(binary, d, "rtmp:\n  %s\nhttp:\n  %s\n" % (free, busy),
                   ["http", "127.0.0.1:%d" % port, "Address already in use", "start-up failed"])
    expect_failure(binary, d, 'rtmp:\n  listen: "no-such-host.invalid:1935"\nhttp:\n  %s\n' % free,
                   ["cannot resolve 'no-such-host.invalid'", "start-up failed"])
    expect_failure(binary, d, 'rtmp:\n  %s\nhttp:\n  listen: "no-such-host.invalid:0"\n' % free,
                   ["no-such-host.invalid", "start-up failed"])
    expect_failure(binary, d, 'rtmp:\n  %s\nhttp:\n  %s\n  player_js: "%s"\n'
                   % (free, free, os.path.join(d, "missing.js")),
                   ["http.player_js", "missing.js", "start-up failed"])
    # A directory where the config file should be: unreadable as a file.
    r = subprocess.run([binary, "--config", d], capture_output=True, text=True, timeout=30)
    check(r.returncode == 1 and d in r.stderr, "config directory: %s %r" % (r.returncode, r.stderr))
    for nofile in (8, 40):
        expect_failure(binary, d, "rtmp:\n  %s\nhttp:\n  %s\n" % (free, free),
                       ["open-file limit is %d" % nofile], nofile=nofile)
    taken.close()

    # A tight but workable open-file limit: both budgets stay usable.
    path = write_config(d, "rtmp:\n  %s\nhttp:\n  %s\n" % (free, free))
    p = subprocess.Popen([binary, "--config", path], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True,
                         preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024)))
    try:
        # SIGHUP as soon as the process logs anything: start-up is under way.
        first = p.stderr.readline()
        p.send_signal(signal.SIGHUP)
        lines = [first]
        while "ready:" not in lines[-1]:
            line = p.stderr.readline()
            if not line:
                check(False, "onair died during start-up after SIGHUP (%s):\n%s"
                      % (p.wait(), "".join(lines)))
            lines.append(line)
        text = "".join(lines)
        check("open-file limit 1024: up to 246 RTMP (64 not yet publishing)" in text and "738 HTTP" in text
              and "leaves room for" in text, "budgets for 1024 descriptors:\n" + text)
        p.send_signal(signal.SIGTERM)
        rest = p.stderr.read()
        check(p.wait(timeout=20) == 0, "exit after SIGTERM: %s\n%s" % (p.returncode, rest))
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


if __name__ == "__main__":
    run(main)
