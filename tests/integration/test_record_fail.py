"""Recording failures never touch the live stream (issue 9): a record.path
that cannot be created, and a file-size limit (RLIMIT_FSIZE, as a full disk:
writes fail with EFBIG): each time one clear error line, and the live
playlist keeps advancing after it; /metrics counts the failure and the admin
API shows it as the stream's last error."""
import os
import re
import resource
import tempfile
import urllib.request

from onair_test import (Server, check, ffmpeg_publish, media_playlist_path, parse_media_playlist,
                        run, wait_for)

SECONDS = 12


def live_msn(srv, media):
    tags, segs, _ = parse_media_playlist(srv.get(media)[2].decode())
    return int(tags.get("#EXT-X-MEDIA-SEQUENCE", "0")) + len(segs)


def one_case(binary, root, fsize, want):
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    if fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, old[1]))
    try:
        srv = Server(binary, {"hls": {"segment_seconds": 2, "window_segments": 3},
                              "admin": {"listen": "127.0.0.1:0"}},
                     extra_yaml="record:\n  enabled: true\n  path: %s\n" % root)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
    ok = False
    try:
        pub = ffmpeg_publish(srv.rtmp_url("show"), SECONDS, size="640x360")
        media = wait_for(lambda: media_playlist_path(srv, "show"), 15, "the live playlist")
        wait_for(lambda: "recording stopped" in srv.logtext(), 15, "the recording error")
        errors = [l for l in srv.logtext().splitlines() if "error" in l.split()[1:2]]
        check(len(errors) == 1 and want in errors[0] and "the live stream continues" in errors[0],
              "expected one error line with %r:\n%s" % (want, "\n".join(errors)))
        print("error line: " + errors[0])
        # The stats say it too: the failure counter and the stream's last error.
        aport = int(wait_for(lambda: re.search(r"admin API on \S+ \(port (\d+)\)",
                                               srv.logtext()), 10, "the admin port").group(1))
        metrics = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % aport).read().decode()
        check("onair_record_failures_total 1" in metrics.splitlines(),
              "onair_record_failures_total is not 1")
        # (shown from the stream's next segment on: the segmenter's thread reports it)
        wait_for(lambda: "recording stopped" in urllib.request.urlopen(
            "http://127.0.0.1:%d/api/v1/streams" % aport).read().decode(), 10,
            "the admin API to show the error")
        before = live_msn(srv, media)
        wait_for(lambda: live_msn(srv, media) >= before + 2, 10, "the live stream to advance")
        print("live advanced from segment %d to %d after the error" %
              (before, live_msn(srv, media)))
        out, err = pub.communicate(timeout=SECONDS + 30)
        check(pub.returncode == 0, "the publisher was disturbed: %s" % err)
        wait_for(lambda: b"#EXT-X-ENDLIST" in srv.get(media)[2], 10, "the live stream to end")
        srv.stop()
        ok = True
    finally:
        if not ok:
            print(srv.logtext()[-4000:])
            srv.proc.kill()


def main(binary):
    tmp = tempfile.mkdtemp(prefix="onair-recfail-")
    blocker = os.path.join(tmp, "a-file")
    with open(blocker, "w") as f:
        f.write("not a directory\n")
    # record.path below a regular file: the directory cannot be created.
    one_case(binary, os.path.join(blocker, "rec"), 0,
             "cannot create a directory under %s/rec/show: Not a directory" % blocker)
    # A 100 KB file-size limit: the first 2 s segment (about 200 KB) fails with EFBIG.
    one_case(binary, os.path.join(tmp, "rec"), 100 * 1000, "seg-00000.m4s: File too large")


if __name__ == "__main__":
    run(main)
