"""Stream keys (publish: keys): a wrong key is refused with an onStatus error
the client sees, the peer is logged, nothing is served and the key never
reaches the log; the right key publishes under the stream's public name."""
import time

from onair_test import Server, check, ffmpeg_publish, media_playlist_path, run, wait_for

RIGHT = "right-key-7Hq2"
WRONG = "wrong-key-9Zx4"
KEYS_YAML = ("publish: keys\n"
             "streams:\n"
             "  - name: townhall\n"
             "    key: \"%s\"\n"
             "  - name: backstage\n"
             # sha256("backstage-key-1"), so the file holds no secret for this one
             "    key_sha256: \"%s\"\n")


def sha256(text):
    import hashlib
    return hashlib.sha256(text.encode()).hexdigest()


def main(binary):
    srv = Server(binary, extra_yaml=KEYS_YAML % (RIGHT, sha256("backstage-key-1")))
    try:
        # A wrong key: ffmpeg fails, told why; the peer is logged, the key is not.
        pub = ffmpeg_publish(srv.rtmp_url(WRONG), 5)
        _, err = pub.communicate(timeout=60)
        check(pub.returncode != 0, "ffmpeg published with a wrong key")
        check("unknown stream key" in err or "BadName" in err,
              "the client was not told why: %r" % err[-500:])
        log = srv.logtext()
        refused = [l for l in log.splitlines() if "publish refused" in l]
        check(refused and "127.0.0.1:" in refused[0], "refusal not logged with the peer:\n" + log)
        for path in ("/live/%s/index.m3u8" % WRONG, "/live/townhall/index.m3u8"):
            check(srv.get(path)[0] == 404, "%s served after a refused publish" % path)

        # The name is not a key either: publishing to the public name is refused.
        pub = ffmpeg_publish(srv.rtmp_url("townhall"), 5)
        pub.communicate(timeout=60)
        check(pub.returncode != 0, "publishing to the public name worked without its key")

        # The right key: served under the public name only.
        pub = ffmpeg_publish(srv.rtmp_url(RIGHT), 6)
        wait_for(lambda: media_playlist_path(srv, "townhall"), 15, "townhall's playlist")
        check(srv.get("/live/%s/index.m3u8" % RIGHT)[0] == 404, "the key is a viewer URL")
        # A key given as its SHA-256 works the same way.
        pub2 = ffmpeg_publish(srv.rtmp_url("backstage-key-1"), 6)
        wait_for(lambda: media_playlist_path(srv, "backstage"), 15, "backstage's playlist")
        for p in (pub, pub2):
            _, err = p.communicate(timeout=60)
            check(p.returncode == 0, "publish with the right key failed: %s" % err[-500:])
        time.sleep(0.2)
        log = srv.logtext()
        check("live/townhall: publishing" in log, "publish not logged under the public name")
        for secret in (RIGHT, WRONG, "backstage-key-1"):
            check(secret not in log, "a stream key appears in the log:\n" + log)
    finally:
        srv.stop()


if __name__ == "__main__":
    run(main)
