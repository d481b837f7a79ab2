"""Certificate reload on SIGHUP for RTMPS and HTTPS: two leaves from one test CA
(CN onair-one, CN onair-two; openssl CLI). With the first one in place, ffmpeg
publishes over rtmps:// and a viewer holds a keep-alive HTTPS connection. The
files are swapped for the second leaf and onair gets SIGHUP: openssl s_client
then gets the new subject and serial on both ports, while the publisher keeps
streaming on its connection and the viewer's connection still answers (with
the old certificate). Unreadable certificate files on the next SIGHUP are
logged and the certificate in use stays."""
import http.client
import os
import shutil
import signal
import ssl
import tempfile

from onair_test import Server, check, ffmpeg_publish, make_certs, run, served_cert, wait_for


def peer_cn(conn):
    subject = dict(x[0] for x in conn.sock.getpeercert()["subject"])
    return subject.get("commonName")


def install(src_crt, src_key, crt, key):
    """Replaces the served files the way certbot does (a new file renamed over)."""
    for src, dst in ((src_crt, crt), (src_key, key)):
        shutil.copy(src, dst + ".new")
        os.replace(dst + ".new", dst)


def main(binary):
    d = tempfile.mkdtemp(prefix="onair-tlsreload-")
    ca, crt1, key1 = make_certs(d, cn="onair-one", prefix="one")
    _, crt2, key2 = make_certs(d, cn="onair-two", prefix="two",
                               ca=(ca, os.path.join(d, "ca.key")))
    crt, key = os.path.join(d, "live.pem"), os.path.join(d, "live.key")
    install(crt1, key1, crt, key)
    srv = Server(binary, {"rtmps": {"listen": "127.0.0.1:0", "cert": crt, "key": key},
                          "http": {"tls_cert": crt, "tls_key": key}})
    pub = viewer = None
    try:
        rtmps, https = srv.rtmps_port, srv.http_port
        one = {p: served_cert(p, ca) for p in (rtmps, https)}
        for port, (subject, serial) in one.items():
            check("onair-one" in subject and serial, "port %d serves %r" % (port, subject))

        pub = ffmpeg_publish(srv.rtmps_url("keep"), 120)
        ctx = ssl.create_default_context(cafile=ca)
        viewer = http.client.HTTPSConnection("127.0.0.1", https, timeout=10, context=ctx)

        def viewer_get(path):
            viewer.request("GET", path)
            r = viewer.getresponse()
            return r.status, r.read()

        def media_path():
            status, body = viewer_get("/live/keep/index.m3u8")
            uris = [l for l in body.decode().splitlines() if l and not l.startswith("#")]
            return "/live/keep/" + uris[0] if status == 200 and uris else None

        media = wait_for(media_path, 30, "the rtmps stream's playlist over https")
        check(peer_cn(viewer) == "onair-one", "viewer: %s" % peer_cn(viewer))
        before = viewer_get(media)[1]

        install(crt2, key2, crt, key)
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: srv.logtext().count("certificate reloaded") >= 2, 15,
                 "both certificates reloaded")
        print([l for l in srv.logtext().splitlines() if "certificate reloaded" in l])

        for port in (rtmps, https):
            subject, serial = served_cert(port, ca)
            check("onair-two" in subject and serial != one[port][1],
                  "port %d after SIGHUP serves %r serial %s (was %s)"
                  % (port, subject, serial, one[port][1]))

        # The open connections went on: the viewer's (still the old certificate) and the
        # publisher's (its playlist advances, it was never disconnected).
        wait_for(lambda: viewer_get(media)[1] != before, 15, "the playlist to move on")
        check(peer_cn(viewer) == "onair-one", "the viewer's connection was replaced")
        status, _ = viewer_get("/healthz")
        check(status == 200, "viewer's keep-alive connection: %d" % status)
        check(pub.poll() is None, "ffmpeg stopped after the reload")
        check("live/keep: disconnected" not in srv.logtext(), "the rtmps publisher was dropped")

        # Broken files on the next SIGHUP: logged, the certificate in use stays.
        with open(crt, "w") as f:
            f.write("not a certificate\n")
        srv.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: srv.logtext().count("keeping the certificate in use") >= 2, 15,
                 "both reload failures logged")
        for port in (rtmps, https):
            check("onair-two" in served_cert(port, ca)[0], "port %d after a bad reload" % port)
        check(srv.alive() and pub.poll() is None, "server or publisher died")
    finally:
        if viewer:
            viewer.close()
        if pub and pub.poll() is None:
            pub.kill()
            pub.wait()
        srv.stop()


if __name__ == "__main__":
    run(main)
