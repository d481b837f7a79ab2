/*
 * Tests for http/: a real server on 127.0.0.1 (and ::1 when available) with
 * an ephemeral port, a store filled by hand, and a tiny HTTP/1.1 client on
 * plain sockets, so that what is checked is exactly what goes over the wire.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../http/http.h"
#include "../../http/http_internal.h"
#include "../../store/store.h"
#include "../../thumb/thumb.h"
#include "harness.h"

/* ---- a tiny HTTP/1.1 client ---------------------------------------------- */

struct client {
    int fd;
    struct bytes in; /* received, not yet consumed */
};

struct response {
    int status;
    char head[8192]; /* status line and headers, NUL-terminated */
    struct bytes body;
    long content_length; /* -1 if absent */
};

static int client_open(struct client *c, int family, int port)
{
    struct timeval tv = {10, 0};
    int fd = socket(family, SOCK_STREAM, 0);

    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (fd < 0)
        return -errno;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port)};

        a.sin6_addr = in6addr_loopback;
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            goto fail;
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};

        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0)
            goto fail;
    }
    c->fd = fd;
    return 0;
fail:
    close(fd);
    return -errno;
}

static void client_close(struct client *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    bytes_reset(&c->in);
}

static int send_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads more bytes into c->in; returns the count, 0 at EOF, -1 on error. */
static ssize_t fill(struct client *c, size_t max)
{
    uint8_t tmp[65536];
    ssize_t n;

    if (max > sizeof(tmp))
        max = sizeof(tmp);
    do
        n = recv(c->fd, tmp, max, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0 && bytes_append(&c->in, tmp, (size_t)n) != 0)
        return -1;
    return n;
}

static void consume(struct client *c, size_t n)
{
    memmove(c->in.data, c->in.data + n, c->in.len - n);
    c->in.len -= n;
}

/* Copies header NAME's value into OUT; returns OUT, or NULL if absent. */
static const char *header(const struct response *r, const char *name, char *out, size_t outlen)
{
    size_t nlen = strlen(name);

    for (const char *line = strstr(r->head, "\r\n"); line; line = strstr(line, "\r\n")) {
        const char *end;

        line += 2;
        if (strncasecmp(line, name, nlen) == 0 && line[nlen] == ':') {
            const char *v = line + nlen + 1;
            size_t len;

            while (*v == ' ')
                v++;
            end = strstr(v, "\r\n");
            len = end ? (size_t)(end - v) : strlen(v);
            if (len >= outlen)
                len = outlen - 1;
            memcpy(out, v, len);
            out[len] = '\0';
            return out;
        }
    }
    return NULL;
}

/* Reads the status line and headers of one response into R (body not read). */
static int read_head(struct client *c, struct response *r)
{
    uint8_t *end = NULL;
    char cl[32];
    size_t hlen;

    memset(r, 0, sizeof(*r));
    r->status = -1;
    r->content_length = -1;
    for (;;) {
        if (c->in.len >= 4)
            end = memmem(c->in.data, c->in.len, "\r\n\r\n", 4);
        if (end)
            break;
        if (c->in.len > sizeof(r->head) || fill(c, sizeof(r->head)) <= 0)
            return -1;
    }
    hlen = (size_t)(end - c->in.data) + 4;
    if (hlen >= sizeof(r->head))
        return -1;
    memcpy(r->head, c->in.data, hlen);
    r->head[hlen] = '\0';
    consume(c, hlen);
    if (sscanf(r->head, "HTTP/1.1 %d", &r->status) != 1)
        return -1;
    if (header(r, "Content-Length", cl, sizeof(cl)))
        r->content_length = atol(cl);
    return 0;
}

/* Reads LEN body bytes (all of them, however they arrive) into r->body. */
static int read_body(struct client *c, struct response *r, size_t len)
{
    while (c->in.len < len)
        if (fill(c, len - c->in.len) <= 0)
            return -1;
    if (bytes_append(&r->body, c->in.data, len) != 0)
        return -1;
    consume(c, len);
    return 0;
}

/* Sends one request and reads the whole response. Returns 0 or -1. */
static int request(struct client *c, const char *method, const char *path, const char *extra,
                   struct response *r)
{
    char req[2048];
    bool no_body;

    /* EXTRA is more header lines; if it holds the blank line, a body follows it. */
    snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s", method, path,
             extra ? extra : "", extra && strstr(extra, "\r\n\r\n") ? "" : "\r\n");
    if (send_all(c->fd, req, strlen(req)) != 0 || read_head(c, r) != 0)
        return -1;
    no_body =
        strcmp(method, "HEAD") == 0 || r->status == 204 || r->status == 304 || r->status / 100 == 1;
    if (no_body)
        return 0;
    if (r->content_length < 0)
        return -1; /* the server always sends a length for buffers */
    return read_body(c, r, (size_t)r->content_length);
}

static void response_reset(struct response *r)
{
    bytes_reset(&r->body);
}

/* One request on a fresh connection. */
static int fetch(int port, const char *method, const char *path, const char *extra,
                 struct response *r)
{
    struct client c;
    int rc;

    if (client_open(&c, AF_INET, port) != 0)
        return -1;
    rc = request(&c, method, path, extra, r);
    client_close(&c);
    return rc;
}

static bool header_is(const struct response *r, const char *name, const char *want)
{
    char v[512];

    if (!header(r, name, v, sizeof(v))) {
        fprintf(stderr, "  missing header %s\n", name);
        return false;
    }
    if (strcmp(v, want) != 0) {
        fprintf(stderr, "  %s: \"%s\", want \"%s\"\n", name, v, want);
        return false;
    }
    return true;
}

static bool body_is(const struct response *r, const void *data, size_t len)
{
    return r->body.len == len && (len == 0 || memcmp(r->body.data, data, len) == 0);
}

/* ---- fixture ------------------------------------------------------------- */

#define PLAYLIST                                                                                   \
    "#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-TARGETDURATION:2\n#EXT-X-MAP:URI=\"init-1.mp4\"\n"          \
    "#EXTINF:2.000,\nseg-1-0.m4s\n"

static const char hlsjs_text[] = "/* pretend hls.js */ var Hls = {};\n";

struct fixture {
    struct cfg cfg;
    struct store *st;
    struct store_stream *ss;
    struct http_server *srv;
    int port;
    struct buf *playlist, *init, *seg; /* the test's own references */
    char js_path[64];
};

static void base_cfg(struct cfg *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    snprintf(cfg->rtmp_listen, sizeof(cfg->rtmp_listen), ":1935");
    snprintf(cfg->rtmp_app, sizeof(cfg->rtmp_app), "live");
    cfg->rtmp_max_connections = 64;
    snprintf(cfg->http_listen, sizeof(cfg->http_listen), "127.0.0.1:0");
    cfg->http_threads = 2;
    snprintf(cfg->http_cors_origin, sizeof(cfg->http_cors_origin), "*");
    cfg->http_playlist_max_age = 1;
    cfg->hls_segment_seconds = 2;
    cfg->hls_part_seconds = 0.333;
}

static struct buf *pattern_buf(size_t len, unsigned seed)
{
    struct buf *b = buf_new(len);

    for (size_t i = 0; b && i < len; i++)
        b->data[i] = (uint8_t)((i * 31 + seed) & 0xff);
    return b;
}

static int fixture_up(struct fixture *f)
{
    FILE *js;
    int fd;

    memset(f, 0, sizeof(*f));
    base_cfg(&f->cfg);
    snprintf(f->js_path, sizeof(f->js_path), "/tmp/onair-test-hlsjs-XXXXXX");
    fd = mkstemp(f->js_path);
    js = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!js)
        return -1;
    fputs(hlsjs_text, js);
    fclose(js);
    snprintf(f->cfg.http_player_js, sizeof(f->cfg.http_player_js), "%s", f->js_path);

    f->st = store_new();
    if (!f->st || store_claim(f->st, "show", &f->ss) != 0)
        return -1;
    f->playlist = buf_new_copy(PLAYLIST, strlen(PLAYLIST));
    f->init = pattern_buf(700, 1);
    f->seg = pattern_buf(300000, 2);
    if (!f->playlist || !f->init || !f->seg)
        return -1;
    store_put(f->ss, "index.m3u8", STORE_PLAYLIST, buf_ref(f->playlist));
    store_put(f->ss, "init-1.mp4", STORE_INIT, buf_ref(f->init));
    store_put(f->ss, "seg-1-0.m4s", STORE_SEGMENT, buf_ref(f->seg));
    if (http_server_new(&f->cfg, f->st, &f->srv) != 0)
        return -1;
    f->port = http_server_port(f->srv);
    return f->port > 0 ? 0 : -1;
}

static void fixture_down(struct fixture *f)
{
    http_server_free(f->srv);
    if (f->ss)
        store_release(f->ss, 0);
    store_free(f->st);
    buf_unref(f->playlist);
    buf_unref(f->init);
    buf_unref(f->seg);
    unlink(f->js_path);
}

/* Waits (up to 5 s) for B's count to reach WANT: the server drops its reference
 * when it finishes the request, a moment after the client has the last byte. */
static int wait_refs(struct buf *b, int want)
{
    struct timespec ts = {0, 1000 * 1000};

    for (int i = 0; i < 5000 && atomic_load(&b->refs) != want; i++)
        nanosleep(&ts, NULL);
    return atomic_load(&b->refs);
}

static struct fixture fx;

/* ---- tests --------------------------------------------------------------- */

static void test_healthz_and_pages(void)
{
    struct response r;
    char v[256];

    CHECK_EQ_INT(fetch(fx.port, "GET", "/healthz", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, "ok\n", 3));
    CHECK(header_is(&r, "Content-Type", "text/plain; charset=utf-8"));
    CHECK(header_is(&r, "Content-Length", "3"));
    response_reset(&r);

    CHECK_EQ_INT(fetch(fx.port, "GET", "/", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(header_is(&r, "Content-Type", "text/html; charset=utf-8"));
    CHECK(r.body.len > 0 && memmem(r.body.data, r.body.len, "/streams.json", 13) != NULL);
    CHECK(r.body.len > 0 && memmem(r.body.data, r.body.len, ":1935/live</code>", 17) != NULL);
    CHECK(r.body.len > 0 && memmem(r.body.data, r.body.len, "{{", 2) == NULL);
    response_reset(&r);

    /* /live/NAME redirects to the player page at /live/NAME/. */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 301);
    CHECK(header_is(&r, "Location", "/live/show/"));
    response_reset(&r);

    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(header_is(&r, "Content-Type", "text/html; charset=utf-8"));
    CHECK(r.body.len > 0 && memmem(r.body.data, r.body.len, "/static/hls.min.js", 18) != NULL);
    CHECK(r.body.len > 0 && memmem(r.body.data, r.body.len, "index.m3u8", 10) != NULL);
    CHECK(header(&r, "Access-Control-Allow-Origin", v, sizeof(v)) != NULL);
    response_reset(&r);

    CHECK_EQ_INT(fetch(fx.port, "GET", "/static/hls.min.js", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, hlsjs_text, strlen(hlsjs_text)));
    CHECK(header_is(&r, "Content-Type", "application/javascript; charset=utf-8"));
    CHECK(header_is(&r, "Cache-Control", "public, max-age=3600"));
    response_reset(&r);
}

static void test_objects(void)
{
    struct response r;
    char len[32];

    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index.m3u8", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, PLAYLIST, strlen(PLAYLIST)));
    CHECK(header_is(&r, "Content-Type", "application/vnd.apple.mpegurl"));
    CHECK(header_is(&r, "Cache-Control", "max-age=1"));
    CHECK(header_is(&r, "Access-Control-Allow-Origin", "*"));
    CHECK(header_is(&r, "Access-Control-Expose-Headers", "Age, Date, ETag"));
    snprintf(len, sizeof(len), "%zu", strlen(PLAYLIST));
    CHECK(header_is(&r, "Content-Length", len));
    response_reset(&r);

    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/init-1.mp4", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, fx.init->data, fx.init->len));
    CHECK(header_is(&r, "Content-Type", "video/mp4"));
    CHECK(header_is(&r, "Cache-Control", "public, max-age=31536000, immutable"));
    response_reset(&r);

    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/seg-1-0.m4s", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, fx.seg->data, fx.seg->len));
    CHECK(header_is(&r, "Content-Type", "video/mp4"));
    CHECK(header_is(&r, "Cache-Control", "public, max-age=31536000, immutable"));
    CHECK(header_is(&r, "Content-Length", "300000"));
    response_reset(&r);

    /* Percent-escapes of allowed characters are decoded. */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index%2Em3u8", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    response_reset(&r);

    /* Query strings are ignored (cache busters, future _HLS_msn). */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index.m3u8?x=1", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    response_reset(&r);
}

static void test_etag(void)
{
    struct response r;
    char etag[64], inm[128];

    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index.m3u8", NULL, &r), 0);
    CHECK(header(&r, "ETag", etag, sizeof(etag)) != NULL);
    response_reset(&r);

    snprintf(inm, sizeof(inm), "If-None-Match: %s\r\n", etag);
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index.m3u8", inm, &r), 0);
    CHECK_EQ_INT(r.status, 304);
    CHECK(header_is(&r, "ETag", etag));
    CHECK(header_is(&r, "Cache-Control", "max-age=1"));
    {
        /* RFC 9110 8.6: a 304's Content-Length is the 200's, never 0. */
        char len[32];

        snprintf(len, sizeof(len), "%zu", strlen(PLAYLIST));
        CHECK(header_is(&r, "Content-Length", len));
        CHECK_EQ_INT(r.body.len, 0);
    }
    response_reset(&r);

    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index.m3u8", "If-None-Match: \"other\"\r\n", &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    response_reset(&r);

    /* Immutable objects carry no ETag. */
    CHECK_EQ_INT(fetch(fx.port, "HEAD", "/live/show/init-1.mp4", NULL, &r), 0);
    CHECK(header(&r, "ETag", etag, sizeof(etag)) == NULL);
    response_reset(&r);
}

static void test_head_and_keepalive(void)
{
    struct client c;
    struct response r;
    char v[64];

    CHECK_EQ_INT(client_open(&c, AF_INET, fx.port), 0);

    /* HEAD: same headers as GET, no body. The next response on the same
     * connection parsing cleanly proves no body bytes were sent. */
    CHECK_EQ_INT(request(&c, "HEAD", "/live/show/seg-1-0.m4s", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(header_is(&r, "Content-Length", "300000"));
    CHECK(header_is(&r, "Content-Type", "video/mp4"));
    CHECK(header(&r, "Connection", v, sizeof(v)) == NULL || strcasecmp(v, "close") != 0);
    response_reset(&r);

    CHECK_EQ_INT(request(&c, "GET", "/live/show/index.m3u8", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, PLAYLIST, strlen(PLAYLIST)));
    CHECK(header(&r, "Connection", v, sizeof(v)) == NULL || strcasecmp(v, "close") != 0);
    response_reset(&r);

    CHECK_EQ_INT(request(&c, "GET", "/live/show/seg-1-0.m4s", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, fx.seg->data, fx.seg->len));
    response_reset(&r);

    /* A body on a GET is read and ignored. */
    CHECK_EQ_INT(request(&c, "GET", "/healthz", "Content-Length: 3\r\n\r\nabc", &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(body_is(&r, "ok\n", 3));
    response_reset(&r);

    /* Errors keep the connection too. */
    CHECK_EQ_INT(request(&c, "GET", "/live/show/missing.m4s", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 404);
    response_reset(&r);
    CHECK_EQ_INT(request(&c, "GET", "/healthz", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(header(&r, "Connection", v, sizeof(v)) == NULL || strcasecmp(v, "close") != 0);
    response_reset(&r);
    client_close(&c);

    /* HEAD on the page routes too. */
    CHECK_EQ_INT(fetch(fx.port, "HEAD", "/healthz", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(header_is(&r, "Content-Length", "3"));
    response_reset(&r);
}

static void test_errors(void)
{
    static const struct {
        const char *path;
        int status;
    } cases[] = {
        {"/live/nostream/index.m3u8", 404},
        {"/live/show/nothing.m4s", 404},
        {"/live/show/a/b", 404},
        {"/live/", 404},
        {"/nope", 404},
        {"/live/../etc/passwd", 400},
        {"/live/show/../show/index.m3u8", 400},
        {"/live/%2e%2e/show/index.m3u8", 400},
        {"/live/show/%2E%2E", 400},
        {"/live/show//index.m3u8", 400},
        {"//live/show/index.m3u8", 400},
        {"/live/show/index.m3u8%00.txt", 400},
        {"/live/show/a%00", 400},
        {"/live/show/.hidden", 400},
        {"/live/show/bad$name", 400},
        {"/live/sh%C3%B6w/index.m3u8", 400},
    };
    struct response r;

    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        CHECK_EQ_INT(fetch(fx.port, "GET", cases[i].path, NULL, &r), 0);
        if (r.status != cases[i].status)
            fprintf(stderr, "  %s -> %d\n", cases[i].path, r.status);
        CHECK_EQ_INT(r.status, cases[i].status);
        CHECK(header_is(&r, "Cache-Control", "no-store"));
        CHECK(header_is(&r, "Access-Control-Allow-Origin", "*"));
        response_reset(&r);
    }

    CHECK_EQ_INT(
        fetch(fx.port, "POST", "/live/show/index.m3u8", "Content-Length: 5\r\n\r\nhello", &r), 0);
    CHECK_EQ_INT(r.status, 405);
    CHECK(header_is(&r, "Allow", "GET, HEAD, OPTIONS"));
    response_reset(&r);

    CHECK_EQ_INT(fetch(fx.port, "DELETE", "/live/show/index.m3u8", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 405);
    CHECK(header_is(&r, "Allow", "GET, HEAD, OPTIONS"));
    response_reset(&r);

    /* The object is still there. */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index.m3u8", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    response_reset(&r);
}

static void test_options(void)
{
    struct response r;

    CHECK_EQ_INT(fetch(fx.port, "OPTIONS", "/live/show/index.m3u8",
                       "Origin: http://example.test\r\n"
                       "Access-Control-Request-Method: GET\r\n"
                       "Access-Control-Request-Headers: range, x-custom\r\n",
                       &r),
                 0);
    CHECK_EQ_INT(r.status, 204);
    CHECK(header_is(&r, "Allow", "GET, HEAD, OPTIONS"));
    CHECK(header_is(&r, "Access-Control-Allow-Origin", "*"));
    CHECK(header_is(&r, "Access-Control-Allow-Methods", "GET, HEAD, OPTIONS"));
    CHECK(header_is(&r, "Access-Control-Allow-Headers", "range, x-custom"));
    CHECK_EQ_INT(r.body.len, 0);
    response_reset(&r);
}

static void test_refcounts(void)
{
    struct response r;

    /*
     * The store and the test hold one each, plus one held by the response
     * the server prepared once for the object (kept with it, reused by every
     * request): requests come and go without adding any.
     */
    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(fetch(fx.port, i == 1 ? "HEAD" : "GET", "/live/show/seg-1-0.m4s", NULL, &r),
                     0);
        CHECK_EQ_INT(r.status, 200);
        response_reset(&r);
    }
    CHECK_EQ_INT(wait_refs(fx.seg, 3), 3);
    CHECK_EQ_INT(wait_refs(fx.playlist, 3), 3);
    CHECK_EQ_INT(wait_refs(fx.init, 3), 3);
}

/* A response in flight keeps the bytes it started with when the object is replaced. */
static void test_replace_in_flight(void)
{
    const size_t big = 24u << 20;
    struct buf *old = pattern_buf(big, 5), *next = pattern_buf(big, 77);
    struct client c;
    struct response r;
    int rcvbuf = 16384;

    CHECK(old && next);
    if (!old || !next)
        return;
    store_put(fx.ss, "seg-1-1.m4s", STORE_SEGMENT, buf_ref(old));
    CHECK_EQ_INT(client_open(&c, AF_INET, fx.port), 0);
    setsockopt(c.fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    {
        static const char req[] = "GET /live/show/seg-1-1.m4s HTTP/1.1\r\nHost: x\r\n\r\n";

        CHECK_EQ_INT(send_all(c.fd, req, sizeof(req) - 1), 0);
    }
    CHECK_EQ_INT(read_head(&c, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.content_length, (long)big);
    CHECK(fill(&c, 4096) > 0);

    /* Replace, then remove: the store lets go, the response still holds it. */
    store_put(fx.ss, "seg-1-1.m4s", STORE_SEGMENT, buf_ref(next));
    CHECK_EQ_INT(atomic_load(&old->refs), 2); /* test + in-flight response */
    store_remove(fx.ss, "seg-1-1.m4s");
    CHECK_EQ_INT(atomic_load(&next->refs), 1);

    CHECK_EQ_INT(read_body(&c, &r, big), 0);
    CHECK(body_is(&r, old->data, old->len));
    response_reset(&r);
    client_close(&c);
    CHECK_EQ_INT(wait_refs(old, 1), 1);
    buf_unref(old);
    buf_unref(next);
}

struct hammer {
    int port;
    int ok;
};

static void *hammer_thread(void *arg)
{
    struct hammer *h = arg;
    struct client c;
    struct response r;

    if (client_open(&c, AF_INET, h->port) != 0)
        return NULL;
    for (int i = 0; i < 40; i++) {
        const char *path = i % 2 ? "/live/show/seg-1-0.m4s" : "/live/show/index.m3u8";

        if (request(&c, "GET", path, NULL, &r) != 0)
            break;
        if (r.status == 200 && (i % 2 ? body_is(&r, fx.seg->data, fx.seg->len)
                                      : body_is(&r, PLAYLIST, strlen(PLAYLIST))))
            h->ok++;
        response_reset(&r);
    }
    client_close(&c);
    return NULL;
}

/* Parallel keep-alive clients while the playlist is being replaced (TSan food). */
static void test_parallel(void)
{
    struct hammer h[4];
    pthread_t t[4];

    for (int i = 0; i < 4; i++) {
        h[i] = (struct hammer){.port = fx.port};
        CHECK_EQ_INT(pthread_create(&t[i], NULL, hammer_thread, &h[i]), 0);
    }
    for (int i = 0; i < 50; i++)
        store_put(fx.ss, "index.m3u8", STORE_PLAYLIST, buf_ref(fx.playlist));
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(h[i].ok, 40);
    }
    /* Replaced objects took their prepared responses with them: the store's
     * current object, its one prepared response and the test remain. */
    {
        struct response r;

        CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/index.m3u8", NULL, &r), 0);
        response_reset(&r);
    }
    CHECK_EQ_INT(wait_refs(fx.seg, 3), 3);
    CHECK_EQ_INT(wait_refs(fx.playlist, 3), 3);
}

/* ---- LL-HLS delivery directives ---------------------------------------------- */

static void test_hls_query(void)
{
    struct hls_query q;

    CHECK_EQ_INT(hls_query_parse(NULL, NULL, NULL, &q), 0);
    CHECK(!q.has_msn && !q.has_part && !q.skip);
    CHECK_EQ_INT(hls_query_parse("12", "3", NULL, &q), 0);
    CHECK(q.has_msn && q.msn == 12 && q.has_part && q.part == 3);
    CHECK_EQ_INT(hls_query_parse("0", NULL, "YES", &q), 0);
    CHECK(q.has_msn && q.msn == 0 && !q.has_part && q.skip && !q.skip_v2);
    CHECK_EQ_INT(hls_query_parse(NULL, NULL, "v2", &q), 0);
    CHECK(q.skip && q.skip_v2);
    CHECK_EQ_INT(hls_query_parse("140737488355327", "65534", NULL, &q), 0); /* the maxima */
    /* bad values */
    static const char *const bad_msn[] = {"-1", "abc", "", " 1", "1 ", "+1", "1.5", "0x10",
                                          "140737488355328", "99999999999999999999999"};
    for (size_t i = 0; i < ARRAY_SIZE(bad_msn); i++)
        CHECK_EQ_INT(hls_query_parse(bad_msn[i], NULL, NULL, &q), -EINVAL);
    CHECK_EQ_INT(hls_query_parse(NULL, "1", NULL, &q), -EINVAL); /* part without msn */
    CHECK_EQ_INT(hls_query_parse("1", "65535", NULL, &q), -EINVAL);
    CHECK_EQ_INT(hls_query_parse("1", "-2", NULL, &q), -EINVAL);
    CHECK_EQ_INT(hls_query_parse("1", NULL, "yes", &q), -EINVAL);
    CHECK_EQ_INT(hls_query_parse("1", NULL, "NO", &q), -EINVAL);
}

struct blocked {
    int port;
    const char *path;
    struct response r;
    int rc;
    atomic_bool done;
};

static void *blocked_thread(void *arg)
{
    struct blocked *b = arg;

    b->rc = fetch(b->port, "GET", b->path, NULL, &b->r);
    atomic_store(&b->done, true);
    return NULL;
}

/* Over HTTP, against the store: a blocking reload and a preload-hinted part are
 * held until the store's progress reaches them, then answered at once. */
static void test_blocking(void)
{
    struct blocked pl = {.port = fx.port, .path = "/live/show/media.m3u8?_HLS_msn=0&_HLS_part=1"};
    struct blocked part = {.port = fx.port, .path = "/live/show/part-1-0-1.m4s"};
    struct timespec ts = {0, 200 * 1000 * 1000};
    struct buf *media = buf_new_copy(PLAYLIST, strlen(PLAYLIST));
    struct buf *p1 = pattern_buf(5000, 9);
    pthread_t t1, t2;
    struct response r;

    /* bad directives and a request too far ahead: 400 at once */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/media.m3u8?_HLS_part=1", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 400);
    response_reset(&r);
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/media.m3u8?_HLS_msn=abc", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 400);
    response_reset(&r);
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/media.m3u8?_HLS_msn=3", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 400);
    response_reset(&r);
    /* an unknown stream is not waited for */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/nope/media.m3u8?_HLS_msn=0", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 404);
    response_reset(&r);

    CHECK_EQ_INT(pthread_create(&t1, NULL, blocked_thread, &pl), 0);
    CHECK_EQ_INT(pthread_create(&t2, NULL, blocked_thread, &part), 0);
    nanosleep(&ts, NULL);
    CHECK(!atomic_load(&pl.done) && !atomic_load(&part.done)); /* held */
    CHECK_EQ_INT(store_waiting_count(fx.st), 2);
    /* part 0 does not release a request for part 1 */
    store_put(fx.ss, "media.m3u8", STORE_PLAYLIST, buf_ref(media));
    store_progress(fx.ss, STORE_KEY(0, 0));
    nanosleep(&ts, NULL);
    CHECK(!atomic_load(&pl.done) && !atomic_load(&part.done));
    store_put(fx.ss, "part-1-0-1.m4s", STORE_PART, buf_ref(p1));
    store_progress(fx.ss, STORE_KEY(0, 1));
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    CHECK_EQ_INT(pl.rc, 0);
    CHECK_EQ_INT(pl.r.status, 200);
    CHECK(body_is(&pl.r, PLAYLIST, strlen(PLAYLIST)));
    CHECK_EQ_INT(part.rc, 0);
    CHECK_EQ_INT(part.r.status, 200);
    CHECK(body_is(&part.r, p1->data, p1->len));
    CHECK_EQ_INT(store_waiting_count(fx.st), 0);
    response_reset(&pl.r);
    response_reset(&part.r);

    /* reached already: answered without waiting */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/media.m3u8?_HLS_msn=0&_HLS_part=0", NULL, &r),
                 0);
    CHECK_EQ_INT(r.status, 200);
    response_reset(&r);

    /* gzip when asked for and stored; identity otherwise */
    {
        struct buf *z = pattern_buf(100, 3);

        store_put(fx.ss, "media.m3u8|gz", STORE_PLAYLIST, buf_ref(z));
        CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/media.m3u8",
                           "Accept-Encoding: deflate, gzip;q=0.5\r\n", &r),
                     0);
        CHECK(header_is(&r, "Content-Encoding", "gzip") && body_is(&r, z->data, z->len));
        CHECK(header_is(&r, "Vary", "Accept-Encoding"));
        response_reset(&r);
        CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/media.m3u8", "Accept-Encoding: gzip;q=0\r\n",
                           &r),
                     0);
        CHECK(!header(&r, "Content-Encoding", (char[8]){0}, 8) &&
              body_is(&r, PLAYLIST, strlen(PLAYLIST)));
        CHECK(header_is(&r, "Vary", "Accept-Encoding"));
        response_reset(&r);
        /* the internal names are not reachable */
        CHECK_EQ_INT(fetch(fx.port, "GET", "/live/show/media.m3u8|gz", NULL, &r), 0);
        CHECK_EQ_INT(r.status, 400);
        response_reset(&r);
        store_remove(fx.ss, "media.m3u8|gz");
        buf_unref(z);
    }
    store_remove(fx.ss, "media.m3u8");
    store_remove(fx.ss, "part-1-0-1.m4s");
    buf_unref(media);
    buf_unref(p1);
}

/* A held request is answered when its stream ends, and shutdown with requests
 * held completes promptly (each answered or closed). */
static void test_blocking_end(void)
{
    struct cfg cfg;
    struct http_server *srv = NULL;
    struct store *st = store_new();
    struct store_stream *ss;
    struct blocked b[20];
    pthread_t t[20];
    struct timespec ts = {0, 200 * 1000 * 1000};
    int port;

    base_cfg(&cfg);
    CHECK(st && store_claim(st, "s", &ss) == 0);
    CHECK_EQ_INT(http_server_new(&cfg, st, &srv), 0);
    port = http_server_port(srv);
    for (int i = 0; i < 20; i++) {
        b[i] = (struct blocked){.port = port,
                                .path = i < 10 ? "/live/s/media.m3u8?_HLS_msn=1"
                                               : "/live/s/media.m3u8"};
        CHECK_EQ_INT(pthread_create(&t[i], NULL, blocked_thread, &b[i]), 0);
    }
    for (int i = 0; i < 50 && store_waiting_count(st) < 20; i++)
        nanosleep(&ts, NULL);
    CHECK_EQ_INT(store_waiting_count(st), 20);
    /* the stream ends before anything was published: each held request gets 404 */
    store_release(ss, 60000);
    for (int i = 0; i < 20; i++) {
        pthread_join(t[i], NULL);
        CHECK_EQ_INT(b[i].rc, 0);
        CHECK_EQ_INT(b[i].r.status, 404);
        response_reset(&b[i].r);
    }
    /* requests held at shutdown: the server still stops, and they end */
    CHECK_EQ_INT(store_claim(st, "s", &ss), 0);
    for (int i = 0; i < 5; i++) {
        b[i] = (struct blocked){.port = port, .path = "/live/s/media.m3u8?_HLS_msn=0"};
        CHECK_EQ_INT(pthread_create(&t[i], NULL, blocked_thread, &b[i]), 0);
    }
    for (int i = 0; i < 50 && store_waiting_count(st) < 5; i++)
        nanosleep(&ts, NULL);
    CHECK_EQ_INT(store_waiting_count(st), 5);
    http_server_free(srv);
    for (int i = 0; i < 5; i++) {
        pthread_join(t[i], NULL);
        CHECK(b[i].rc != 0 || b[i].r.status == 503);
        response_reset(&b[i].r);
    }
    CHECK_EQ_INT(store_waiting_count(st), 0);
    store_release(ss, 0);
    store_sweep(st);
    store_free(st);
}

/* No CORS origin, playlist max-age 0, no hls.js, IPv6 loopback. */
static void test_second_config(void)
{
    struct cfg cfg;
    struct http_server *srv = NULL;
    struct store *st = store_new();
    struct store_stream *ss;
    struct client c;
    struct response r;
    char v[64];
    int port;

    base_cfg(&cfg);
    cfg.http_cors_origin[0] = '\0';
    cfg.http_playlist_max_age = 0;
    cfg.http_threads = 1;
    /* A configured hls.min.js that cannot be read is a start-up error... */
    snprintf(cfg.http_player_js, sizeof(cfg.http_player_js), "/nonexistent/hls.min.js");
    CHECK_EQ_INT(http_server_new(&cfg, st, &srv), -ENOENT);
    CHECK(srv == NULL);
    /* ...one found nowhere in the usual places is a 404. */
    cfg.http_player_js[0] = '\0';
    setenv("ONAIR_HLSJS", "/nonexistent/hls.min.js", 1);
    CHECK_EQ_INT(store_claim(st, "a_b-c.1", &ss), 0);
    store_put(ss, "index.m3u8", STORE_PLAYLIST, buf_new_copy(PLAYLIST, strlen(PLAYLIST)));

    CHECK_EQ_INT(http_server_new(&cfg, st, &srv), 0);
    port = http_server_port(srv);
    CHECK(port > 0);

    CHECK_EQ_INT(fetch(port, "GET", "/live/a_b-c.1/index.m3u8", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(header_is(&r, "Cache-Control", "no-cache"));
    CHECK(header(&r, "Access-Control-Allow-Origin", v, sizeof(v)) == NULL);
    response_reset(&r);

    CHECK_EQ_INT(fetch(port, "GET", "/static/hls.min.js", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 404);
    response_reset(&r);

    CHECK_EQ_INT(fetch(port, "OPTIONS", "*", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 204);
    CHECK(header(&r, "Access-Control-Allow-Origin", v, sizeof(v)) == NULL);
    response_reset(&r);
    http_server_free(srv);

    /* IPv6 loopback, if this machine has it. */
    snprintf(cfg.http_listen, sizeof(cfg.http_listen), "[::1]:0");
    srv = NULL;
    if (http_server_new(&cfg, st, &srv) == 0) {
        port = http_server_port(srv);
        CHECK(port > 0);
        CHECK_EQ_INT(client_open(&c, AF_INET6, port), 0);
        CHECK_EQ_INT(request(&c, "GET", "/live/a_b-c.1/index.m3u8", NULL, &r), 0);
        CHECK_EQ_INT(r.status, 200);
        CHECK(body_is(&r, PLAYLIST, strlen(PLAYLIST)));
        response_reset(&r);
        client_close(&c);
        http_server_free(srv);
    } else {
        fprintf(stderr, "  (no IPv6 loopback here: skipped [::1])\n");
    }

    /* A bad listen address fails cleanly. */
    snprintf(cfg.http_listen, sizeof(cfg.http_listen), "no-port");
    srv = NULL;
    CHECK(http_server_new(&cfg, st, &srv) < 0);
    CHECK(srv == NULL);

    store_release(ss, 0);
    store_free(st);
}

/* GET /streams.json lists claimed streams with info and a playlist, as JSON. */
static void test_streams_json(void)
{
    struct store_stream_info info = {.live_since_ms = 1700000000123, .width = 640, .height = 360};
    struct response r;
    static const char listed[] =
        "\"streams\":[{\"name\":\"show\",\"url\":\"/live/show/\",\"playlist\":"
        "\"/live/show/index.m3u8\",\"live_since\":\"2023-11-14T22:13:20.123Z\",\"codecs\":"
        "\"avc1.64001e,mp4a.40.2\",\"width\":640,\"height\":360}]}\n";
    static const char thumb_every[] = "}],\"thumbnail_interval_s\":7}\n";

    /* "show" has a playlist but no info yet: not listed. */
    CHECK_EQ_INT(fetch(fx.port, "GET", "/streams.json", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(header_is(&r, "Content-Type", "application/json"));
    CHECK(header_is(&r, "Cache-Control", "no-cache"));
    CHECK(r.body.len > 0 && memmem(r.body.data, r.body.len, "\"streams\":[]}\n", 14) != NULL);
    CHECK(r.body.len > 8 && memcmp(r.body.data, "{\"now\":\"", 8) == 0);
    response_reset(&r);

    snprintf(info.codecs, sizeof(info.codecs), "avc1.64001e,mp4a.40.2");
    store_set_info(fx.ss, &info);
    CHECK_EQ_INT(fetch(fx.port, "GET", "/streams.json", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 200);
    CHECK(r.body.len > sizeof(listed) &&
          memcmp(r.body.data + r.body.len - (sizeof(listed) - 1), listed, sizeof(listed) - 1) == 0);
    response_reset(&r);

    /* With thumbnails on: the refresh interval; no thumb.jpg before one is made. */
    CHECK_EQ_INT(thumb_start(7000), 0);
    CHECK_EQ_INT(fetch(fx.port, "GET", "/streams.json", NULL, &r), 0);
    CHECK(memmem(r.body.data, r.body.len, thumb_every, strlen(thumb_every)) != NULL);
    CHECK(memmem(r.body.data, r.body.len, "thumbnail\"", 10) == NULL);
    response_reset(&r);
    thumb_stop();

    CHECK_EQ_INT(fetch(fx.port, "DELETE", "/streams.json", NULL, &r), 0);
    CHECK_EQ_INT(r.status, 405);
    response_reset(&r);
}

/* The front page template: placeholders filled HTML-escaped; typos refused. */
static void test_template(void)
{
    const struct http_template_var vars[] = {{"A", "x<y>&\"'"}, {"BB", "2"}};
    struct bytes out = {0};
    static const char good[] = "<p>{{A}}:{{BB}}{{BB}}</p>";

    CHECK_EQ_INT(http_render_template(good, strlen(good), vars, 2, &out), 0);
    CHECK(out.len == strlen("<p>x&lt;y&gt;&amp;&quot;&#39;:22</p>") &&
          memcmp(out.data, "<p>x&lt;y&gt;&amp;&quot;&#39;:22</p>", out.len) == 0);
    bytes_reset(&out);
    CHECK_EQ_INT(http_render_template("{{C}}", 5, vars, 2, &out), -EINVAL);
    bytes_reset(&out);
    CHECK_EQ_INT(http_render_template("a {{A", 5, vars, 2, &out), -EINVAL);
    bytes_reset(&out);
    CHECK_EQ_INT(http_render_template("no braces } {", 13, vars, 2, &out), 0);
    CHECK(out.len == 13);
    bytes_reset(&out);
}

/* http.redirect_listen's Location: the host without its port, the HTTPS port, the raw URI. */
static void test_redirect_location(void)
{
    static const struct {
        const char *host, *uri;
        int port;
        int rc;
        const char *want;
    } cases[] = {
        {"example.org", "/live/show/?exp=1&sig=ab", 443, 0,
         "https://example.org/live/show/?exp=1&sig=ab"},
        {"example.org:80", "/", 443, 0, "https://example.org/"},
        {"example.org:8080", "/live/a/index.m3u8", 8443, 0,
         "https://example.org:8443/live/a/index.m3u8"},
        {"[::1]:8080", "/x?y=%20", 8443, 0, "https://[::1]:8443/x?y=%20"},
        {"[::1]", "/", 443, 0, "https://[::1]/"},
        {"127.0.0.1", "/healthz", 4433, 0, "https://127.0.0.1:4433/healthz"},
        {NULL, "/", 443, -EINVAL, NULL},
        {"", "/", 443, -EINVAL, NULL},
        {":80", "/", 443, -EINVAL, NULL},
        {"evil.org/x", "/", 443, -EINVAL, NULL},
        {"evil.org@x", "/", 443, -EINVAL, NULL},
        {"[::1", "/", 443, -EINVAL, NULL},
        {"[::1]x", "/", 443, -EINVAL, NULL},
        {"a b", "/", 443, -EINVAL, NULL},
        {"example.org", "live", 443, -EINVAL, NULL},
        {"example.org", "/a b", 443, -EINVAL, NULL},
    };
    char out[256];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = http_redirect_location(cases[i].host, cases[i].uri, cases[i].port, out,
                                        sizeof(out));

        CHECK_EQ_INT(rc, cases[i].rc);
        if (rc == 0)
            CHECK_EQ_STR(out, cases[i].want);
    }
    CHECK_EQ_INT(http_redirect_location("example.org", "/abcdef", 443, out, 20), -ENOSPC);
}

int main(void)
{
    if (fixture_up(&fx) != 0) {
        fprintf(stderr, "cannot start the test server\n");
        return 1;
    }
    RUN(test_healthz_and_pages);
    RUN(test_streams_json);
    RUN(test_template);
    RUN(test_objects);
    RUN(test_etag);
    RUN(test_head_and_keepalive);
    RUN(test_errors);
    RUN(test_options);
    RUN(test_refcounts);
    RUN(test_replace_in_flight);
    RUN(test_parallel);
    RUN(test_hls_query);
    RUN(test_blocking);
    RUN(test_blocking_end);
    fixture_down(&fx);
    RUN(test_second_config);
    RUN(test_redirect_location);
    return harness_done();
}
