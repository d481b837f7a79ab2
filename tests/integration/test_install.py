"""`meson install --destdir`: the installed tree holds the binary, the example
config (and onair.yaml on a first install), hls.js and a systemd unit; the
installed binary, run from elsewhere with no environment hints, serves the
player page and hls.js from its own prefix."""
import os
import shutil
import subprocess
import sys
import tempfile

import onair_test
from onair_test import Server, check, run


def find(root, name):
    for d, _, files in os.walk(root):
        if name in files:
            return os.path.join(d, name)
    return None


def main(build_dir):
    dest = tempfile.mkdtemp(prefix="onair-install-")
    try:
        r = subprocess.run(["meson", "install", "-C", build_dir, "--destdir", dest,
                            "--no-rebuild", "--quiet"], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0, "meson install failed:\n%s%s" % (r.stdout, r.stderr))
        binary = find(dest, "onair")
        hlsjs = find(dest, "hls.min.js")
        unit = find(dest, "onair.service")
        example = find(dest, "onair.example.yaml")
        conf = find(dest, "onair.yaml")
        check(all((binary, hlsjs, unit, example, conf)),
              "installed tree incomplete: %s" % [binary, hlsjs, unit, example, conf])
        check(os.access(binary, os.X_OK), "onair is not executable")
        check(os.path.dirname(os.path.dirname(binary)) ==
              os.path.dirname(os.path.dirname(os.path.dirname(hlsjs))),
              "bin/ and share/onair/ are not under one prefix: %s %s" % (binary, hlsjs))

        text = open(unit).read()
        prefix = os.path.dirname(os.path.dirname(binary))[len(dest):]
        for want in ("ExecStartPre=%s/bin/onair --check-config " % prefix,
                     "ExecStart=%s/bin/onair --config " % prefix,
                     "ExecReload=%s/bin/onair --reload --config " % prefix,
                     "Restart=on-failure", "DynamicUser=yes", "RuntimeDirectory=onair",
                     "AmbientCapabilities=CAP_NET_BIND_SERVICE"):
            check(want in text, "unit lacks %r:\n%s" % (want, text))
        check("@" not in text.replace("@0@", ""), "unsubstituted variable in the unit:\n" + text)

        # The installed configs validate with the installed binary.
        for path in (example, conf):
            r = subprocess.run([binary, "--check-config", path], capture_output=True, text=True)
            check(r.returncode == 0, "installed %s rejected: %s" % (path, r.stderr))
        check('pid_file: "/run/onair/onair.pid"' in open(conf).read(),
              "onair.yaml does not set the unit's pid file")
        # A second install keeps the admin's onair.yaml.
        with open(conf, "a") as f:
            f.write("# edited by the admin\n")
        r = subprocess.run(["meson", "install", "-C", build_dir, "--destdir", dest,
                            "--no-rebuild", "--quiet"], capture_output=True, text=True,
                           timeout=120)
        check(r.returncode == 0 and "edited by the admin" in open(conf).read(),
              "a reinstall overwrote onair.yaml")

        # Run the installed binary from an unrelated directory, without ONAIR_HLSJS.
        env = dict(os.environ)
        env.pop("ONAIR_HLSJS", None)
        cwd = os.getcwd()
        os.chdir(dest)
        old_env = os.environ.copy()
        os.environ.clear()
        os.environ.update(env)
        try:
            srv = Server(binary)
        finally:
            os.chdir(cwd)
            os.environ.clear()
            os.environ.update(old_env)
        try:
            status, hdrs, body = srv.get("/live/show/")
            check(status == 200 and b"/static/hls.min.js" in body, "player page: %s" % status)
            status, hdrs, body = srv.get("/static/hls.min.js")
            check(status == 200 and body == open(hlsjs, "rb").read(),
                  "hls.js not served from the prefix (%s)" % status)
            check("serving /static/hls.min.js from %s" % os.path.dirname(binary) in srv.logtext(),
                  "hls.js came from elsewhere:\n" + srv.logtext())
        finally:
            srv.stop()
    finally:
        shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    run(main)
