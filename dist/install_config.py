#!/usr/bin/env python3
"""meson install script: puts onair.yaml next to the example on a first install.

The installed onair.yaml is the example (built-in defaults) with the pid file
the systemd unit expects, so `onair --reload` works out of the box. An existing
onair.yaml is the admin's and is never touched.
"""
import os
import sys

example, confdir = sys.argv[1], sys.argv[2]
dest = os.environ.get("DESTDIR", "")
target_dir = dest + confdir if dest else confdir
target = os.path.join(target_dir, "onair.yaml")
if os.path.exists(target):
    print("onair: keeping the existing %s" % target)
    sys.exit(0)
with open(example) as f:
    text = f.read()
text = text.replace('  pid_file: ""', '  pid_file: "/run/onair/onair.pid"', 1)
os.makedirs(target_dir, exist_ok=True)
with open(target, "w") as f:
    f.write(text)
os.chmod(target, 0o644)
print("onair: installed %s" % target)
