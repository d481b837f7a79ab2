"""Signed playback links: a stream with `playback: signed` plays from a link made
by `onair sign` (player page, playlists, segments; ffmpeg decodes it), every
URI in its playlists carries the signature, and expired, tampered, missing and
wrong-stream signatures get 403 while a public stream plays without one."""
import hashlib
import hmac
import re
import subprocess
import time

from onair_test import Server, check, ffmpeg_publish, run, wait_for

SECRET = "test-signing-secret-0123456789"
YAML = ("publish: keys\n"
        "streams:\n"
        "  - name: private\n"
        "    key: \"private-key-1234\"\n"
        "    playback: signed\n"
        "  - name: open\n"
        "    key: \"open-key-123456\"\n")


def link_for(name, exp):
    sig = hmac.new(SECRET.encode(), ("%s\n%d" % (name, exp)).encode(), hashlib.sha256).hexdigest()
    return "exp=%d&sig=%s" % (exp, sig)


def uris(playlist):
    """Every URI a playlist lists: plain lines and URI="..." attributes."""
    out = []
    for line in playlist.splitlines():
        if line and not line.startswith("#"):
            out.append(line)
        out += re.findall(r'URI="([^"]+)"', line)
    return out


def main(binary):
    srv = Server(binary, config={"http": {"signing_secret": SECRET}}, extra_yaml=YAML)
    pubs = []
    try:
        pubs.append(ffmpeg_publish(srv.rtmp_url("private-key-1234"), 30))
        pubs.append(ffmpeg_publish(srv.rtmp_url("open-key-123456"), 30))

        # The CLI's link (only the path; stderr tells the expiry).
        r = subprocess.run([binary, "--config", srv.config_path, "sign", "private", "--ttl", "2h"],
                           capture_output=True, text=True, timeout=10)
        check(r.returncode == 0, "onair sign failed: %s" % r.stderr)
        link = r.stdout.strip()
        m = re.fullmatch(r"/live/private/\?exp=(\d+)&sig=([0-9a-f]{64})", link)
        check(m, "onair sign printed %r" % link)
        check(abs(int(m.group(1)) - (time.time() + 7200)) < 60, "--ttl 2h not honoured: %s" % link)
        check(m.group(0).split("?")[1] == link_for("private", int(m.group(1))),
              "the CLI's signature is not HMAC-SHA256(secret, name \\n exp)")
        q = link.split("?")[1]
        bad = subprocess.run([binary, "--config", srv.config_path, "sign", "private", "--ttl",
                              "soon"], capture_output=True, text=True, timeout=10)
        check(bad.returncode == 2 and "--ttl" in bad.stderr, "bad --ttl accepted: %r" % bad.stderr)

        # Valid: the page and the playlists, with the signature on every URI.
        status, _, page = srv.get(link)
        check(status == 200 and b"index.m3u8" in page, "signed player page: %d" % status)
        wait_for(lambda: srv.get("/live/private/index.m3u8?" + q)[0] == 200, 20,
                 "the signed multivariant playlist")
        status, hdr, body = srv.get("/live/private/index.m3u8?" + q,
                                    headers={"Accept-Encoding": "gzip"})
        check("content-encoding" not in hdr and "etag" not in hdr, "signed playlist headers %r" % hdr)
        master = body.decode()
        check(uris(master) and all(u.endswith("?" + q) for u in uris(master)),
              "multivariant URIs without the signature:\n" + master)
        media_uri = "/live/private/" + uris(master)[0]
        wait_for(lambda: "seg-" in srv.get(media_uri)[2].decode(), 20, "a signed segment")
        media = srv.get(media_uri)[2].decode()
        listed = uris(media)
        check(any(u.startswith("seg-") for u in listed) and any(u.startswith("init-") for u in listed),
              "media playlist lists no segment/init:\n" + media)
        for u in listed:
            check(u.endswith("?" + q), "URI %s in a signed playlist lacks the signature:\n%s" % (u, media))
        seg = [u for u in listed if u.startswith("seg-")][0]
        status, hdr, data = srv.get("/live/private/" + seg)
        check(status == 200 and len(data) > 1000 and "immutable" in hdr.get("cache-control", ""),
              "signed segment: %d %r" % (status, hdr))

        # ffmpeg plays the signed link unchanged (every URI it follows carries the signature).
        r = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-i",
                            srv.url("/live/private/index.m3u8?" + q), "-t", "3", "-f", "null", "-"],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 0 and "403" not in r.stderr, "ffmpeg over the signed link: %s" % r.stderr[-800:])

        # 403: missing, expired, tampered, wrong stream; on the page, playlists and segments.
        expired = link_for("private", int(time.time()) - 10)
        sig = m.group(2)
        tampered = "exp=%s&sig=%s" % (m.group(1), ("0" if sig[0] != "0" else "1") + sig[1:])
        later = "exp=%d&sig=%s" % (int(m.group(1)) + 1, sig)
        wrong_stream = link_for("open", int(time.time()) + 3600)
        for what, query in (("missing", ""), ("expired", expired), ("tampered", tampered),
                            ("exp moved", later), ("wrong stream", wrong_stream),
                            ("only exp", "exp=" + m.group(1))):
            for path in ("/live/private/", "/live/private/index.m3u8", media_uri.split("?")[0],
                         "/live/private/" + seg.split("?")[0]):
                status, _, body = srv.get(path + ("?" + query if query else ""))
                check(status == 403, "%s signature on %s: %d, not 403" % (what, path, status))
                check(SECRET.encode() not in body, "the secret in a response")

        # A public stream needs no signature.
        wait_for(lambda: srv.get("/live/open/index.m3u8")[0] == 200, 20, "the public playlist")
        check("?" not in srv.get("/live/open/index.m3u8")[2].decode(), "public playlist rewritten")

        log = srv.logtext()
        for secret in (SECRET, sig, "private-key-1234"):
            check(secret not in log, "a secret or signature appears in the log")
    finally:
        for p in pubs:
            p.kill()
            p.wait()
        srv.stop()

    # A signed stream without a secret is a config error.
    path = srv.config_path + ".nosecret"
    with open(path, "w") as f:
        f.write(YAML)
    r = subprocess.run([binary, "--check-config", path], capture_output=True, text=True, timeout=10)
    check(r.returncode == 1 and "playback: signed needs http.signing_secret" in r.stderr,
          "signed stream without a secret accepted: %r" % r.stderr)


if __name__ == "__main__":
    run(main)
