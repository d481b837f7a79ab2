/*
 * Recordings over HTTP: files under record.path, served zero-copy from file
 * descriptors (sendfile) with byte ranges.
 *
 *   GET /vod/NAME                 301 to /vod/NAME/
 *   GET /vod/NAME/                the replays of NAME (HTML: date, duration, size)
 *   GET /vod/NAME/index.json      the same as JSON (200 with no replays for any name)
 *   GET /vod/NAME/latest.m3u8     302 to the newest finished replay's playlist
 *   GET /vod/NAME/latest.mp4      302 to the newest replay's MP4
 *   GET /vod/NAME/latest.json     both as JSON, null when none (always 200: pages poll it)
 *   GET /vod/NAME/ID.mp4          PATH/NAME/ID/replay.mp4
 *   GET /vod/NAME/ID/FILE         index.m3u8, init-K.mp4, seg-N.m4s, replay.mp4
 *
 * The path rule (http_path_ok) already excludes "..", '%' and names starting
 * with '.'; every component below record.path is opened with O_NOFOLLOW, so
 * no link leads out of it.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/common.h"
#include "../record/record.h"
#include "http_internal.h"
#include "vod_internal.h"

#define VOD_PLAYLIST_MAX (16u << 20)
#define MP4_CC "public, max-age=3600"
#define SEGMENT_CC "public, max-age=31536000, immutable"

/* The files of a recording directory a URL may name. */
static bool served_name(const char *f)
{
    size_t n = strlen(f);

    if (!strcmp(f, "index.m3u8") || !strcmp(f, "replay.mp4"))
        return true;
    if (n > 9 && !strncmp(f, "init-", 5) && !strcmp(f + n - 4, ".mp4"))
        return true;
    return n > 8 && !strncmp(f, "seg-", 4) && !strcmp(f + n - 4, ".m4s");
}

static const char *type_of(const char *f)
{
    size_t n = strlen(f);

    if (n > 5 && !strcmp(f + n - 5, ".m3u8"))
        return "application/vnd.apple.mpegurl";
    return "video/mp4";
}

/* Opens FILE of ROOT/NAME/ID without following links; -errno. */
static int open_file(const char *root, const char *name, const char *id, const char *file)
{
    int dfd = rec_open_dir(root, name, id), fd;

    if (dfd < 0)
        return dfd;
    fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        fd = -errno;
    close(dfd);
    return fd;
}

static enum MHD_Result text_response(struct http_server *srv, struct MHD_Connection *conn,
                                     const char *method, const char *url, unsigned status,
                                     struct bytes *body, const char *type, const char *cc)
{
    struct MHD_Response *r;

    if (body->len == 0)
        bytes_printf(body, " ");
    r = MHD_create_response_from_buffer_with_free_callback(body->len, body->data, free);
    if (!r) {
        bytes_reset(body);
        return http_reply(srv, conn, method, url, status, NULL);
    }
    body->data = NULL;
    body->len = body->cap = 0;
    http_add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    http_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
    return http_reply(srv, conn, method, url, status, r);
}

static enum MHD_Result redirect(struct http_server *srv, struct MHD_Connection *conn,
                                const char *method, const char *url, unsigned status,
                                const char *location)
{
    static const char text[] = "moved\n";
    struct MHD_Response *r =
        MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text, MHD_RESPMEM_PERSISTENT);

    if (r) {
        http_add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
        /* latest.* moves on with the next event: never cached */
        http_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL,
                        status == MHD_HTTP_FOUND ? "no-store" : "max-age=3600");
        http_add_header(r, MHD_HTTP_HEADER_LOCATION, location);
    }
    return http_reply(srv, conn, method, url, status, r);
}

/*
 * Sends file FD (taken): 200, 206 for a satisfiable single Range, 416 for an
 * unsatisfiable one, 304 for a matching If-None-Match. If-Range with another
 * validator gets the whole file.
 */
static enum MHD_Result send_file(struct http_server *srv, struct MHD_Connection *conn,
                                 const char *method, const char *url, int fd, const char *type,
                                 const char *cc)
{
    const char *range = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
    const char *if_range =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_RANGE);
    struct MHD_Response *r = NULL;
    char etag[64], cr[80];
    uint64_t start, len;
    unsigned status;
    struct stat sb;

    if (fstat(fd, &sb) < 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    }
    snprintf(etag, sizeof(etag), "\"%" PRIx64 "-%" PRIx64 "-%" PRIx64 "\"", (uint64_t)sb.st_ino,
             (uint64_t)sb.st_size,
             (uint64_t)sb.st_mtim.tv_sec * 1000000000u + (uint64_t)sb.st_mtim.tv_nsec);
    if (http_etag_matches(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      MHD_HTTP_HEADER_IF_NONE_MATCH),
                          etag)) {
        close(fd);
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (r) {
            http_add_header(r, MHD_HTTP_HEADER_ETAG, etag);
            http_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
        }
        return http_reply(srv, conn, method, url, MHD_HTTP_NOT_MODIFIED, r);
    }
    if (if_range && strcmp(if_range, etag) != 0)
        range = NULL; /* RFC 9110 13.1.5: changed since: the whole file */
    switch (http_range_parse(range, (uint64_t)sb.st_size, &start, &len)) {
    case HTTP_RANGE_UNSATISFIABLE:
        close(fd);
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        snprintf(cr, sizeof(cr), "bytes */%" PRIu64, (uint64_t)sb.st_size);
        if (r) {
            http_add_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
            http_add_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
            http_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        }
        return http_reply(srv, conn, method, url, MHD_HTTP_RANGE_NOT_SATISFIABLE, r);
    case HTTP_RANGE_OK:
        r = MHD_create_response_from_fd_at_offset64(len, fd, start);
        status = MHD_HTTP_PARTIAL_CONTENT;
        snprintf(cr, sizeof(cr), "bytes %" PRIu64 "-%" PRIu64 "/%" PRIu64, start, start + len - 1,
                 (uint64_t)sb.st_size);
        break;
    default:
        r = MHD_create_response_from_fd64((uint64_t)sb.st_size, fd);
        status = MHD_HTTP_OK;
        break;
    }
    if (!r) {
        close(fd);
        return http_reply(srv, conn, method, url, status, NULL);
    }
    if (status == MHD_HTTP_PARTIAL_CONTENT)
        http_add_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    http_add_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    http_add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    http_add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
    http_add_header(r, MHD_HTTP_HEADER_ETAG, etag);
    return http_reply(srv, conn, method, url, status, r);
}

/* A playlist of a signed stream: read, every URI signed with SQ, sent from memory. */
static enum MHD_Result send_signed_file(struct http_server *srv, struct MHD_Connection *conn,
                                        const char *method, const char *url, int fd,
                                        const char *sq)
{
    struct bytes in = {0}, out = {0};
    char chunk[16384];
    int err = 0;

    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n <= 0 || in.len + (size_t)n > VOD_PLAYLIST_MAX || bytes_append(&in, chunk, (size_t)n)) {
            err = n < 0 ? -EIO : 0;
            break;
        }
    }
    close(fd);
    if (err == 0)
        err = sign_playlist(in.data, in.len, sq, &out);
    bytes_reset(&in);
    if (err < 0) {
        bytes_reset(&out);
        return http_send_error(srv, conn, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR);
    }
    return text_response(srv, conn, method, url, MHD_HTTP_OK, &out,
                         "application/vnd.apple.mpegurl", "no-cache");
}

static void fmt_duration(double s, char *out, size_t len)
{
    long t = (long)(s + 0.5);

    snprintf(out, len, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
}

/* "20261128-031500[-2]" as "2026-11-28 03:15:00 UTC" (as is if it is not one). */
static void fmt_id(const char *id, char *out, size_t len)
{
    if (strlen(id) >= 15 && id[8] == '-')
        snprintf(out, len, "%.4s-%.2s-%.2s %.2s:%.2s:%.2s UTC", id, id + 4, id + 6, id + 9,
                 id + 11, id + 13);
    else
        snprintf(out, len, "%s", id);
}

static enum MHD_Result listing(struct http_server *srv, struct MHD_Connection *conn,
                               const char *method, const char *url, const char *name, bool json,
                               const char *sq)
{
    struct rec_info *v = NULL;
    struct bytes b = {0};
    int n = rec_list(rec_root(http_recorder(srv)), name, &v);
    const char *q = sq ? "?" : "", *qs = sq ? sq : "";
    int rc = 0;

    /* No directory (or a link): never recorded here. The JSON form is always
     * 200 (an empty list), so that pages asking it cause no 404 noise. */
    if (n < 0 && !json)
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    if (n < 0)
        n = 0;
    if (json) {
        rc |= bytes_printf(&b, "{\"name\":\"%s\",\"replays\":[", name);
        for (int i = 0; i < n; i++) {
            char date[40];

            time_iso8601(v[i].ended_ms, date, sizeof(date));
            rc |= bytes_printf(&b,
                               "%s{\"id\":\"%s\",\"ended\":\"%s\",\"duration\":%.3f,"
                               "\"segments\":%d,\"bytes\":%" PRId64 ",\"finished\":%s,"
                               "\"playlist\":\"/vod/%s/%s/index.m3u8%s%s\",\"mp4\":",
                               i ? "," : "", v[i].id, date, v[i].duration, v[i].segments,
                               v[i].bytes, v[i].finished ? "true" : "false", name, v[i].id, q, qs);
            if (v[i].has_mp4)
                rc |= bytes_printf(&b, "\"/vod/%s/%s.mp4%s%s\"}", name, v[i].id, q, qs);
            else
                rc |= bytes_printf(&b, "null}");
        }
        rc |= bytes_printf(&b, "]}\n");
    } else {
        rc |= bytes_printf(&b, "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                               "<meta name=\"viewport\" content=\"width=device-width\">"
                               "<title>Replays of %s</title></head><body>\n<h1>Replays of %s</h1>\n",
                           name, name);
        if (n == 0)
            rc |= bytes_printf(&b, "<p>No replays yet.</p>\n");
        else
            rc |= bytes_printf(&b, "<table>\n<tr><th>started</th><th>duration</th><th>size</th>"
                                   "<th>watch</th><th>download</th></tr>\n");
        for (int i = 0; i < n; i++) {
            char date[40], dur[32];

            fmt_id(v[i].id, date, sizeof(date));
            fmt_duration(v[i].duration, dur, sizeof(dur));
            rc |= bytes_printf(&b,
                               "<tr><td>%s%s</td><td>%s</td><td>%.1f MB</td>"
                               "<td><a href=\"%s/index.m3u8%s%s\">HLS</a></td><td>",
                               date, v[i].finished ? "" : " (recording)", dur,
                               (double)v[i].bytes / 1e6, v[i].id, q, qs);
            if (v[i].has_mp4)
                rc |= bytes_printf(&b, "<a href=\"%s.mp4%s%s\" download>MP4</a>", v[i].id, q, qs);
            rc |= bytes_printf(&b, "</td></tr>\n");
        }
        rc |= bytes_printf(&b, "%s</body></html>\n", n ? "</table>\n" : "");
    }
    free(v);
    if (rc) {
        bytes_reset(&b);
        return http_reply(srv, conn, method, url, MHD_HTTP_OK, NULL);
    }
    return text_response(srv, conn, method, url, MHD_HTTP_OK, &b,
                         json ? "application/json" : "text/html; charset=utf-8", "no-cache");
}

/* 302 to the newest finished replay (MP4: the newest with its MP4 ready). */
static enum MHD_Result latest(struct http_server *srv, struct MHD_Connection *conn,
                              const char *method, const char *url, const char *name, bool mp4,
                              const char *sq)
{
    char location[256], id[REC_ID_MAX];

    if (rec_latest(rec_root(http_recorder(srv)), name, mp4, id) < 0)
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    snprintf(location, sizeof(location), "/vod/%s/%s%s%s%s", name, id,
             mp4 ? ".mp4" : "/index.m3u8", sq ? "?" : "", sq ? sq : "");
    return redirect(srv, conn, method, url, MHD_HTTP_FOUND, location);
}

/* {"m3u8": URL | null, "mp4": URL | null}: cheap (no listing), always 200. */
static enum MHD_Result latest_json(struct http_server *srv, struct MHD_Connection *conn,
                                   const char *method, const char *url, const char *name,
                                   const char *sq)
{
    const char *root = rec_root(http_recorder(srv)), *q = sq ? "?" : "", *qs = sq ? sq : "";
    char id[REC_ID_MAX];
    struct bytes b = {0};
    int rc = bytes_printf(&b, "{\"m3u8\":");

    if (rec_latest(root, name, false, id) == 0)
        rc |= bytes_printf(&b, "\"/vod/%s/%s/index.m3u8%s%s\"", name, id, q, qs);
    else
        rc |= bytes_printf(&b, "null");
    rc |= bytes_printf(&b, ",\"mp4\":");
    if (rec_latest(root, name, true, id) == 0)
        rc |= bytes_printf(&b, "\"/vod/%s/%s.mp4%s%s\"}\n", name, id, q, qs);
    else
        rc |= bytes_printf(&b, "null}\n");
    if (rc) {
        bytes_reset(&b);
        return http_reply(srv, conn, method, url, MHD_HTTP_OK, NULL);
    }
    return text_response(srv, conn, method, url, MHD_HTTP_OK, &b, "application/json", "no-cache");
}

static enum MHD_Result serve_file(struct http_server *srv, struct MHD_Connection *conn,
                                  const char *method, const char *url, const char *name,
                                  const char *id, const char *file, const char *sq)
{
    bool playlist = !strcmp(file, "index.m3u8");
    int fd = open_file(rec_root(http_recorder(srv)), name, id, file);

    if (fd < 0)
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    if (playlist && sq)
        return send_signed_file(srv, conn, method, url, fd, sq);
    return send_file(srv, conn, method, url, fd, type_of(file),
                     playlist ? "no-cache" : !strcmp(file, "replay.mp4") ? MP4_CC : SEGMENT_CC);
}

enum MHD_Result http_vod_route(struct http_server *srv, struct MHD_Connection *conn,
                               const char *method, const char *url, const char *rest)
{
    char name[STREAM_NAME_MAX_LEN + 1], id[REC_ID_MAX], sigq[SIGN_QUERY_MAX];
    const char *slash = strchr(rest, '/'), *sq, *file;
    unsigned status;
    size_t n;

    if (!http_recorder(srv) || !rest[0])
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (n >= sizeof(name))
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    memcpy(name, rest, n);
    name[n] = '\0';
    if (!stream_name_valid(name))
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    if (!slash) {
        char location[STREAM_NAME_MAX_LEN + 8];

        snprintf(location, sizeof(location), "/vod/%s/", name);
        return redirect(srv, conn, method, url, MHD_HTTP_MOVED_PERMANENTLY, location);
    }
    if ((status = http_check_signed(srv, conn, name, sigq, &sq)))
        return http_send_error(srv, conn, method, url, status);
    rest = slash + 1;
    if (!rest[0] || !strcmp(rest, "index.json"))
        return listing(srv, conn, method, url, name, rest[0] != '\0', sq);
    if (!strcmp(rest, "latest.json"))
        return latest_json(srv, conn, method, url, name, sq);
    if (!strcmp(rest, "latest.m3u8") || !strcmp(rest, "latest.mp4"))
        return latest(srv, conn, method, url, name, !strcmp(rest, "latest.mp4"), sq);
    slash = strchr(rest, '/');
    n = slash ? (size_t)(slash - rest) : strlen(rest);
    if (!slash) { /* ID.mp4 */
        if (n <= 4 || n - 4 >= sizeof(id) || strcmp(rest + n - 4, ".mp4"))
            return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
        memcpy(id, rest, n - 4);
        id[n - 4] = '\0';
        file = "replay.mp4";
    } else {
        if (n >= sizeof(id))
            return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
        memcpy(id, rest, n);
        id[n] = '\0';
        file = slash + 1;
        if (!served_name(file) || strchr(file, '/'))
            return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    }
    if (!stream_name_valid(id))
        return http_send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    return serve_file(srv, conn, method, url, name, id, file, sq);
}

bool http_vod_dvr(struct http_server *srv, struct MHD_Connection *conn, const char *method,
                  const char *url, const char *stream, const char *sq, enum MHD_Result *ret)
{
    struct buf *b = NULL;
    struct bytes text = {0};

    if (rec_dvr_playlist(http_recorder(srv), stream, &b) < 0)
        return false;
    if (sq) {
        int err = sign_playlist(b->data, b->len, sq, &text);

        buf_unref(b);
        if (err < 0) {
            bytes_reset(&text);
            *ret = http_send_error(srv, conn, method, url, MHD_HTTP_INTERNAL_SERVER_ERROR);
            return true;
        }
    } else {
        int err = bytes_append(&text, b->data, b->len);

        buf_unref(b);
        if (err < 0) {
            *ret = http_reply(srv, conn, method, url, MHD_HTTP_OK, NULL);
            return true;
        }
    }
    http_observe_obj(conn, method, true, text.len); /* a DVR viewer is a viewer */
    *ret = text_response(srv, conn, method, url, MHD_HTTP_OK, &text,
                         "application/vnd.apple.mpegurl", "no-cache");
    return true;
}
