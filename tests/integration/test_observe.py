"""Observability (issue 8): the admin API, Prometheus metrics, ingest health,
thumbnails, kick, the admin token and JSON logs, against the real binary with
ffmpeg publishing, promtool and a real Prometheus server scraping it.
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.parse

from onair_test import (Failure, Server, check, ffmpeg_publish, ffmpeg_publish_file, make_flv,
                        run, wait_for)


def admin_port(server):
    return server.admin_port()


def request(port, path, method="GET", headers=None, source=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10,
                                      source_address=(source, 0) if source else None)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        data = r.read()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, data
    finally:
        conn.close()


def api(port, path, headers=None):
    status, _, body = request(port, path, headers=headers)
    check(status == 200, "GET %s: %d %r" % (path, status, body[:200]))
    return json.loads(body)


def stream_info(port, name):
    status, _, body = request(port, "/api/v1/streams/" + name)
    return json.loads(body) if status == 200 else None


def true_bitrate(path):
    """Payload bits per second of every packet in an FLV file (what onair counts)."""
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "packet=size,pts_time",
                          "-of", "json", path], capture_output=True, text=True, check=True)
    pk = json.loads(out.stdout)["packets"]
    total = sum(int(p["size"]) for p in pk)
    times = [float(p["pts_time"]) for p in pk if p.get("pts_time") not in (None, "N/A")]
    return total * 8 / (max(times) - min(times))


def image_size(path):
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=width,height,codec_name", "-of", "json", path],
                         capture_output=True, text=True, check=True)
    s = json.loads(out.stdout)["streams"][0]
    return s["codec_name"], s["width"], s["height"]


def metric(text, name):
    m = re.search(r"^%s (\S+)$" % re.escape(name), text, re.M)
    return float(m.group(1)) if m else None


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def check_stream_stats(aport, name, want_bps):
    info = wait_for(lambda: (lambda i: i if i and i["keyframe_interval_s"] and
                             i["bitrate_kbps"] > 0 else None)(stream_info(aport, name)), 15,
                    "statistics of %s" % name)
    # the bitrate is measured over the last 10 s of media: let it fill
    time.sleep(max(0, 11 - 3))
    info = stream_info(aport, name)
    check(info["live"] is True, "live: %r" % info)
    check("avc1." in info["codecs"] and "mp4a.40.2" in info["codecs"], "codecs: %r" % info)
    check(info["video"]["width"] == 640 and info["video"]["height"] == 360, "size: %r" % info)
    check(abs(info["video"]["framerate"] - 30) <= 1.5, "frame rate: %r" % info)
    check(abs(info["keyframe_interval_s"] - 1.0) <= 0.05, "keyframe interval: %r" % info)
    bps = info["bitrate_kbps"] * 1000
    check(abs(bps - want_bps) <= 0.2 * want_bps,
          "bitrate %.0f bit/s, the file has %.0f bit/s" % (bps, want_bps))
    check(info["publisher"].startswith("127.0.0.1:"), "publisher: %r" % info)
    check(info["encoder"] and info["encoder"].startswith("Lav"), "encoder: %r" % info)
    check(info["segments"] >= 2 and info["parts"] > info["segments"], "counts: %r" % info)
    check(info["media_sequence"] >= 1, "msn: %r" % info)
    check(info["bytes_in"] > 0, "bytes in: %r" % info)
    check(not any(h["code"] == "keyframe_interval" for h in info["health"]),
          "a 1 s GOP raised the keyframe warning: %r" % info)
    check(re.match(r"\d{4}-\d\d-\d\dT", info["live_since"]), "live_since: %r" % info)
    return info


def check_viewers(server, aport, name):
    path = "/live/%s/media.m3u8" % name
    for rep in range(3):
        for src in ("127.0.0.2", "127.0.0.3", "127.0.0.4"):
            status, _, _ = request(server.http_port, path, source=src)
            check(status == 200, "playlist from %s: %d" % (src, status))
    info = stream_info(aport, name)
    check(info["viewers"] == 3, "three polling clients are %r viewers" % info["viewers"])
    check(info["bytes_out"] > 0, "bytes out: %r" % info)


def check_thumbnails(server, aport, name, tmp):
    # nobody asked yet: no thumbnail work at all
    _, _, body = request(aport, "/metrics")
    check(metric(body.decode(), "onair_thumbnails_encoded_total") == 0,
          "thumbnails were made before anyone asked")
    path = "/live/%s/thumb.jpg" % name
    status, headers, _ = request(server.http_port, path)
    check(status in (200, 503), "first thumb.jpg: %d" % status)
    if status == 503:
        check(headers.get("retry-after") == "1", "503 without Retry-After: %r" % headers)
    first = wait_for(lambda: (lambda r: r if r[0] == 200 else None)(
        request(server.http_port, path)), 10, "a thumbnail", interval=0.5)
    check(first[1]["content-type"] == "image/jpeg", "type: %r" % first[1])
    check(first[1]["cache-control"] == "public, max-age=2", "cache: %r" % first[1])
    jpg = os.path.join(tmp, "thumb.jpg")
    with open(jpg, "wb") as f:
        f.write(first[2])
    codec, w, h = image_size(jpg)
    check((codec, w, h) == ("mjpeg", 480, 270), "thumbnail is %s %dx%d" % (codec, w, h))
    # refreshed after the interval (testsrc2 moves, so the picture differs)
    second = wait_for(lambda: (lambda r: r if r[0] == 200 and r[2] != first[2] else None)(
        request(server.http_port, path)), 10, "a refreshed thumbnail", interval=0.5)
    check(second[2][:2] == b"\xff\xd8", "not a JPEG")
    _, _, body = request(aport, "/metrics")
    made = metric(body.decode(), "onair_thumbnails_encoded_total")
    check(made >= 2, "thumbnails encoded: %r" % made)
    status, _, _ = request(server.http_port, "/live/nosuch/thumb.jpg")
    check(status == 404, "thumb of an unknown stream: %d" % status)


def check_promtool(aport, tmp):
    status, headers, body = request(aport, "/metrics")
    check(status == 200, "/metrics: %d" % status)
    check(headers["content-type"].startswith("text/plain; version=0.0.4"), "type: %r" % headers)
    text = body.decode()
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True)
    check(p.returncode == 0, "promtool check metrics: %s%s" % (p.stdout, p.stderr))
    check(metric(text, "onair_streams_live") == 2, "streams live: %r" % metric(text, "onair_streams_live"))
    check(re.search(r'^onair_stream_viewers\{stream="obs"\} 3$', text, re.M), "viewers metric")
    check(re.search(r'^onair_segment_availability_seconds_count\{kind="part"\} [1-9]', text, re.M),
          "availability histogram is empty")
    check(re.search(r'^onair_http_responses_total\{code="2xx"\} [1-9]', text, re.M),
          "2xx counter")
    for fam in set(re.findall(r"^(onair_\w+?)(?:_bucket|_sum|_count)?[{ ]", text, re.M)):
        base = fam
        check("# HELP %s " % base in text or "# HELP %s " % re.sub(r"_(bucket|sum|count)$", "", base) in text,
              "no HELP for %s" % fam)


def check_prometheus(aport, tmp):
    if not shutil.which("prometheus"):
        raise Failure("prometheus is not installed (scripts/setup.sh --test installs it)")
    port = free_port()
    cfg = os.path.join(tmp, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                "scrape_configs:\n  - job_name: onair\n    static_configs:\n"
                "      - targets: ['127.0.0.1:%d']\n" % aport)
    proc = subprocess.Popen(["prometheus", "--config.file=" + cfg,
                             "--storage.tsdb.path=" + os.path.join(tmp, "tsdb"),
                             "--web.listen-address=127.0.0.1:%d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def query(q):
            status, _, body = request(port, "/api/v1/query?query=" + urllib.parse.quote(q))
            if status != 200:
                return None
            res = json.loads(body)["data"]["result"]
            return float(res[0]["value"][1]) if res else None

        wait_for(lambda: query('up{job="onair"}') == 1, 30, "Prometheus to scrape onair")
        wait_for(lambda: query("onair_streams_live") == 1, 10,
                 "Prometheus to see onair_streams_live 1")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def check_kick(server, aport, name, pub):
    status, _, body = request(aport, "/api/v1/streams/%s/kick" % name, method="GET")
    check(status == 405, "GET kick: %d" % status)
    status, _, body = request(aport, "/api/v1/streams/%s/kick" % name, method="POST")
    check(status == 200 and json.loads(body)["kicked"] is True, "kick: %d %r" % (status, body))
    try:
        pub.wait(timeout=15)
    except subprocess.TimeoutExpired:
        raise Failure("ffmpeg still publishing 15 s after the kick")
    check(pub.returncode != 0, "ffmpeg exited cleanly after a kick")
    info = wait_for(lambda: (lambda i: i if i and not i["live"] else None)(
        stream_info(aport, name)), 10, "the kicked stream to end")
    check(info["publishes"] == 1, "publishes: %r" % info)
    check(re.search(r"stream ended \(kicked through the admin API\) after [\d.]+ s, \d+ bytes",
                    server.logtext()), "no access line for the kicked publish")
    status, _, _ = request(aport, "/api/v1/streams/%s/kick" % name, method="POST")
    check(status == 404, "second kick: %d" % status)
    status, _, _ = request(aport, "/api/v1/streams/nosuch")
    check(status == 404, "unknown stream: %d" % status)
    status, _, _ = request(aport, "/api/v1/streams/..%2f")
    check(status in (400, 404), "bad name: %d" % status)


def main_server(binary):
    tmp = tempfile.mkdtemp(prefix="onair-observe-")
    flv = os.path.join(tmp, "gop1.flv")
    make_flv(flv, 60, size="640x360", rate=30, gop=30)
    want_bps = true_bitrate(flv)
    server = Server(binary, {"admin": {"listen": "127.0.0.1:0"},
                             "thumbnails": {"interval": 2}})
    pubs = []
    try:
        aport = admin_port(server)
        for path in ("/api/v1/streams", "/api/v1/server", "/metrics"):
            status, _, _ = server.get(path)
            check(status == 404, "public port answers %s: %d" % (path, status))
        srv = api(aport, "/api/v1/server")
        check(srv["version"] and srv["uptime_s"] >= 0, "server: %r" % srv)
        check(srv["config_file"] == server.config_path, "config file: %r" % srv)
        obs = ffmpeg_publish_file(flv, server.rtmp_url("obs"))
        pubs.append(obs)
        gop4 = ffmpeg_publish(server.rtmp_url("gop4"), 40, gop=120)
        pubs.append(gop4)
        check_stream_stats(aport, "obs", want_bps)
        srv = api(aport, "/api/v1/server")
        check(srv["connections"]["rtmp"] == 2 and srv["streams_live"] == 2, "server: %r" % srv)
        check_viewers(server, aport, "obs")
        # a 4 s GOP with 2 s segments: the keyframe warning, in the API and the log, once
        info = wait_for(lambda: (lambda i: i if i and any(
            h["code"] == "keyframe_interval" for h in i["health"]) else None)(
            stream_info(aport, "gop4")), 20, "the keyframe interval warning")
        msg = [h for h in info["health"] if h["code"] == "keyframe_interval"][0]["message"]
        check("4.0 s exceeds the 2.0 s segment target" in msg and "Keyframe Interval" in msg,
              "warning: %r" % msg)
        check(server.logtext().count("keyframe interval 4.0 s exceeds") == 1,
              "the keyframe warning is not logged exactly once")
        listing = api(aport, "/api/v1/streams")
        check(sorted(s["name"] for s in listing["streams"]) == ["gop4", "obs"],
              "listing: %r" % listing)
        check_thumbnails(server, aport, "obs", tmp)
        check_promtool(aport, tmp)
        gop4.terminate()
        gop4.wait()
        wait_for(lambda: not stream_info(aport, "gop4")["live"], 10, "gop4 to end")
        check_prometheus(aport, tmp)
        check_kick(server, aport, "obs", obs)
        _, _, body = request(aport, "/metrics")
        check(metric(body.decode(), "onair_kicks_total") == 1, "kicks counter")
    finally:
        for p in pubs:
            if p.poll() is None:
                p.kill()
                p.wait()
        server.stop()
    shutil.rmtree(tmp, ignore_errors=True)


def token_and_json_logs(binary):
    token = "s3cret-Token_0123"
    server = Server(binary, {"admin": {"listen": "127.0.0.1:0", "token": token},
                             "log": {"format": "json", "http_access": "on"}})
    try:
        aport = admin_port(server)
        for headers in ({}, {"Authorization": "Bearer wrong"},
                        {"Authorization": "Bearer " + token + "x"}, {"Authorization": token}):
            status, h, _ = request(aport, "/metrics", headers=headers)
            check(status == 401, "without the token: %d (%r)" % (status, headers))
            check(h.get("www-authenticate", "").startswith("Bearer"), "401 without challenge")
        status, _, _ = request(aport, "/api/v1/streams/x/kick", method="POST")
        check(status == 401, "kick without the token: %d" % status)
        status, _, body = request(aport, "/metrics", headers={"Authorization": "Bearer " + token})
        check(status == 200 and b"onair_build_info" in body, "with the token: %d" % status)
        pub = ffmpeg_publish(server.rtmp_url("jsonlog"), 4)
        pub.wait(timeout=30)
        status, _, _ = server.get("/live/jsonlog/index.m3u8")
        check(status == 200, "playlist: %d" % status)
        server.get("/nosuch")
    finally:
        server.stop()
    text = server.logtext()
    lines = [l for l in text.splitlines() if l.strip()]
    check(len(lines) > 10, "too few log lines: %r" % lines)
    p = subprocess.run(["jq", "-c", "has(\"ts\") and has(\"level\") and has(\"module\") and "
                        "has(\"stream\") and has(\"msg\")"], input="\n".join(lines) + "\n",
                       capture_output=True, text=True)
    check(p.returncode == 0, "jq could not parse every line: %s" % p.stderr)
    check(p.stdout.split() == ["true"] * len(lines), "a line lacks a field:\n%s" % text[-3000:])
    objs = [json.loads(l) for l in lines]
    check(any(o["module"] == "http-access" and "/live/jsonlog/index.m3u8" in o["msg"] and
              " 200 " in o["msg"] for o in objs), "no access line for the playlist")
    check(any(o["module"] == "rtmp" and o.get("stream") == "jsonlog" and o.get("app") == "live"
              and "conn" in o for o in objs), "no rtmp line with stream fields")
    check(any(o["level"] == "info" and "stream ended" in o["msg"] and "bytes received" in o["msg"]
              for o in objs), "no publish end access line")


def write_config(path, admin_listen, token, extra):
    with open(path, "w") as f:
        f.write('rtmp:\n  listen: "127.0.0.1:0"\nhttp:\n  listen: "127.0.0.1:0"\n'
                'hls:\n  segment_seconds: 2\n'
                'admin:\n  listen: "%s"\n  token: "%s"\n%s' % (admin_listen, token, extra))


def reload_observing(binary):
    """SIGHUP applies admin.token, log.format, log.http_access and thumbnails.interval at
    once; admin.listen is logged as needing a restart and the admin port stays."""
    server = Server(binary, {"admin": {"listen": "127.0.0.1:0", "token": "first"},
                             "thumbnails": {"interval": 2}})
    pub = None
    try:
        aport = admin_port(server)
        status, _, _ = request(aport, "/metrics", headers={"Authorization": "Bearer first"})
        check(status == 200, "first token: %d" % status)
        pub = ffmpeg_publish(server.rtmp_url("reload"), 40, gop=30)
        wait_for(lambda: server.get("/live/reload/thumb.jpg")[0] == 200, 20, "a thumbnail")
        check(server.get("/live/reload/thumb.jpg")[1]["cache-control"] == "public, max-age=2",
              "cache-control before the reload")
        write_config(server.config_path, "127.0.0.1:%d" % free_port(), "second",
                     'log:\n  format: json\n  http_access: "on"\n'
                     'thumbnails:\n  interval: 5\n')
        n = len(server.logtext().splitlines())
        server.proc.send_signal(signal.SIGHUP)
        wait_for(lambda: "changes applied" in server.logtext(), 15, "the reload")
        check("SIGHUP: admin.listen applies at the next start" in server.logtext(),
              "no restart note for admin.listen:\n" + server.logtext()[-2000:])
        for token, want in (("first", 401), ("second", 200)):
            status, _, _ = request(aport, "/metrics", headers={"Authorization": "Bearer " + token})
            check(status == want, "token %s after the reload: %d, not %d" % (token, status, want))
        status, h, _ = server.get("/live/reload/thumb.jpg")
        check(status == 200 and h["cache-control"] == "public, max-age=5",
              "thumb.jpg after the reload: %d %r" % (status, h))
        server.get("/live/reload/index.m3u8")
        wait_for(lambda: "http-access" in server.logtext(), 10, "an access line")
    finally:
        if pub and pub.poll() is None:
            pub.kill()
            pub.wait()
        server.stop()
    after = [l for l in server.logtext().splitlines()[n:] if l.strip()]
    # from the reload's list of changes on, every line is JSON
    first_json = next(i for i, l in enumerate(after) if l.startswith("{"))
    check(all(" onair: " in l for l in after[:first_json]),
          "text lines after the switch: %r" % after[:first_json + 1])
    objs = [json.loads(l) for l in after[first_json:]]
    check(objs[0]["msg"].startswith("SIGHUP: "), "first JSON line: %r" % objs[0])
    check(any(o["module"] == "http-access" and "/live/reload/index.m3u8" in o["msg"]
              for o in objs), "no JSON access line after the reload")
    check(any("changes applied" in o["msg"] for o in objs), "reload summary not JSON")


def admin_busy(binary):
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    d = tempfile.mkdtemp(prefix="onair-observe-")
    path = os.path.join(d, "onair.yaml")
    with open(path, "w") as f:
        f.write('rtmp:\n  listen: "127.0.0.1:0"\nhttp:\n  listen: "127.0.0.1:0"\n'
                'admin:\n  listen: "127.0.0.1:%d"\n' % port)
    r = subprocess.run([binary, "--config", path], capture_output=True, text=True, timeout=30)
    taken.close()
    check(r.returncode == 1, "admin port in use: exit %s\n%s" % (r.returncode, r.stderr))
    check("admin.listen" in r.stderr and "start-up failed" in r.stderr,
          "admin port in use: %r" % r.stderr)
    shutil.rmtree(d, ignore_errors=True)


def admin_off(binary):
    server = Server(binary, {"admin": {"listen": ""}})
    try:
        check("admin API on" not in server.logtext(), "admin port open with admin.listen empty")
        status, _, _ = server.get("/metrics")
        check(status == 404, "/metrics on the public port: %d" % status)
    finally:
        server.stop()


def main(binary):
    admin_off(binary)
    admin_busy(binary)
    token_and_json_logs(binary)
    reload_observing(binary)
    main_server(binary)


if __name__ == "__main__":
    run(main)
