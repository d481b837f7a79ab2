/*
 * The admin listener: statistics and moderation on their own libmicrohttpd
 * daemon and port (admin.listen), never on the public viewer port.
 *
 *   GET  /api/v1/streams              every stream seen since start (JSON)
 *   GET  /api/v1/streams/NAME         one stream
 *   POST /api/v1/streams/NAME/kick    disconnect NAME's publisher
 *   GET  /api/v1/server               version, uptime, config file, connections
 *   GET  /metrics                     Prometheus text format 0.0.4
 *
 * With admin.token set every request needs "Authorization: Bearer TOKEN"
 * (compared in constant time); 401 otherwise. JSON is built with jansson.
 * One polling thread: the admin port serves a person and a scraper, not the
 * audience.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "../config/config.h"
#include "../metrics/metrics.h"
#include "../store/store.h"
#include "http.h"

#define MOD "admin"
#define API "/api/v1/"

struct admin_server {
    struct MHD_Daemon *daemon;
    struct store *st;
    struct admin_params p;
    pthread_mutex_t token_lock; /* the token changes with a reload */
    char token[CFG_STR_MAX];
    char config_path[CFG_STR_MAX];
    int64_t started_ms; /* monotonic */
    int64_t started_wall_ms;
    int port;
};

/* Marks a request whose first handler call has been seen. */
static char request_seen;

/* ---- responses --------------------------------------------------------------- */

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *type,
                                 const void *data, size_t len)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result ret;

    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"onair\"");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD, POST");
    ret = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Sends J (takes ownership) as JSON. */
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *j)
{
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    enum MHD_Result ret;

    json_decref(j);
    if (!text)
        return MHD_NO;
    ret = send_text(conn, status, "application/json", text, strlen(text));
    free(text);
    return ret;
}

static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status, const char *msg)
{
    return send_json(conn, status, json_pack("{s:s}", "error", msg));
}

/* ---- JSON ----------------------------------------------------------------------- */

static json_t *iso_time(int64_t wall_ms)
{
    char ts[40];

    if (wall_ms <= 0)
        return json_null();
    time_iso8601(wall_ms, ts, sizeof(ts));
    return json_string(ts);
}

static json_t *str_or_null(const char *s)
{
    return s && s[0] ? json_string(s) : json_null();
}

static json_t *health_json(const struct mx_stream_info *in)
{
    json_t *a = json_array();

    for (int i = 0; a && i < MX_HEALTH_COUNT; i++)
        if (in->health & (1u << i))
            json_array_append_new(a, json_pack("{s:s,s:s}", "code", mx_health_code(i), "message",
                                               in->health_why[i]));
    return a;
}

static json_t *stream_json(struct mx_stream *s)
{
    struct mx_stream_info in;
    json_t *video = NULL, *j;

    mx_stream_info(s, &in);
    if (in.width > 0)
        video = json_pack("{s:i,s:i,s:f}", "width", in.width, "height", in.height, "framerate",
                          in.framerate);
    j = json_pack("{s:s,s:b,s:b,s:o,s:o,s:o,s:o,s:o,s:f,s:o,s:f,s:I,s:I,s:I,s:I,s:i,s:I,s:I,s:I,"
                  "s:o,s:o}",
                  "name", in.name, "live", in.live, "publishing", in.publishing, "live_since", iso_time(in.live_since_ms),
                  "publisher", str_or_null(in.peer), "encoder", str_or_null(in.encoder),
                  "codecs", str_or_null(in.codecs), "video", video ? video : json_null(),
                  "bitrate_kbps", in.bitrate_bps / 1000.0, "keyframe_interval_s",
                  in.keyint_s > 0 ? json_real(in.keyint_s) : json_null(), "av_drift_ms",
                  in.drift_ms, "behind_ms", (json_int_t)in.behind_ms, "segments",
                  (json_int_t)in.segments, "parts", (json_int_t)in.parts, "media_sequence",
                  (json_int_t)in.msn, "viewers", in.viewers, "bytes_in", (json_int_t)in.bytes_in,
                  "bytes_out", (json_int_t)in.bytes_out, "publishes", (json_int_t)in.publishes,
                  "health", health_json(&in), "last_error",
                  in.last_error[0] ? json_pack("{s:s,s:o}", "message", in.last_error, "at",
                                               iso_time(in.last_error_ms))
                                   : json_null());
    return j;
}

static void add_stream(void *arg, struct mx_stream *s)
{
    json_t *j = stream_json(s);

    if (j)
        json_array_append_new(arg, j);
}

static enum MHD_Result get_streams(struct MHD_Connection *conn)
{
    json_t *a = json_array();

    if (!a)
        return MHD_NO;
    mx_stream_foreach(add_stream, a);
    return send_json(conn, MHD_HTTP_OK, json_pack("{s:o}", "streams", a));
}

static enum MHD_Result get_server(struct admin_server *a, struct MHD_Connection *conn)
{
    return send_json(
        conn, MHD_HTTP_OK,
        json_pack("{s:s,s:o,s:f,s:o,s:i,s:{s:I,s:I},s:I,s:I}", "version", ONAIR_VERSION,
                  "started", iso_time(a->started_wall_ms), "uptime_s",
                  (double)(time_mono_ms() - a->started_ms) / 1000.0, "config_file",
                  str_or_null(a->config_path), "streams_live", store_live_count(a->st),
                  "connections", "rtmp", (json_int_t)mx_gauge_value(MX_RTMP_CONNECTIONS), "http",
                  (json_int_t)mx_gauge_value(MX_HTTP_CONNECTIONS), "blocked_requests",
                  (json_int_t)store_waiting_count(a->st), "http_requests",
                  (json_int_t)mx_counter_value(MX_HTTP_REQUESTS)));
}

static enum MHD_Result get_metrics(struct admin_server *a, struct MHD_Connection *conn)
{
    struct mx_extra x = {
        .uptime_s = (double)(time_mono_ms() - a->started_ms) / 1000.0,
        .streams_live = store_live_count(a->st),
        .blocked_requests = store_waiting_count(a->st),
    };
    struct bytes out = {0};
    enum MHD_Result ret;

    if (mx_render_prometheus(&out, &x) < 0) {
        bytes_reset(&out);
        return MHD_NO;
    }
    ret = send_text(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", out.data,
                    out.len);
    bytes_reset(&out);
    return ret;
}

static enum MHD_Result kick(struct admin_server *a, struct MHD_Connection *conn, const char *name)
{
    int rc;

    if (!a->p.kick)
        return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "kick is not available");
    rc = a->p.kick(a->p.kick_arg, name);
    if (rc == -ENOENT)
        return send_error(conn, MHD_HTTP_NOT_FOUND, "no publisher for this stream");
    if (rc < 0)
        return send_error(conn, MHD_HTTP_SERVICE_UNAVAILABLE, strerror(-rc));
    mx_count(MX_KICKS, 1);
    log_info(MOD, "stream %s: publisher disconnected through the admin API", name);
    return send_json(conn, MHD_HTTP_OK, json_pack("{s:s,s:b}", "stream", name, "kicked", 1));
}

/* ---- routing ------------------------------------------------------------------- */

/* Constant-time comparison of the presented bearer token. */
static bool authorized(struct admin_server *a, struct MHD_Connection *conn)
{
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_AUTHORIZATION);
    char token[CFG_STR_MAX];
    size_t want, got;
    unsigned diff = 0;

    pthread_mutex_lock(&a->token_lock);
    memcpy(token, a->token, sizeof(token));
    pthread_mutex_unlock(&a->token_lock);
    want = strlen(token);
    if (!token[0])
        return true;
    if (!h || strncasecmp(h, "Bearer ", 7) != 0)
        return false;
    h += 7;
    got = strlen(h);
    diff = got != want;
    for (size_t i = 0; i < want; i++)
        diff |= (unsigned)(token[i] ^ (i < got ? h[i] : 0));
    explicit_bzero(token, sizeof(token));
    return diff == 0;
}

void admin_server_set_token(struct admin_server *a, const char *token)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->token_lock);
    snprintf(a->token, sizeof(a->token), "%s", token ? token : "");
    pthread_mutex_unlock(&a->token_lock);
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n >= MX_NAME_MAX || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '-' || s[i] == '_' || s[i] == '.' || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return false;
    return true;
}

static enum MHD_Result route(struct admin_server *a, struct MHD_Connection *conn,
                             const char *method, const char *url)
{
    bool get = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    bool post = !strcmp(method, "POST");
    char name[MX_NAME_MAX + 8];

    if (!authorized(a, conn))
        return send_error(conn, MHD_HTTP_UNAUTHORIZED, "a bearer token is required");
    if (!strcmp(url, "/metrics"))
        return get ? get_metrics(a, conn) : send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (!strcmp(url, API "server"))
        return get ? get_server(a, conn) : send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (!strcmp(url, API "streams"))
        return get ? get_streams(conn) : send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
    if (!strncmp(url, API "streams/", sizeof(API "streams/") - 1)) {
        const char *rest = url + sizeof(API "streams/") - 1, *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        struct mx_stream *s;

        if (n >= sizeof(name))
            return send_error(conn, MHD_HTTP_NOT_FOUND, "no such stream");
        memcpy(name, rest, n);
        name[n] = '\0';
        if (!name_ok(name))
            return send_error(conn, MHD_HTTP_BAD_REQUEST, "invalid stream name");
        if (slash && !strcmp(slash, "/kick"))
            return post ? kick(a, conn, name)
                        : send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "POST");
        if (slash)
            return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
        if (!get)
            return send_error(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "GET");
        s = mx_stream_find(name);
        if (!s)
            return send_error(conn, MHD_HTTP_NOT_FOUND, "no such stream");
        return send_json(conn, MHD_HTTP_OK, stream_json(s));
    }
    return send_error(conn, MHD_HTTP_NOT_FOUND, "not found");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    (void)version;
    (void)upload_data;
    if (*req_cls == NULL) {
        *req_cls = &request_seen;
        return MHD_YES;
    }
    if (*upload_data_size) {
        *upload_data_size = 0; /* no endpoint takes a body */
        return MHD_YES;
    }
    return route(cls, conn, method, url);
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug(MOD, "%s", line);
}

/* ---- start-up --------------------------------------------------------------------- */

static struct MHD_Daemon *start(struct admin_server *a, unsigned flags, int port,
                                const struct sockaddr *addr)
{
    if (addr)
        return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, a,
                                MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, a,
                                MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT,
                                30u, MHD_OPTION_SOCK_ADDR, addr, MHD_OPTION_END);
    return MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, a,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, a,
                            MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 30u,
                            MHD_OPTION_END);
}

int admin_server_new(const struct admin_params *p, struct store *st, struct admin_server **out)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    struct admin_server *a;
    struct addrinfo *ai = NULL;
    const union MHD_DaemonInfo *info;
    char host[CFG_STR_MAX];
    const char *why;
    int port;

    *out = NULL;
    if (!p->listen || !p->listen[0])
        return 0; /* disabled */
    if (cfg_split_listen(p->listen, host, sizeof(host), &port) < 0 || port < 0 || port > 65535) {
        log_error(MOD, "admin.listen: bad address \"%s\"", p->listen);
        return -EINVAL;
    }
    a = calloc(1, sizeof(*a));
    if (!a)
        return -ENOMEM;
    a->p = *p;
    a->st = st;
    pthread_mutex_init(&a->token_lock, NULL);
    snprintf(a->token, sizeof(a->token), "%s", p->token ? p->token : "");
    snprintf(a->config_path, sizeof(a->config_path), "%s", p->config_path ? p->config_path : "");
    a->started_ms = time_mono_ms();
    a->started_wall_ms = time_wall_ms();
    if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL;
    if (!host[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_IPv6) == MHD_YES)
            a->daemon = start(a, flags | MHD_USE_DUAL_STACK, port, NULL);
        if (!a->daemon)
            a->daemon = start(a, flags, port, NULL);
    } else if (cfg_resolve_listen(host, port, &ai, &why) < 0) {
        log_error(MOD, "admin.listen %s: %s", p->listen, why);
        free(a);
        return -EINVAL;
    } else {
        a->daemon = start(a, flags | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0), port,
                          ai->ai_addr);
        freeaddrinfo(ai);
    }
    if (!a->daemon) {
        log_error(MOD, "cannot listen on %s (admin.listen)", p->listen);
        free(a);
        return -EADDRNOTAVAIL;
    }
    info = MHD_get_daemon_info(a->daemon, MHD_DAEMON_INFO_BIND_PORT);
    a->port = info ? info->port : port;
    log_info(MOD, "admin API on %s (port %d)%s", p->listen, a->port,
             a->token[0] ? ", bearer token required" : "");
    *out = a;
    return 0;
}

void admin_server_free(struct admin_server *a)
{
    if (!a)
        return;
    MHD_stop_daemon(a->daemon);
    pthread_mutex_destroy(&a->token_lock);
    explicit_bzero(a->token, sizeof(a->token));
    free(a);
}

int admin_server_port(const struct admin_server *a)
{
    return a ? a->port : 0;
}
