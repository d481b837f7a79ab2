/*
 * http — HLS delivery on libmicrohttpd: an internal poll thread pool answers
 * from the store, zero-copy (the response borrows the buffer's bytes and holds
 * a reference that MHD's free callback drops).
 *
 *   GET /                        front page: live streams, how to publish (http_pages.c)
 *   GET /streams.json            live streams as JSON (http_pages.c)
 *   GET /healthz                 "ok"
 *   GET /static/hls.min.js       hls.js, loaded once at start
 *   GET /live/NAME               301 to /live/NAME/
 *   GET /live/NAME/              player page (plays the relative index.m3u8)
 *   GET /live/NAME/OBJ           store object: playlist, init, segment, part
 *   GET /live/NAME/index.m3u8?dvr=1  the event so far (live rewind, vod.c)
 *   GET /vod/...                 recordings (vod.c)
 *   OPTIONS *                    204, CORS preflight
 *
 * Every path segment must match [A-Za-z0-9_.-]{1,127} and not start with '.',
 * which rules out "..", "//" and NUL (%00 is left undecoded and '%' is not
 * allowed); a malformed path is a 400, a well-formed unknown one a 404.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../config/config.h"
#include "../store/store.h"
#include "http.h"
#include "http_internal.h"
#include "http_limits.h"
#include "http_tls.h"
#include "signed_internal.h"
#include "vod_internal.h"

#define MOD "http"
#define ALLOW_METHODS "GET, HEAD, OPTIONS"
#define CONNECTION_TIMEOUT_S 30
#define HLSJS_MAX_BYTES (16u << 20)
#define IMMUTABLE_CC "public, max-age=31536000, immutable"
/*
 * Non-safelisted headers scripts may read cross-origin: hls.js reads Age (a
 * CDN's cache age) to place the live edge; Date and ETag help debugging.
 */
#define EXPOSE_HEADERS "Age, Date, ETag"

#define HTTP_MAX_DAEMONS 8 /* one per address a listen host name resolves to */

struct http_server {
    struct MHD_Daemon *daemons[HTTP_MAX_DAEMONS];
    int ndaemons;
    struct cfg_live *live; /* CORS and max-age: read per response built, swapped by a reload */
    struct store *st;
    struct recorder *rec;     /* recordings (/vod/, ?dvr=1); NULL = none */
    struct http_timer *timer; /* deadlines of blocked requests */
    struct http_limits *limits; /* request-head deadlines, connection count */
    bool ll;                  /* LL-HLS on: blocking reloads, delta updates */
    int64_t block_ms;         /* a blocked request waits at most this long (3 targets) */
    int64_t first_ms;         /* a playlist request before the stream's first part */
    struct buf *hlsjs;      /* NULL if no hls.min.js was found */
    struct buf *index_page; /* GET / */
    struct http_tls *tls;                        /* NULL = plain HTTP */
    struct http_redirect *redirect;              /* http.redirect_listen; NULL = none */
    struct MHD_OptionItem tls_opts[HTTP_TLS_NOPTS]; /* MHD's TLS options, or MHD_OPTION_END */
    atomic_bool running;    /* past start-up: MHD's client-side noise goes to debug */
    int port;
};

/* Marks a request whose first handler call has been seen (never written). */
static char request_seen;

/* ---- small helpers ------------------------------------------------------- */



/*
 * MHD unescape callback for the path and query arguments: decodes %HH like
 * MHD's default, except %00, which stays as the three characters so that no
 * NUL can cut a name short (path_ok then rejects the '%').
 */
static size_t unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    char *w = s;
    const char *r = s;

    (void)cls;
    (void)conn;
    while (*r) {
        int hi = r[0] == '%' ? hex_digit(r[1]) : -1;
        int lo = hi >= 0 ? hex_digit(r[2]) : -1;

        if (lo >= 0 && (hi | lo) != 0) {
            *w++ = (char)(hi * 16 + lo);
            r += 3;
        } else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

static const char *content_type(const char *name)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {".m3u8", "application/vnd.apple.mpegurl"},
        /*
         * fMP4 media segments and parts: video/mp4 rather than the IANA
         * video/iso.segment. hls.js ignores the type (it fetches bytes), Safari
         * and AVPlayer accept video/mp4, and CDNs and proxies know video/mp4
         * (compression and caching rules keyed on type), whereas
         * video/iso.segment buys no client anything.
         */
        {".m4s", "video/mp4"},
        {".mp4", "video/mp4"},
        {".m4a", "audio/mp4"},
        {".aac", "audio/aac"},
        {".ts", "video/mp2t"},
        {".vtt", "text/vtt"},
    };
    const char *dot = strrchr(name, '.');

    for (size_t i = 0; dot && i < ARRAY_SIZE(types); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].type;
    return "application/octet-stream";
}


static void unref_cb(void *cls)
{
    buf_unref(cls);
}

/* ---- responses ----------------------------------------------------------- */

static void add_header(struct MHD_Response *r, const char *name, const char *value)
{
    if (MHD_add_response_header(r, name, value) != MHD_YES)
        log_warn(MOD, "cannot add header %s", name);
}

/* A response over bytes that outlive the daemon (string literals, server-owned). */
static struct MHD_Response *fixed_response(const void *data, size_t len, const char *type,
                                           const char *cache_control)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT);

    if (!r)
        return NULL;
    if (type)
        add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    if (cache_control)
        add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
    return r;
}

/* A zero-copy response over B; takes ownership of the caller's reference. */
static struct MHD_Response *buf_response(struct buf *b, const char *type, const char *cache_control)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback_cls(b->len, b->data, unref_cb, b);

    if (!r) {
        buf_unref(b);
        return NULL;
    }
    add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
    return r;
}

/*
 * One debug line per answered request: "[peer] GET /live/x/media.m3u8?_HLS_msn=5
 * -> 200". At log.level debug this is the origin's request log (the edge test
 * and scripts/bench-edge.sh count origin requests with it); otherwise free.
 */
static void log_request(struct MHD_Connection *conn, const char *method, const char *url,
                        unsigned status)
{
    static const char *const directives[] = {"_HLS_msn", "_HLS_part", "_HLS_skip"};
    const union MHD_ConnectionInfo *ci;
    char peer[NI_MAXHOST + 8] = "?", safe[160], query[96] = "";
    size_t i, qlen = 0;
    bool cut;

    if (log_get_level() < LOG_DEBUG)
        return;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr) {
        socklen_t len = ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                               : sizeof(struct sockaddr_in);

        getnameinfo(ci->client_addr, len, peer, sizeof(peer), NULL, 0, NI_NUMERICHOST);
    }
    for (i = 0; url[i] && i < sizeof(safe) - 1; i++)
        safe[i] = isprint((unsigned char)url[i]) ? url[i] : '?';
    safe[i] = '\0';
    cut = url[i] != '\0';
    for (size_t d = 0; d < ARRAY_SIZE(directives) && qlen < sizeof(query); d++) {
        const char *v = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, directives[d]);
        int n;

        if (!v)
            continue;
        n = snprintf(query + qlen, sizeof(query) - qlen, "%c%s=%.16s", qlen ? '&' : '?',
                     directives[d], v);
        if (n > 0)
            qlen += (size_t)n;
    }
    for (i = 0; query[i]; i++)
        if (!isprint((unsigned char)query[i]))
            query[i] = '?';
    log_debug(MOD, "[%s] %s %s%s%s -> %u", peer, method, safe, cut ? "..." : "", query,
              status);
}

/* nosniff and, per the current config, CORS (a reload's cors_origin applies from here on). */
static void add_common_headers(struct http_server *srv, struct MHD_Response *r)
{
    const struct cfg *cfg = cfg_live_get(srv->live);

    add_header(r, "X-Content-Type-Options", "nosniff");
    if (srv->tls && cfg->http_hsts[0])
        add_header(r, "Strict-Transport-Security", cfg->http_hsts);
    if (cfg->http_cors_origin[0]) {
        add_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_ORIGIN, cfg->http_cors_origin);
        add_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSE_HEADERS);
    }
    cfg_unref(cfg);
}

/* Cache-Control of live playlists; max-age=0 would do, but no-cache says "revalidate" plainly. */
static void playlist_cache_control(struct http_server *srv, char *out, size_t len)
{
    const struct cfg *cfg = cfg_live_get(srv->live);

    if (cfg->http_playlist_max_age > 0)
        snprintf(out, len, "max-age=%d", cfg->http_playlist_max_age);
    else
        snprintf(out, len, "no-cache");
    cfg_unref(cfg);
}

/* Adds the common headers, queues R (NULL = out of memory) and drops our reference. */
static enum MHD_Result reply(struct http_server *srv, struct MHD_Connection *conn,
                             const char *method, const char *url, unsigned status,
                             struct MHD_Response *r)
{
    enum MHD_Result ret;

    if (!r) {
        log_warn(MOD, "out of memory answering %s", method);
        return MHD_NO; /* MHD closes the connection */
    }
    add_common_headers(srv, r);
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    log_request(conn, method, url, status);
    return ret;
}

static enum MHD_Result send_error(struct http_server *srv, struct MHD_Connection *conn,
                                  const char *method, const char *url, unsigned status)
{
    const char *text;
    struct MHD_Response *r;

    switch (status) {
    case MHD_HTTP_BAD_REQUEST:
        text = "bad request\n";
        break;
    case MHD_HTTP_FORBIDDEN:
        text = "forbidden\n";
        break;
    case MHD_HTTP_NOT_FOUND:
        text = "not found\n";
        break;
    case MHD_HTTP_METHOD_NOT_ALLOWED:
        text = "method not allowed\n";
        break;
    case MHD_HTTP_URI_TOO_LONG:
        text = "too many query arguments\n";
        break;
    default:
        text = "error\n";
        break;
    }
    /* no-store: a 404 playlist now may exist a second later. */
    r = fixed_response(text, strlen(text), "text/plain; charset=utf-8", "no-store");
    if (r && status == MHD_HTTP_METHOD_NOT_ALLOWED)
        add_header(r, MHD_HTTP_HEADER_ALLOW, ALLOW_METHODS);
    return reply(srv, conn, method, url, status, r);
}

/* ---- routes -------------------------------------------------------------- */

static bool header_list_ok(const char *v)
{
    for (; *v; v++)
        if (!http_path_char(*v) && *v != ',' && *v != ' ')
            return false;
    return true;
}

static enum MHD_Result serve_options(struct http_server *srv, struct MHD_Connection *conn,
                                     const char *url)
{
    struct MHD_Response *r = fixed_response("", 0, NULL, NULL);
    const struct cfg *cfg;
    const char *req_headers;
    bool cors;

    if (!r)
        return reply(srv, conn, "OPTIONS", url, MHD_HTTP_NO_CONTENT, NULL);
    add_header(r, MHD_HTTP_HEADER_ALLOW, ALLOW_METHODS);
    cfg = cfg_live_get(srv->live);
    cors = cfg->http_cors_origin[0] != '\0';
    cfg_unref(cfg);
    if (cors) {
        add_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_METHODS, ALLOW_METHODS);
        add_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_MAX_AGE, "86400");
        /* Reading is harmless, so allow whatever request headers the page asks for. */
        req_headers =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Access-Control-Request-Headers");
        /* A list longer than any page asks for would not fit the connection's memory pool. */
        if (req_headers && req_headers[0] && strlen(req_headers) <= 1024 &&
            header_list_ok(req_headers))
            add_header(r, MHD_HTTP_HEADER_ACCESS_CONTROL_ALLOW_HEADERS, req_headers);
    }
    return reply(srv, conn, "OPTIONS", url, MHD_HTTP_NO_CONTENT, r);
}

/* ---- store objects --------------------------------------------------------- */

/* What a cached response holds: a reference on each buffer it sends. */
struct held_bufs {
    int n;
    struct buf *b[];
};

static void held_free(void *cls)
{
    struct held_bufs *h = cls;

    for (int i = 0; i < h->n; i++)
        buf_unref(h->b[i]);
    free(h);
}

/* A response over O's bytes (zero-copy: the buffers are referenced, not copied). */
static struct MHD_Response *bytes_response(const struct store_obj *o)
{
    struct held_bufs *h = malloc(sizeof(*h) + (size_t)o->nbufs * sizeof(h->b[0]));
    struct MHD_IoVec iov[64], *v = iov;
    struct MHD_Response *r = NULL;
    int n = 0;

    if (!h)
        return NULL;
    if (o->nbufs > (int)ARRAY_SIZE(iov) && !(v = malloc((size_t)o->nbufs * sizeof(*v)))) {
        free(h);
        return NULL;
    }
    for (int i = 0; i < o->nbufs; i++) {
        if (!o->bufs[i]->len)
            continue;
        v[n].iov_base = o->bufs[i]->data;
        v[n].iov_len = o->bufs[i]->len;
        h->b[n++] = buf_ref(o->bufs[i]);
    }
    h->n = n;
    if (n == 0)
        r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    else
        r = MHD_create_response_from_iovec(v, (unsigned)n, held_free, h); /* copies V */
    if (v != iov)
        free(v);
    if (!r || n == 0)
        held_free(h);
    return r;
}


static void destroy_response(void *r)
{
    MHD_destroy_response(r);
}

/*
 * The 200 response of O, built once per object and kept with it (MHD
 * responses are refcounted and may be queued on any number of connections),
 * so that a request costs a lookup and a reference. Borrowed from O.
 */
static struct MHD_Response *obj_response(struct http_server *srv, struct store_obj *o, bool gz)
{
    struct MHD_Response *r = atomic_load(&o->aux), *won;
    char cc[32];

    if (r)
        return r;
    r = bytes_response(o);
    if (!r)
        return NULL;
    if (o->kind == STORE_PLAYLIST) {
        playlist_cache_control(srv, cc, sizeof(cc));
        add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/vnd.apple.mpegurl");
        add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
        add_header(r, MHD_HTTP_HEADER_ETAG, o->etag);
        add_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
        if (gz)
            add_header(r, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    } else {
        /* Media objects carry no validator: immutable for a year, nobody revalidates. */
        add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type(o->name));
        add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, IMMUTABLE_CC);
    }
    add_common_headers(srv, r);
    won = store_obj_set_aux(o, r, destroy_response);
    if (won != r)
        MHD_destroy_response(r); /* another thread built it first */
    return won;
}


/*
 * A playlist of a signed stream, rewritten for this request so that every URI
 * carries the request's checked exp/sig (SQ). Never cached with O, never
 * gzipped, no ETag (the bytes depend on the link). Takes O's reference.
 */
static enum MHD_Result send_signed_playlist(struct http_server *srv, struct MHD_Connection *conn,
                                            const char *method, const char *url,
                                            struct store_obj *o, const char *sq)
{
    struct bytes in = {0}, out = {0};
    struct MHD_Response *r = NULL;
    char cc[32];
    int rc = 0;

    for (int i = 0; i < o->nbufs && rc == 0; i++)
        rc = bytes_append(&in, o->bufs[i]->data, o->bufs[i]->len);
    store_obj_unref(o);
    if (rc == 0)
        rc = sign_playlist(in.data, in.len, sq, &out);
    bytes_reset(&in);
    if (rc == 0)
        r = out.data ? MHD_create_response_from_buffer_with_free_callback(out.len, out.data, free)
                     : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r) {
        bytes_reset(&out);
        return reply(srv, conn, method, url, MHD_HTTP_OK, NULL);
    }
    playlist_cache_control(srv, cc, sizeof(cc));
    add_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/vnd.apple.mpegurl");
    add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
    return reply(srv, conn, method, url, MHD_HTTP_OK, r);
}

/*
 * Whether STREAM is signed and, if so, whether the request's exp/sig open it.
 * Returns 0 (*SQ = NULL for a public stream, else SIGQ holding the query to
 * carry on), or 403.
 */
static unsigned check_signed(struct http_server *srv, struct MHD_Connection *conn,
                             const char *stream, char sigq[SIGN_QUERY_MAX], const char **sq)
{
    const struct cfg *cfg = cfg_live_get(srv->live);
    const struct cfg_stream *cs = cfg_find_stream(cfg, stream);
    const char *why = NULL;
    unsigned status = 0;

    *sq = NULL;
    if (cs && cs->signed_playback) {
        if (sign_check(cfg->http_signing_secret, stream,
                       MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "exp"),
                       MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "sig"),
                       (int64_t)(time_wall_ms() / 1000), sigq, &why) < 0) {
            log_debug(MOD, "live/%s: %s", stream, why);
            status = MHD_HTTP_FORBIDDEN;
        } else {
            *sq = sigq;
        }
    }
    cfg_unref(cfg);
    return status;
}

/* Sends O: 200 from its cached response, or 304 when the client's ETag matches. */
static enum MHD_Result send_obj(struct http_server *srv, struct MHD_Connection *conn,
                                const char *method, const char *url, struct store_obj *o,
                                bool gz, const char *sq)
{
    struct MHD_Response *r;
    enum MHD_Result ret;
    char cc[32];

    http_observe_obj(conn, method, o->kind == STORE_PLAYLIST, o->len);
    if (sq && o->kind == STORE_PLAYLIST)
        return send_signed_playlist(srv, conn, method, url, o, sq);
    if (o->kind == STORE_PLAYLIST &&
        http_etag_matches(MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                 MHD_HTTP_HEADER_IF_NONE_MATCH),
                     o->etag)) {
        /* RFC 9110 8.6: a 304's Content-Length, if any, is the 200's: build it
         * over the same bytes (MHD sends no body with a 304). */
        r = bytes_response(o);
        if (r) {
            playlist_cache_control(srv, cc, sizeof(cc));
            add_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
            add_header(r, MHD_HTTP_HEADER_ETAG, o->etag);
            add_header(r, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
        }
        store_obj_unref(o);
        return reply(srv, conn, method, url, MHD_HTTP_NOT_MODIFIED, r);
    }
    r = obj_response(srv, o, gz);
    if (!r) {
        store_obj_unref(o);
        return reply(srv, conn, method, url, MHD_HTTP_OK, NULL);
    }
    ret = MHD_queue_response(conn, MHD_HTTP_OK, r);
    log_request(conn, method, url, MHD_HTTP_OK);
    store_obj_unref(o); /* the response lives on in O (or in MHD, if O goes) */
    return ret;
}

/*
 * What a request for a live object resolved to: the store name of the
 * variant to send and, when it may have to wait, the progress key.
 */
struct live_req {
    char name[STORE_NAME_MAX + 16];
    bool gz;
    bool blocking;   /* _HLS_msn given: wait for KEY */
    bool playlist;   /* media or multivariant playlist: wait for a first part if missing */
    bool part;       /* a part that may not exist yet (preload hint) */
    uint64_t key;
};


/* Classifies OBJ and its query. Returns 0, or an HTTP status to answer with. */
static unsigned classify(struct http_server *srv, struct MHD_Connection *conn, const char *obj,
                         struct live_req *lr)
{
    bool media = strcmp(obj, "media.m3u8") == 0;
    bool gz = http_accepts_gzip(
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING));

    memset(lr, 0, sizeof(*lr));
    if (media || strcmp(obj, "index.m3u8") == 0) {
        struct hls_query q = {0};

        lr->playlist = true;
        if (media && srv->ll &&
            hls_query_parse(MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "_HLS_msn"),
                            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "_HLS_part"),
                            MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "_HLS_skip"),
                            &q) < 0)
            return MHD_HTTP_BAD_REQUEST;
        snprintf(lr->name, sizeof(lr->name), "%s%s", obj, q.skip ? "|skip" : "");
        if (q.has_msn) {
            lr->blocking = true;
            lr->key = STORE_KEY(q.msn, q.has_part ? q.part : STORE_PART_END);
        }
    } else {
        snprintf(lr->name, sizeof(lr->name), "%s", obj);
        lr->part = srv->ll && http_part_key(obj, &lr->key);
        gz = false;
    }
    lr->gz = gz;
    return 0;
}

/* Looks up LR's object, the gzip variant first when the client takes it. */
static struct store_obj *find_variant(struct http_server *srv, const char *stream,
                                      struct live_req *lr)
{
    struct store_obj *o = NULL;

    if (lr->gz) {
        char gzname[sizeof(lr->name) + 4];

        snprintf(gzname, sizeof(gzname), "%s|gz", lr->name);
        o = store_get_obj(srv->st, stream, gzname);
        if (o)
            return o;
        lr->gz = false;
    }
    return store_get_obj(srv->st, stream, lr->name);
}

/*
 * GET/HEAD of a live object. A blocking playlist request, a playlist asked
 * for before the stream's first part, and a part that is not cut yet are
 * held (suspended) until the store's progress reaches them; RESUMED is the
 * wait they come back with, NULL on the first pass.
 */
static enum MHD_Result serve_object(struct http_server *srv, struct MHD_Connection *conn,
                                    const char *method, const char *url, const char *stream,
                                    const char *obj, const char *sq, void **req_cls)
{
    struct http_wait *resumed = *req_cls != &request_seen ? *req_cls : NULL;
    struct store_obj *o = NULL;
    struct live_req lr;
    enum store_wait_result res;
    int64_t timeout;
    unsigned status = classify(srv, conn, obj, &lr);

    if (status)
        return send_error(srv, conn, method, url, status);
    if (sq)
        lr.gz = false; /* rewritten per request: see send_signed_playlist */
    if (resumed) {
        enum http_wait_state state = http_wait_state(resumed);

        if (state == HTTP_TIMED_OUT || state == HTTP_SHUTDOWN)
            return send_error(srv, conn, method, url, MHD_HTTP_SERVICE_UNAVAILABLE);
        res = http_wait_result(resumed);
        if (res == STORE_WAIT_TOO_FAR)
            return send_error(srv, conn, method, url, MHD_HTTP_BAD_REQUEST);
        if (res == STORE_WAIT_NONE || !(o = find_variant(srv, stream, &lr)))
            return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
        return send_obj(srv, conn, method, url, o, lr.gz, sq);
    }
    if (!lr.blocking && (o = find_variant(srv, stream, &lr)) != NULL)
        return send_obj(srv, conn, method, url, o, lr.gz, sq); /* the common case */
    if (!lr.blocking && !lr.playlist && !lr.part)
        return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    /* A playlist before the first part waits for any progress (key 0). */
    res = store_check(srv->st, stream, lr.key);
    if (res == STORE_WAIT_NONE)
        return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    if (res == STORE_WAIT_TOO_FAR)
        return send_error(srv, conn, method, url, MHD_HTTP_BAD_REQUEST);
    if (res == STORE_WAIT_READY) {
        o = find_variant(srv, stream, &lr);
        if (!o)
            return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
        return send_obj(srv, conn, method, url, o, lr.gz, sq);
    }
    timeout = lr.blocking || lr.part ? srv->block_ms : srv->first_ms;
    if (http_wait_start(srv->timer, srv->st, conn, stream, lr.key, timeout,
                        (struct http_wait **)req_cls) < 0)
        return send_error(srv, conn, method, url, MHD_HTTP_SERVICE_UNAVAILABLE);
    return MHD_YES; /* called again once resumed */
}

/* /live/NAME, /live/NAME/ and /live/NAME/OBJ; REST is what follows "/live/". */
static enum MHD_Result route_live(struct http_server *srv, struct MHD_Connection *conn,
                                  const char *method, const char *url, const char *rest,
                                  void **req_cls)
{
    const char *slash = strchr(rest, '/'), *sq;
    char stream[STORE_NAME_MAX], sigq[SIGN_QUERY_MAX];
    unsigned status;
    size_t n;

    if (rest[0] == '\0')
        return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    if (!slash) {
        char location[STORE_NAME_MAX + 8];
        struct MHD_Response *r;
        static const char text[] = "moved\n";

        snprintf(location, sizeof(location), "/live/%s/", rest);
        r = fixed_response(text, sizeof(text) - 1, "text/plain; charset=utf-8", "max-age=3600");
        if (r)
            add_header(r, MHD_HTTP_HEADER_LOCATION, location);
        return reply(srv, conn, method, url, MHD_HTTP_MOVED_PERMANENTLY, r);
    }
    n = (size_t)(slash - rest); /* < STORE_NAME_MAX: path_ok checked it */
    memcpy(stream, rest, n);
    stream[n] = '\0';
    rest = slash + 1;
    if ((status = check_signed(srv, conn, stream, sigq, &sq)))
        return send_error(srv, conn, method, url, status);
    if (rest[0] == '\0')
        return reply(srv, conn, method, url, MHD_HTTP_OK,
                     fixed_response(http_player_html, http_player_html_len,
                                    "text/html; charset=utf-8", "no-cache"));
    if (strchr(rest, '/'))
        return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    http_observe_stream(conn, stream);
    if (strcmp(rest, "thumb.jpg") == 0) {
        struct MHD_Response *r = http_thumb_response(stream, &status);

        return r ? reply(srv, conn, method, url, status, r)
                 : send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
    }
    if ((!strcmp(rest, "index.m3u8") || !strcmp(rest, "media.m3u8")) && srv->rec) {
        const char *dvr = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "dvr");
        enum MHD_Result ret;

        if (dvr && !strcmp(dvr, "1") && http_vod_dvr(srv, conn, method, url, stream, sq, &ret))
            return ret;
    }
    return serve_object(srv, conn, method, url, stream, rest, sq, req_cls);
}

static enum MHD_Result route(struct http_server *srv, struct MHD_Connection *conn,
                             const char *method, const char *url, void **req_cls)
{
    static const char ok[] = "ok\n";

    if (!http_path_ok(url))
        return send_error(srv, conn, method, url, MHD_HTTP_BAD_REQUEST);
    if (strncmp(url, "/live/", 6) == 0)
        return route_live(srv, conn, method, url, url + 6, req_cls);
    if (strncmp(url, "/vod/", 5) == 0)
        return http_vod_route(srv, conn, method, url, url + 5);
    if (strcmp(url, "/healthz") == 0)
        return reply(srv, conn, method, url, MHD_HTTP_OK,
                     fixed_response(ok, sizeof(ok) - 1, "text/plain; charset=utf-8", "no-store"));
    if (strcmp(url, "/static/hls.min.js") == 0) {
        if (!srv->hlsjs)
            return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
        return reply(srv, conn, method, url, MHD_HTTP_OK,
                     buf_response(buf_ref(srv->hlsjs), "application/javascript; charset=utf-8",
                                  "public, max-age=3600"));
    }
    if (strcmp(url, "/streams.json") == 0) {
        const struct cfg *cfg = cfg_live_get(srv->live);
        struct MHD_Response *r = http_streams_response(srv->st, cfg);

        cfg_unref(cfg);
        return reply(srv, conn, method, url, MHD_HTTP_OK, r);
    }
    if (strcmp(url, "/") == 0)
        return reply(srv, conn, method, url, MHD_HTTP_OK,
                     fixed_response(srv->index_page->data, srv->index_page->len,
                                    "text/html; charset=utf-8", "no-cache"));
    return send_error(srv, conn, method, url, MHD_HTTP_NOT_FOUND);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct http_server *srv = cls;
    bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0;
    bool head = strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    bool options = strcmp(method, MHD_HTTP_METHOD_OPTIONS) == 0;

    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        unsigned refuse;

        http_observe_begin(conn, method, url); /* first: a refusal is counted too */
        refuse = http_limits_request_begin(conn);
        if (refuse)
            return send_error(srv, conn, method, url, refuse);
        /*
         * Other methods are refused at once, before any body is read: MHD
         * 0.9.75 refuses to queue a response while body data is pending, and
         * closing the connection is what an unwanted upload deserves.
         */
        if (!get && !head && !options)
            return send_error(srv, conn, method, url, MHD_HTTP_METHOD_NOT_ALLOWED);
        /*
         * Measured with MHD 0.9.75: a response queued on the first call
         * (headers only) is sent with "Connection: close"; one queued on the
         * second call keeps the connection alive (about 5x the requests/s).
         */
        *req_cls = &request_seen;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* a body on GET/HEAD/OPTIONS means nothing: drop it */
        return MHD_YES;
    }
    if (options)
        return serve_options(srv, conn, url);
    return route(srv, conn, method, url, req_cls);
}

/*
 * MHD_OPTION_NOTIFY_CONNECTION (CLS = the limits): one struct http_conn per
 * connection holds the limits' and the observation's contexts.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_conn *hc = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        hc = calloc(1, sizeof(*hc));
        *socket_context = hc;
    }
    if (!hc)
        return; /* out of memory: neither limits nor metrics see this connection */
    http_limits_notify(cls, conn, &hc->limits, toe);
    http_observe_connection(NULL, conn, &hc->observe, toe);
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
        free(hc);
        *socket_context = NULL;
    }
}

/* Frees a blocked request's state (anything but the marker). */
static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)toe;
    http_limits_request_end(conn);
    http_observe_end(conn);
    if (*req_cls && *req_cls != &request_seen)
        http_wait_free(*req_cls);
    *req_cls = NULL;
}

/* ---- start-up ------------------------------------------------------------ */

/* MHD's messages: start-up failures and server-side trouble are warnings; the
 * rest (clients resetting, timing out, sending garbage) is debug noise. */
static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    static const char *const serious[] = {"accept", "limit", "emory", "thread", "epoll"};
    struct http_server *srv = cls;
    enum log_level level = LOG_DEBUG;
    char line[512];
    size_t n;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (!atomic_load(&srv->running))
        level = LOG_WARN;
    for (size_t i = 0; i < ARRAY_SIZE(serious) && level == LOG_DEBUG; i++)
        if (strstr(line, serious[i]))
            level = LOG_WARN;
    if (level == LOG_DEBUG && log_get_level() < LOG_DEBUG)
        return;
    if (atomic_load(&srv->running)) /* clients can cause these at will */
        log_msg_limited_site(fmt, level, MOD, "libmicrohttpd: %s", line);
    else
        log_msg(level, MOD, "libmicrohttpd: %s", line);
}

/* Reads a whole regular file of at most HLSJS_MAX_BYTES. Returns a new buffer or NULL. */
static struct buf *read_file(const char *path)
{
    struct buf *b = NULL;
    struct stat sb;
    size_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return NULL;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size <= 0 ||
        (uint64_t)sb.st_size > HLSJS_MAX_BYTES)
        goto fail;
    b = buf_new((size_t)sb.st_size);
    if (!b)
        goto fail;
    while (got < b->len) {
        ssize_t n = read(fd, b->data + got, b->len - got);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        got += (size_t)n;
    }
    close(fd);
    return b;
fail:
    buf_unref(b);
    close(fd);
    return NULL;
}

/* Finds and loads hls.min.js (see config.h, http_player_js). Returns a new buffer or NULL. */
static struct buf *load_hlsjs(const struct cfg *cfg)
{
    char exe_rel[PATH_MAX + 64] = "", exe_data[PATH_MAX + 64] = "", exe[PATH_MAX];
    const char *env = getenv("ONAIR_HLSJS");
    const char *candidates[6];
    size_t ncand = 0;
    ssize_t n;

    if (cfg->http_player_js[0]) {
        candidates[ncand++] = cfg->http_player_js;
    } else {
        if (env && env[0])
            candidates[ncand++] = env;
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
            const char *dir;

            exe[n] = '\0';
            dir = dirname(exe);
            /* Installed: PREFIX/bin/onair finds PREFIX/share/onair/hls.min.js, also under a
             * DESTDIR or after the whole prefix moved. */
            snprintf(exe_data, sizeof(exe_data), "%s/%s/hls.min.js", dir, ONAIR_DATADIR_FROM_BINDIR);
            candidates[ncand++] = exe_data;
            /* Built: build/onair finds the source tree's node_modules. */
            snprintf(exe_rel, sizeof(exe_rel), "%s/../node_modules/hls.js/dist/hls.min.js", dir);
            candidates[ncand++] = exe_rel;
        }
        candidates[ncand++] = ONAIR_DATADIR "/hls.min.js";
        candidates[ncand++] = "./node_modules/hls.js/dist/hls.min.js";
    }
    for (size_t i = 0; i < ncand; i++) {
        struct buf *b = read_file(candidates[i]);

        if (b) {
            log_info(MOD, "serving /static/hls.min.js from %s (%zu bytes)", candidates[i], b->len);
            return b;
        }
        log_debug(MOD, "hls.min.js: %s: not usable", candidates[i]);
    }
    if (cfg->http_player_js[0])
        log_error(MOD, "http.player_js: cannot read %s (a regular file of at most %u bytes)",
                  cfg->http_player_js, HLSJS_MAX_BYTES);
    else
        log_warn(MOD, "hls.min.js not found (set http.player_js or $ONAIR_HLSJS, run `meson "
                      "install`, or `npm ci` in the source tree); /static/hls.min.js will 404");
    return NULL;
}

/*
 * Maximum connections: http.max_connections as main sized it from the
 * open-file limit; 0 (tests that start the server alone) = what the limit
 * leaves after RTMP and files.
 */
static unsigned connection_limit(const struct cfg *cfg)
{
    struct rlimit rl;
    long long limit = 1024;

    if (cfg->http_max_connections > 0)
        return (unsigned)cfg->http_max_connections;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        limit = rl.rlim_cur == RLIM_INFINITY ? 65536 : (long long)rl.rlim_cur;
    limit -= cfg->rtmp_max_connections + 64;
    if (limit < 16)
        limit = 16;
    if (limit > 65536)
        limit = 65536;
    return (unsigned)limit;
}

static struct MHD_Daemon *start_daemon(struct http_server *srv, const struct cfg *cfg,
                                       unsigned flags, uint16_t port, const struct sockaddr *addr)
{
    unsigned threads = cfg->http_threads > 1 ? (unsigned)cfg->http_threads : 1;
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)mhd_logger, srv},
        {MHD_OPTION_UNESCAPE_CALLBACK, (intptr_t)unescape, NULL},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, srv->limits},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)http_limits_uri, srv->limits},
        {MHD_OPTION_CONNECTION_TIMEOUT,
         cfg->http_idle_timeout_s > 0 ? (intptr_t)(cfg->http_idle_timeout_s + 0.5)
                                      : CONNECTION_TIMEOUT_S,
         NULL},
        {MHD_OPTION_CONNECTION_LIMIT, (intptr_t)connection_limit(cfg), NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->http_max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
         cfg->http_max_request_bytes > 0 ? cfg->http_max_request_bytes : 32768, NULL},
        {threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, (intptr_t)threads, NULL},
        {MHD_OPTION_END, 0, NULL},
    };

    if (addr)
        return MHD_start_daemon(flags, port, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
                                MHD_OPTION_ARRAY, srv->tls_opts, MHD_OPTION_SOCK_ADDR, addr,
                                MHD_OPTION_END);
    return MHD_start_daemon(flags, port, NULL, NULL, on_request, srv, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_ARRAY, srv->tls_opts, MHD_OPTION_END);
}

static int daemon_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

    return info ? info->port : -1;
}

static void stop_daemons(struct http_server *srv)
{
    for (int i = 0; i < srv->ndaemons; i++)
        MHD_stop_daemon(srv->daemons[i]);
    srv->ndaemons = 0;
}

/*
 * Binds HOST:PORT: "" = every address (IPv6 and IPv4 when available); a host
 * name binds every address it resolves to, one daemon each (with port 0, all
 * on the port the first one got). All or nothing.
 */
static int bind_and_start(struct http_server *srv, const struct cfg *cfg, const char *host,
                          int port)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG | MHD_ALLOW_SUSPEND_RESUME;
    struct addrinfo *res = NULL, *ai;
    struct MHD_Daemon *d = NULL;
    const char *why;

    if (srv->tls)
        flags |= MHD_USE_TLS;
    /*
     * poll, not epoll: with MHD 0.9.75's edge-triggered epoll, a client that
     * sends part of a request and closes at once (data and FIN arrive
     * together) is read once and never again, so the socket sits in
     * CLOSE-WAIT until the idle timeout (measured: 189 of 200 such
     * connections; 0 of 200 with poll). integration-http-limits checks it.
     */
    if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL;
    if (!host[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_IPv6) == MHD_YES)
            d = start_daemon(srv, cfg, flags | MHD_USE_DUAL_STACK, (uint16_t)port, NULL);
        if (!d) /* no IPv6 in this kernel or container */
            d = start_daemon(srv, cfg, flags, (uint16_t)port, NULL);
        if (d)
            srv->daemons[srv->ndaemons++] = d;
        return d ? 0 : -EADDRNOTAVAIL;
    }
    if (cfg_resolve_listen(host, port, &res, &why) < 0) {
        log_error(MOD, "listen %s: %s", cfg->http_listen, why);
        return -EINVAL;
    }
    for (ai = res; ai && srv->ndaemons < HTTP_MAX_DAEMONS; ai = ai->ai_next) {
        int p = srv->ndaemons > 0 && port == 0 ? daemon_port(srv->daemons[0]) : port;

        ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)p); /* same offset in v6 */
        d = start_daemon(srv, cfg, flags | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                         (uint16_t)p, ai->ai_addr);
        if (!d) {
            stop_daemons(srv);
            break;
        }
        srv->daemons[srv->ndaemons++] = d;
    }
    freeaddrinfo(res);
    return srv->ndaemons ? 0 : -EADDRNOTAVAIL;
}

/*
 * HTTPS with libmicrohttpd's own TLS (GnuTLS): the certificate chain and key
 * from http.tls_cert / http.tls_key (http_tls.c, reloadable), TLS 1.2 and 1.3
 * only. Returns 0 (also for plain HTTP) or a negative errno (logged).
 */
static int tls_setup(struct http_server *srv, const struct cfg *cfg)
{
    int rc;

    srv->tls_opts[0] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    if (!cfg->http_tls_cert[0])
        return 0;
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
        log_error(MOD, "http.tls_cert is set but this libmicrohttpd has no TLS support");
        return -ENOTSUP;
    }
    if ((rc = http_tls_new(cfg->http_tls_cert, cfg->http_tls_key, &srv->tls)) < 0)
        return rc;
    http_tls_options(srv->tls_opts);
    return 0;
}

int http_server_new(const struct cfg *cfg, struct store *st, struct http_server **out)
{
    struct http_server *srv;
    const union MHD_DaemonInfo *info;
    char host[CFG_STR_MAX];
    int port, rc;

    *out = NULL;
    rc = cfg_split_listen(cfg->http_listen, host, sizeof(host), &port);
    if (rc < 0 || port < 0 || port > 65535) {
        log_error(MOD, "bad listen address \"%s\"", cfg->http_listen);
        return -EINVAL;
    }
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->st = st;
    atomic_init(&srv->running, false);
    srv->live = cfg_live_new(cfg_ref(cfg));
    if (!srv->live) {
        cfg_unref(cfg);
        free(srv);
        return -ENOMEM;
    }
    srv->ll = cfg->hls_part_seconds > 0;
    /* A part later than three target durations is not coming (draft 8216bis 6.2.5.2: 503). */
    srv->block_ms = 3000 * (int64_t)ceil(cfg->hls_segment_seconds);
    srv->first_ms = srv->block_ms > 10000 ? srv->block_ms : 10000;
    srv->index_page = http_index_page_new(cfg);
    if (!srv->index_page) {
        rc = -ENOMEM;
        goto fail;
    }
    rc = http_timer_new(&srv->timer);
    if (rc < 0)
        goto fail;
    rc = http_limits_new(cfg, connection_limit(cfg), &srv->limits);
    if (rc < 0)
        goto fail;
    srv->hlsjs = load_hlsjs(cfg);
    if (!srv->hlsjs && cfg->http_player_js[0]) {
        rc = -ENOENT; /* a configured file that cannot be read is a start-up error */
        goto fail;
    }

    if ((rc = tls_setup(srv, cfg)) < 0)
        goto fail;
    rc = bind_and_start(srv, cfg, host, port);
    if (rc < 0) {
        log_error(MOD, "cannot listen on %s", cfg->http_listen);
        goto fail;
    }
    atomic_store(&srv->running, true);
    srv->port = daemon_port(srv->daemons[0]);
    if (srv->port < 0)
        srv->port = port;
    info = MHD_get_daemon_info(srv->daemons[0], MHD_DAEMON_INFO_FLAGS);
    log_info(MOD, "listening on %s (%s, port %d, %d address%s, %s, %d thread%s, up to %u "
             "connections)",
             cfg->http_listen, srv->tls ? "HTTPS, TLS 1.2+" : "HTTP", srv->port,
             srv->ndaemons, srv->ndaemons == 1 ? "" : "es",
             !info                         ? "?"
             : info->flags & MHD_USE_EPOLL ? "epoll"
             : info->flags & MHD_USE_POLL  ? "poll"
                                           : "select",
             cfg->http_threads > 1 ? cfg->http_threads : 1, cfg->http_threads > 1 ? "s" : "",
             connection_limit(cfg));
    if (srv->tls)
        log_info(MOD, "HTTPS certificate %s", http_tls_describe(srv->tls));
    if (srv->tls && cfg->http_redirect_listen[0] &&
        (rc = http_redirect_new(cfg, srv->port, srv->limits, &srv->redirect)) < 0)
        goto fail;
    *out = srv;
    return 0;
fail:
    stop_daemons(srv);
    http_tls_free(srv->tls);
    http_redirect_free(srv->redirect);
    http_timer_free(srv->timer);
    cfg_live_free(srv->live);
    http_limits_free(srv->limits);
    buf_unref(srv->hlsjs);
    buf_unref(srv->index_page);
    free(srv);
    return rc;
}

void http_server_free(struct http_server *srv)
{
    if (!srv)
        return;
    /* Held requests are resumed first (a suspended connection never ends by
     * itself), then every connection is closed; the responses' free
     * callbacks drop the buffers. */
    http_timer_free(srv->timer);
    http_redirect_free(srv->redirect);
    stop_daemons(srv);
    http_limits_free(srv->limits); /* after the daemons: their connections use it */
    cfg_live_free(srv->live);
    buf_unref(srv->hlsjs);
    buf_unref(srv->index_page);
    http_tls_free(srv->tls); /* after the daemons: handshakes use it */
    free(srv);
}

int http_server_reload_tls(struct http_server *srv, const struct cfg *next)
{
    int rc;

    if (!srv->tls || !next->http_tls_cert[0])
        return 0;
    rc = http_tls_reload(srv->tls, next->http_tls_cert, next->http_tls_key);
    if (rc < 0)
        log_error(MOD, "keeping the certificate in use");
    else
        log_info(MOD, "certificate reloaded: %s; new connections get it, open ones go on",
                 http_tls_describe(srv->tls));
    return rc;
}

void http_server_reconfigure(struct http_server *srv, const struct cfg *next)
{
    cfg_live_set(srv->live, cfg_ref(next));
}

void http_server_retire(struct http_server *srv, int max_wait_ms)
{
    int waited = 0;

    if (!srv)
        return;
    http_redirect_quiesce(srv->redirect);
    for (int i = 0; i < srv->ndaemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(srv->daemons[i]);

        if (fd != MHD_INVALID_SOCKET)
            close(fd); /* the listening socket is ours now: the port is free */
    }
    for (;;) {
        unsigned open = 0;

        for (int i = 0; i < srv->ndaemons; i++) {
            const union MHD_DaemonInfo *info =
                MHD_get_daemon_info(srv->daemons[i], MHD_DAEMON_INFO_CURRENT_CONNECTIONS);
            open += info ? info->num_connections : 0;
        }
        if (open == 0 || waited >= max_wait_ms) {
            log_info(MOD, "old server on port %d closed; %u connection%s still open after %d ms "
                          "closed with it", srv->port, open, open == 1 ? "" : "s", waited);
            break;
        }
        usleep(50 * 1000);
        waited += 50;
    }
    http_server_free(srv);
}

int http_server_port(const struct http_server *srv)
{
    return srv ? srv->port : -1;
}

void http_server_set_recorder(struct http_server *srv, struct recorder *rec)
{
    srv->rec = rec;
}

/* ---- for vod.c (vod_internal.h) ------------------------------------------------ */

enum MHD_Result http_reply(struct http_server *srv, struct MHD_Connection *conn,
                           const char *method, const char *url, unsigned status,
                           struct MHD_Response *r)
{
    return reply(srv, conn, method, url, status, r);
}

enum MHD_Result http_send_error(struct http_server *srv, struct MHD_Connection *conn,
                                const char *method, const char *url, unsigned status)
{
    return send_error(srv, conn, method, url, status);
}

unsigned http_check_signed(struct http_server *srv, struct MHD_Connection *conn,
                           const char *stream, char sigq[SIGN_QUERY_MAX], const char **sq)
{
    return check_signed(srv, conn, stream, sigq, sq);
}

struct recorder *http_recorder(struct http_server *srv)
{
    return srv->rec;
}

void http_add_header(struct MHD_Response *r, const char *name, const char *value)
{
    add_header(r, name, value);
}
