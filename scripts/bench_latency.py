#!/usr/bin/env python3
"""Client side of scripts/bench-latency.sh (standard library only).

  parts URL_BASE SECONDS OUT.json
      (a) follows the preload hint with blocking reloads for SECONDS and, for
      every part, compares when the answer that lists it reached this client
      with when the part's last frame reached the server (see part_delays).
  held URL_BASE COUNT SERVER_PID OUT.json
      (c) holds COUNT blocking reloads for a part that is not cut yet and
      reports the server's RSS, CPU time and threads before and while they
      wait, and how long after the part was cut the last answer came.
  report DIR
      prints the table from the JSON files the steps above (and
      bench_latency_viewer.js) left in DIR.

Receive times are the kernel's: SO_TIMESTAMPNS stamps each TCP segment with
CLOCK_REALTIME when it reaches the client socket, so a busy client (10,000
sockets in one Python thread) does not inflate what is measured, and the
stamps are on the same clock as the server's EXT-X-PROGRAM-DATE-TIME.
"""
import datetime
import json
import os
import re
import resource
import selectors
import socket
import statistics
import struct
import sys
import time
import urllib.parse

SO_TIMESTAMPNS = 35  # asm-generic/socket.h (SO_TIMESTAMPNS_OLD); socket.py lacks it
PART_RE = re.compile(r'#EXT-X-PART:DURATION=([0-9.]+),URI="part-[0-9a-f]+-(\d+)-(\d+)\.m4s"')
HINT_RE = re.compile(r'#EXT-X-PRELOAD-HINT:TYPE=PART,URI="part-[0-9a-f]+-(\d+)-(\d+)\.m4s"')
SEG_RE = re.compile(r'^seg-[0-9a-f]+-(\d+)\.m4s$')


def die(msg):
    sys.stderr.write("bench_latency: %s\n" % msg)
    sys.exit(1)


def quantiles(xs):
    """(median, p95) of a non-empty list."""
    s = sorted(xs)
    return statistics.median(s), s[min(len(s) - 1, int(round(0.95 * (len(s) - 1))))]


def kernel_ts(anc):
    for level, kind, data in anc:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9
    return None


def split_url(base):
    u = urllib.parse.urlsplit(base)
    return u.hostname, u.port or 80, u.path.rstrip("/")


def get(host, port, path, timeout=20):
    """GET on a fresh connection (Connection: close). Returns (status, body,
    kernel time of the last data segment, wall time the request was sent)."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        sent = time.time()
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
                   (path, host)).encode())
        chunks, last = [], None
        while True:
            data, anc, _, _ = s.recvmsg(262144, 256)
            if not data:
                break
            chunks.append(data)
            last = kernel_ts(anc) or time.time()
    finally:
        s.close()
    raw = b"".join(chunks)
    head, _, body = raw.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/") else 0
    return status, body.decode("utf-8", "replace"), last, sent


def parse_playlist(text, pdt, durs, nparts):
    """Collects PROGRAM-DATE-TIME (epoch s) and part durations per MSN from a
    media playlist into PDT / DURS; NPARTS[msn] once the segment is complete.
    Returns the preload hint (msn, idx) or None."""
    cur = None
    for line in text.splitlines():
        if line.startswith("#EXT-X-PROGRAM-DATE-TIME:"):
            v = line.split(":", 1)[1].replace("Z", "+00:00")
            cur = datetime.datetime.fromisoformat(v).timestamp()
            continue
        m = PART_RE.match(line)
        if m:
            msn, idx = int(m.group(2)), int(m.group(3))
            durs.setdefault(msn, {})[idx] = float(m.group(1))
            if cur is not None:
                pdt[msn] = cur
            continue
        m = SEG_RE.match(line)
        if m:
            msn = int(m.group(1))
            if cur is not None:
                pdt[msn] = cur
            if msn in durs:
                nparts[msn] = len(durs[msn])
            cur = None
    m = HINT_RE.search(text)
    return (int(m.group(1)), int(m.group(2))) if m else None


# ---- (a) part availability -----------------------------------------------------

def cmd_parts(base, seconds, out):
    host, port, prefix = split_url(base)
    pdt, durs, nparts = {}, {}, {}
    status, text, _, _ = get(host, port, prefix + "/media.m3u8")
    if status != 200:
        die("media.m3u8: HTTP %d" % status)
    hint = parse_playlist(text, pdt, durs, nparts)
    if not hint:
        die("no EXT-X-PRELOAD-HINT (is hls.part_seconds 0?):\n" + text)
    answers = []  # (msn, idx, sent, received)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        msn, idx = hint
        status, text, got, sent = get(host, port, "%s/media.m3u8?_HLS_msn=%d&_HLS_part=%d" %
                                      (prefix, msn, idx))
        if status != 200:
            die("blocking reload %d.%d: HTTP %d" % (msn, idx, status))
        hint = parse_playlist(text, pdt, durs, nparts)
        if not hint:
            die("answer without a preload hint:\n" + text)
        if idx in durs.get(msn, {}):
            answers.append((msn, idx, sent, got))
        # else: the segment ended before that part; the answer lists the next
        # segment's first part, which is requested (and measured) next time.

    # A part is cut when the first frame of the next part reaches the server.
    # For the last part of a segment that frame is the next segment's keyframe,
    # and the server stamps its arrival as that segment's PROGRAM-DATE-TIME:
    # exact. For other parts, PROGRAM-DATE-TIME + the durations of the parts
    # before: only as exact as ffmpeg -re paces frames.
    exact, estimated, not_held, est_err = [], [], 0, []
    for msn, idx, sent, got in answers:
        if msn not in pdt or idx not in durs.get(msn, {}):
            continue
        cut_est = pdt[msn] + sum(durs[msn][i] for i in range(idx + 1) if i in durs[msn])
        if sent > cut_est:
            not_held += 1
            continue
        estimated.append((got - cut_est) * 1000)
        if nparts.get(msn) == idx + 1 and msn + 1 in pdt:
            exact.append((got - pdt[msn + 1]) * 1000)
            est_err.append(abs(cut_est - pdt[msn + 1]) * 1000)
    if len(estimated) < 10 or len(exact) < 3:
        die("too few measured parts (%d, %d segment ends)" % (len(estimated), len(exact)))
    res = {"parts": len(estimated), "segment_ends": len(exact), "not_held": not_held,
           "exact_ms": quantiles(exact), "est_ms": quantiles(estimated),
           "est_min_ms": min(estimated), "est_err_ms": quantiles(est_err)}
    with open(out, "w") as f:
        json.dump(res, f)


# ---- (c) many held requests ----------------------------------------------------

def proc_stat(pid):
    """RSS, threads and CPU time of PID. CPU time is utime+stime as in
    /proc/PID/stat, but summed from each thread's schedstat (ns) because
    stat's clock ticks (10 ms) are too coarse for windows of a few seconds."""
    cpu = 0.0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                cpu += int(f.read().split()[0]) / 1e9
        except FileNotFoundError:
            pass
    rss = threads = 0
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {"cpu_s": cpu, "rss_kb": rss, "threads": threads, "t": time.monotonic()}


def open_held(host, port, request, count, sel):
    """Opens COUNT non-blocking connections in batches (so that the listen
    backlog never overflows into SYN retries) and sends REQUEST on each."""
    conns = {}
    batch = 250
    for i in range(0, count, batch):
        pending = set()
        for _ in range(min(batch, count - i)):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            err = s.connect_ex((host, port))
            if err not in (0, 115):  # EINPROGRESS
                die("connect: %s" % os.strerror(err))
            sel.register(s, selectors.EVENT_WRITE)
            pending.add(s)
        deadline = time.monotonic() + 10
        while pending:
            if time.monotonic() > deadline:
                die("%d connections not established after 10 s" % len(pending))
            for key, _ in sel.select(1):
                s = key.fileobj
                err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    die("connect: %s" % os.strerror(err))
                s.send(request)  # a few dozen bytes into an empty send buffer
                sel.modify(s, selectors.EVENT_READ)
                pending.discard(s)
                conns[s] = {"first": None, "buf": bytearray()}
    return conns


def read_ready(sel, conns, timeout):
    """Reads whatever arrived; returns the number of connections closed."""
    closed = 0
    for key, _ in sel.select(timeout):
        s = key.fileobj
        c = conns[s]
        data, anc, _, _ = s.recvmsg(65536, 256)
        if data:
            if c["first"] is None:
                c["first"] = kernel_ts(anc) or time.time()
            c["buf"] += data
        else:
            sel.unregister(s)
            s.close()
            closed += 1
    return closed


def hold_many(host, port, prefix, count, pid, out):
    pdt, durs, nparts = {}, {}, {}
    # Start just after a segment M starts, and ask for the last part of M + 1:
    # it is cut 3.67 s later (the server gives up after three target
    # durations, 6 s) by the keyframe that starts M + 2, whose arrival the
    # server stamps as the PROGRAM-DATE-TIME of M + 2.
    idle0 = proc_stat(pid)
    time.sleep(3.0)
    idle1 = proc_stat(pid)
    status, text, _, _ = get(host, port, prefix + "/media.m3u8")
    hint = parse_playlist(text, pdt, durs, nparts)
    if status != 200 or not hint:
        die("media.m3u8: HTTP %d" % status)
    status, text, _, _ = get(host, port, "%s/media.m3u8?_HLS_msn=%d&_HLS_part=0" %
                             (prefix, hint[0] + 1))
    t_ref = time.monotonic()  # the first part of M (hint's MSN + 1) was just cut
    hint = parse_playlist(text, pdt, durs, nparts)
    if status != 200 or not hint:
        die("blocking reload: HTTP %d" % status)
    if not nparts:
        die("no complete segment with parts listed:\n" + text)
    last = nparts[max(nparts)] - 1
    msn = hint[0] + 1
    seg_s = sum(durs[max(nparts)].values())
    due = t_ref + 2 * seg_s - durs[max(nparts)][0]  # when M + 2 starts
    path = "%s/media.m3u8?_HLS_msn=%d&_HLS_part=%d" % (prefix, msn, last)
    request = ("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" %
               (path, host)).encode()

    t_start = time.monotonic()
    sel = selectors.DefaultSelector()
    conns = open_held(host, port, request, count, sel)
    t_connected = time.monotonic()
    closed = read_ready(sel, conns, 0.2)
    held0 = proc_stat(pid)
    time.sleep(max(0.0, due - 0.25 - time.monotonic()))
    held1 = proc_stat(pid)
    closed += read_ready(sel, conns, 0)
    if closed or any(c["first"] for c in conns.values()) or held1["t"] - held0["t"] < 0.5:
        die("answers came before the part was due, or connecting took too long (%.1f s)" %
            (t_connected - t_start))
    deadline = time.monotonic() + 30
    while closed < count and time.monotonic() < deadline:
        closed += read_ready(sel, conns, 1)
    if closed < count:
        die("%d of %d held requests unanswered after 30 s" % (count - closed, count))
    after = proc_stat(pid)

    status, text, _, _ = get(host, port, "%s/media.m3u8?_HLS_msn=%d&_HLS_part=0" %
                             (prefix, msn + 1))
    parse_playlist(text, pdt, durs, nparts)
    if msn + 1 not in pdt or nparts.get(msn) != last + 1:
        die("segment %d did not end with part %d:\n%s" % (msn, last, text))
    statuses = {}
    for c in conns.values():
        m = re.match(rb"HTTP/1\.1 (\d+)", bytes(c["buf"][:16]))
        st = int(m.group(1)) if m else 0
        statuses[st] = statuses.get(st, 0) + 1
    if statuses.get(200) != count:
        die("%d of %d held requests answered 200: %s" % (statuses.get(200, 0), count, statuses))
    firsts = sorted(c["first"] for c in conns.values())
    # The keyframe that cuts the part starts M + 2: estimated from the PDT of
    # M + 1 and its duration (ffmpeg -re pacing: +-15 ms). The PDT of M + 2
    # itself is stamped after the waiters are woken, on the same thread.
    cut = pdt[msn] + sum(durs[msn].values())
    res = {
        "count": count, "msn": msn,
        "connect_s": t_connected - t_start,
        "idle": {"rss_kb": idle1["rss_kb"], "threads": idle1["threads"],
                 "cpu_ms_per_s": (idle1["cpu_s"] - idle0["cpu_s"]) * 1000 /
                 (idle1["t"] - idle0["t"])},
        "held": {"rss_kb": held1["rss_kb"], "threads": held1["threads"],
                 "cpu_ms_per_s": (held1["cpu_s"] - held0["cpu_s"]) * 1000 /
                 (held1["t"] - held0["t"])},
        "connect_cpu_s": held0["cpu_s"] - idle1["cpu_s"],
        "release_cpu_s": after["cpu_s"] - held1["cpu_s"],
        "after_threads": after["threads"],
        "first_ms": (firsts[0] - cut) * 1000,
        "median_ms": (statistics.median(firsts) - cut) * 1000,
        "last_ms": (firsts[-1] - cut) * 1000,
        "spread_ms": (firsts[-1] - firsts[0]) * 1000,
        "next_pdt_after_first_ms": (pdt[msn + 1] - firsts[0]) * 1000,
    }
    with open(out, "w") as f:
        json.dump(res, f)


def cmd_held(base, count, pid, out):
    host, port, prefix = split_url(base)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 100:
        if hard < count + 100:
            die("RLIMIT_NOFILE hard limit %d < %d" % (hard, count + 100))
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    hold_many(host, port, prefix, count, pid, out)


# ---- report --------------------------------------------------------------------

def cmd_report(d):
    """Prints the results as Markdown tables (pasted as is into README.md)."""
    def load(name):
        p = os.path.join(d, name)
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return json.load(f)

    def ms(q):
        return "%.1f / %.1f ms" % tuple(q)

    def sec(q):
        return "%.2f / %.2f s" % tuple(q)

    meta = load("meta.json") or {}
    print("onair %s, nginx-rtmp %s; %s cores; %s, hls.js %s; one 720p30 H.264 ~3 Mbit/s stream "
          "(keyframe every 1 s, no B-frames) + AAC published with ffmpeg -re; 2 s segments; "
          "%d s per measurement." % (meta.get("version", "?"), meta.get("nginx_rtmp", "?"),
                                     os.cpu_count(), meta.get("player", "?"),
                                     meta.get("hlsjs", "?"), meta.get("seconds", 0)))
    print()
    print("(a) Part availability: when the answer to the blocking reload for a part reached "
          "the client (kernel receive time) minus when the frame that completes the part "
          "(the next part's first frame) reached the server. Not counted: that one frame "
          "(33 ms), which every part waits for by design. Median / p95.")
    print()
    print("| part target | segment-end parts: vs the server's PDT stamp of that frame "
          "(+-1 ms) | every part: vs PDT + durations of the parts before (ffmpeg -re "
          "pacing noise, below) |")
    print("|---|---|---|")
    errs = []
    for p in ("0.2", "0.333", "0.5"):
        r = load("parts-%s.json" % p)
        if r:
            print("| %s s | %s (%d parts) | %s (%d parts) |" % (
                p, ms(r["exact_ms"]), r["segment_ends"], ms(r["est_ms"]), r["parts"]))
            errs.append(r["est_err_ms"][1])
    if errs:
        print()
        print("Where both can be compared (segment ends), PDT + durations is off by up to "
              "%.1f ms (p95). The server stamps a PDT right after the keyframe has closed the "
              "segment before, so the first column leaves out the cut itself." % max(errs))
    print()
    print("(b) Latency of hls.js in headless Chromium: hls.latency (hls.js's own estimate) and "
          "wall clock - PROGRAM-DATE-TIME of the playing frame (hls.playingDate; the PDT is "
          "when the frame reached the server). hls.js picks its distance from the live edge "
          "when it starts, so each row pools the samples of %s fresh starts. Median / p95." %
          meta.get("sessions", "?"))
    print()
    print("| server, playlist | hls.js | hls.latency | wall clock - PDT | "
          "hls.latency per start | stalls |")
    print("|---|---|---|---|---|---|")
    rows = [("onair LL-HLS, 0.2 s parts", "view-0.2.json", "lowLatencyMode"),
            ("onair LL-HLS, 0.333 s parts", "view-0.333.json", "lowLatencyMode"),
            ("onair LL-HLS, 0.333 s parts", "view-0.333-rate.json",
             "lowLatencyMode, maxLiveSyncPlaybackRate 1.5"),
            ("onair LL-HLS, 0.5 s parts", "view-0.5.json", "lowLatencyMode"),
            ("onair standard HLS (parts 0)", "view-0.json", "standard"),
            ("nginx-rtmp HLS, hls_fragment 2s (peer)", "view-nginx.json", "standard"),
            ("nginx-rtmp HLS, hls_fragment 1s (peer)", "view-nginx1.json", "standard")]
    peer = False
    for label, name, mode in rows:
        r = load(name)
        if not r:
            continue
        if r.get("error"):
            print("| %s | %s | failed: %s | | | |" % (label, mode, r["error"]))
            continue
        wall = sec(r["wall"]) if r.get("wall") else "-"
        if r.get("wall") and r.get("wall_from") == "name":
            wall += " (*)"
            peer = True
        print("| %s | %s | %s | %s | %s | %d |" % (
            label, mode, sec(r["latency"]), wall,
            " ".join("%.2f" % x for x in r["per_session"] if x is not None), r["stalls"]))
    if peer:
        print()
        print("(*) nginx-rtmp writes no PROGRAM-DATE-TIME: wall clock - the fragment's "
              "creation time, from its name (hls_fragment_naming system).")
    print()
    r = load("held.json")
    if r:
        print("(c) %d blocking reloads held at once for one part (0.333 s parts), each on its "
              "own connection:" % r["count"])
        print()
        print("| onair | before (stream only) | while %d wait |" % r["count"])
        print("|---|---|---|")
        print("| RSS (VmRSS) | %.1f MB | %.1f MB |" % (r["idle"]["rss_kb"] / 1024,
                                                     r["held"]["rss_kb"] / 1024))
        print("| CPU time (utime+stime) | %.1f ms/s | %.1f ms/s |" % (
            r["idle"]["cpu_ms_per_s"], r["held"]["cpu_ms_per_s"]))
        print("| threads | %d | %d (%d after) |" % (r["idle"]["threads"], r["held"]["threads"],
                                                  r["after_threads"]))
        print()
        print("Opening them took %.1f s and %.2f s of server CPU, answering them %.2f s; all "
              "%d answered 200. Answers reached the client %.1f ms (first), %.1f ms (median) "
              "and %.1f ms (last) after the keyframe that cuts the part reached the server "
              "(estimated as in (a): PDT + duration of the segment before): %.0f ms from the "
              "first answer to the last. The next segment's PDT, stamped by the ingest thread "
              "after it has woken the waiters, is %+.0f ms from the first answer." % (
                  r["connect_s"], r["connect_cpu_s"], r["release_cpu_s"], r["count"],
                  r["first_ms"], r["median_ms"], r["last_ms"], r["spread_ms"],
                  r["next_pdt_after_first_ms"]))


def main(argv):
    if len(argv) >= 4 and argv[1] == "parts":
        cmd_parts(argv[2], float(argv[3]), argv[4])
    elif len(argv) >= 6 and argv[1] == "held":
        cmd_held(argv[2], int(argv[3]), int(argv[4]), argv[5])
    elif len(argv) == 3 and argv[1] == "report":
        cmd_report(argv[2])
    else:
        die("usage: see the top of %s" % argv[0])


if __name__ == "__main__":
    main(sys.argv)
