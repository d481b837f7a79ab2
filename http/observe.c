/*
 * What the public port tells the metrics: per connection a small context
 * (allocated when the connection opens, not per request) holds the request's
 * start time, the client address hash and what was served; at completion the
 * response is counted (status class, response time), the bytes charged to
 * the stream and a playlist fetch counted as a viewer. Also the optional
 * access log and thumb.jpg.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../metrics/metrics.h"
#include "../thumb/thumb.h"
#include "http_internal.h"

struct conn_ctx {
    int64_t start_us;
    uint64_t addr_hash;
    bool active;       /* between begin and end */
    bool playlist;     /* a playlist was answered (200 or 304) */
    size_t bytes;      /* body of a 200 GET */
    char stream[MX_NAME_MAX];
    char method[8];
    char url[160];
};

static atomic_bool access_log;

void http_set_access_log(bool on)
{
    atomic_store(&access_log, on);
}

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */

    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 1099511628211ull;
    return h ^ (h >> 29);
}

static uint64_t addr_hash(const struct sockaddr *sa)
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET)
        return hash_bytes(&((const struct sockaddr_in *)sa)->sin_addr, 4);
    if (sa->sa_family == AF_INET6)
        return hash_bytes(&((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    return 0;
}

static struct conn_ctx *ctx_of(struct MHD_Connection *conn)
{
    struct http_conn *hc = http_conn_of(conn);

    return hc ? hc->observe : NULL;
}

struct http_conn *http_conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

    return ci ? ci->socket_context : NULL;
}

void http_observe_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe)
{
    (void)cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        struct conn_ctx *c = calloc(1, sizeof(*c));
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

        if (c)
            c->addr_hash = addr_hash(ci ? ci->client_addr : NULL);
        *socket_context = c;
        mx_gauge_add(MX_HTTP_CONNECTIONS, 1);
    } else {
        free(*socket_context);
        *socket_context = NULL;
        mx_gauge_add(MX_HTTP_CONNECTIONS, -1);
    }
}

void http_observe_begin(struct MHD_Connection *conn, const char *method, const char *url)
{
    struct conn_ctx *c = ctx_of(conn);

    if (!c)
        return;
    c->active = true;
    c->start_us = now_us();
    c->playlist = false;
    c->bytes = 0;
    c->stream[0] = '\0';
    if (atomic_load_explicit(&access_log, memory_order_relaxed)) {
        size_t i;

        snprintf(c->method, sizeof(c->method), "%s", method);
        for (i = 0; url[i] && i < sizeof(c->url) - 1; i++)
            c->url[i] = isprint((unsigned char)url[i]) ? url[i] : '?';
        c->url[i] = '\0';
    }
}

void http_observe_stream(struct MHD_Connection *conn, const char *stream)
{
    struct conn_ctx *c = ctx_of(conn);

    if (c && strlen(stream) < sizeof(c->stream))
        memcpy(c->stream, stream, strlen(stream) + 1);
}

void http_observe_obj(struct MHD_Connection *conn, const char *method, bool playlist,
                      size_t bytes)
{
    struct conn_ctx *c = ctx_of(conn);

    if (!c)
        return;
    c->playlist = playlist;
    c->bytes = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ? bytes : 0;
}

static void log_access(struct MHD_Connection *conn, const struct conn_ctx *c, unsigned status,
                       int64_t us)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char peer[NI_MAXHOST] = "?";

    if (ci && ci->client_addr)
        getnameinfo(ci->client_addr,
                    ci->client_addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                                           : sizeof(struct sockaddr_in),
                    peer, sizeof(peer), NULL, 0, NI_NUMERICHOST);
    log_info("http-access", "%s \"%s %s\" %u %zu %.1f ms", peer, c->method, c->url, status,
             status == 200 ? c->bytes : (size_t)0, (double)us / 1000.0);
}

void http_observe_end(struct MHD_Connection *conn)
{
    struct conn_ctx *c = ctx_of(conn);
    const union MHD_ConnectionInfo *ci;
    unsigned status = 0;
    int64_t us;

    if (!c || !c->active)
        return;
    c->active = false;
    ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (ci)
        status = ci->http_status;
    us = now_us() - c->start_us;
    if (atomic_load_explicit(&access_log, memory_order_relaxed))
        log_access(conn, c, status, us);
    if (!mx_enabled() || status == 0)
        return; /* nothing was answered (the client went away first) */
    mx_http_response(status, us);
    if (c->stream[0] && (status == 200 || status == 304)) {
        struct mx_stream *s = mx_stream_find(c->stream);

        if (status == 200)
            mx_stream_served(s, c->bytes);
        if (c->playlist)
            mx_stream_viewer(s, c->addr_hash, time_mono_ms());
    } else if (status == 200) {
        mx_stream_served(NULL, c->bytes);
    }
}

static void unref_jpeg(void *cls)
{
    buf_unref(cls);
}

struct MHD_Response *http_thumb_response(const char *stream, unsigned *status)
{
    struct buf *jpeg = NULL;
    struct MHD_Response *r;
    char cc[48];

    switch (thumb_get(stream, time_mono_ms(), &jpeg)) {
    case THUMB_READY:
        r = MHD_create_response_from_buffer_with_free_callback_cls(
            jpeg->len, jpeg->data, unref_jpeg, jpeg);
        if (!r) {
            buf_unref(jpeg);
            return NULL;
        }
        snprintf(cc, sizeof(cc), "public, max-age=%d", thumb_interval_s());
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "image/jpeg");
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cc);
        *status = MHD_HTTP_OK;
        return r;
    case THUMB_PENDING: {
        static const char text[] = "thumbnail not ready yet\n";

        r = MHD_create_response_from_buffer(sizeof(text) - 1, (void *)text,
                                            MHD_RESPMEM_PERSISTENT);
        if (r) {
            MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
            MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
            MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
        }
        *status = MHD_HTTP_SERVICE_UNAVAILABLE;
        return r;
    }
    default:
        *status = MHD_HTTP_NOT_FOUND;
        return NULL;
    }
}
