/*
 * http.redirect_listen: a plain-HTTP listener that serves nothing and sends
 * every request to the same path and query on HTTPS:
 *
 *   GET /live/show/?exp=1&sig=ab HTTP/1.1      HTTP/1.1 301 Moved Permanently
 *   Host: example.org                    ──▶   Location: https://example.org/live/show/?exp=1&sig=ab
 *
 * 301 for GET and HEAD (what every client follows), 308 for any other method
 * (keeps the method and body). The host comes from the request's Host header
 * (its port dropped; the HTTPS port added unless it is 443); a request
 * without a usable Host gets 400. One small MHD daemon per address, with the
 * same request-head deadline and connection accounting as the main server.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <microhttpd.h>

#include "../common/common.h"
#include "../config/config.h"
#include "http_internal.h"
#include "http_limits.h"

#define MOD "http"
#define REDIRECT_TIMEOUT_S 10
#define REDIRECT_MAX_CONNS 1024

struct http_redirect {
    struct MHD_Daemon *daemons[HTTP_REDIRECT_MAX_DAEMONS];
    int ndaemons;
    int port;       /* bound */
    int https_port; /* where the Location points */
    struct http_limits *limits; /* borrowed from the server */
};

static bool host_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '-' || c == '_' || c == ':';
}

int http_redirect_location(const char *host, const char *uri, int https_port, char *out,
                           size_t outlen)
{
    size_t hlen, i;
    int n;

    if (!host || !uri || uri[0] != '/')
        return -EINVAL;
    if (host[0] == '[') { /* [v6] or [v6]:port */
        const char *close = strchr(host, ']');

        if (!close || (close[1] && close[1] != ':'))
            return -EINVAL;
        hlen = (size_t)(close - host) + 1;
        for (i = 1; i + 1 < hlen; i++)
            if (!host_char(host[i]))
                return -EINVAL;
    } else {
        hlen = strcspn(host, ":");
        for (i = 0; i < hlen; i++)
            if (!host_char(host[i]))
                return -EINVAL;
    }
    if (hlen == 0 || hlen > 255)
        return -EINVAL;
    /* The path and query as the client sent them: MHD already refused CR, LF, NUL. */
    for (const char *p = uri; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return -EINVAL;
    if (https_port == 443)
        n = snprintf(out, outlen, "https://%.*s%s", (int)hlen, host, uri);
    else
        n = snprintf(out, outlen, "https://%.*s:%d%s", (int)hlen, host, https_port, uri);
    return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}

/* MHD_OPTION_URI_LOG_CALLBACK: keeps the raw URI (path and query) for the redirect. */
static void *keep_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct http_redirect *r = cls;

    http_limits_uri(r->limits, uri, conn);
    return strdup(uri);
}

static void forget_uri(void *cls, struct MHD_Connection *conn, void **req_cls,
                       enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)conn, (void)toe;
    free(*req_cls);
    *req_cls = NULL;
}

/* MHD_OPTION_NOTIFY_CONNECTION (CLS = the limits): the limits' context, as in http.c. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct http_conn *hc = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        hc = calloc(1, sizeof(*hc));
        *socket_context = hc;
    }
    if (!hc)
        return;
    http_limits_notify(cls, conn, &hc->limits, toe);
    if (toe != MHD_CONNECTION_NOTIFY_STARTED) {
        free(hc);
        *socket_context = NULL;
    }
}

static enum MHD_Result queue_text(struct MHD_Connection *conn, unsigned status, const char *text,
                                  const char *location)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (location)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result on_redirect(void *cls, struct MHD_Connection *conn, const char *url,
                                   const char *method, const char *version,
                                   const char *upload_data, size_t *upload_data_size,
                                   void **req_cls)
{
    struct http_redirect *r = cls;
    const char *host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
    const char *uri = *req_cls ? *req_cls : url;
    bool simple = !strcmp(method, "GET") || !strcmp(method, "HEAD");
    char location[4096];
    unsigned status;

    (void)version, (void)upload_data;
    if (*upload_data_size) { /* a body: not ours to read */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if ((status = http_limits_request_begin(conn)) != 0)
        return queue_text(conn, status, "too many query arguments\n", NULL);
    if (http_redirect_location(host, uri, r->https_port, location, sizeof(location)) < 0) {
        log_info_rl(MOD, "redirect: a request without a usable Host header: 400");
        return queue_text(conn, MHD_HTTP_BAD_REQUEST, "this port only redirects to HTTPS; "
                                                      "send a Host header\n", NULL);
    }
    http_limits_request_end(conn);
    return queue_text(conn, simple ? MHD_HTTP_MOVED_PERMANENTLY : MHD_HTTP_PERMANENT_REDIRECT,
                      "moved to HTTPS\n", location);
}

static void redirect_logger(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_debug(MOD, "redirect: libmicrohttpd: %s", line);
}

static struct MHD_Daemon *start_one(struct http_redirect *r, const struct cfg *cfg,
                                    unsigned flags, uint16_t port, const struct sockaddr *addr)
{
    struct MHD_OptionItem opts[] = {
        {MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)redirect_logger, NULL},
        {MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)keep_uri, r},
        {MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)forget_uri, NULL},
        {MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_connection, r->limits},
        {MHD_OPTION_CONNECTION_TIMEOUT, REDIRECT_TIMEOUT_S, NULL},
        {MHD_OPTION_CONNECTION_LIMIT, REDIRECT_MAX_CONNS, NULL},
        {MHD_OPTION_PER_IP_CONNECTION_LIMIT, cfg->http_max_connections_per_ip, NULL},
        {MHD_OPTION_CONNECTION_MEMORY_LIMIT,
         cfg->http_max_request_bytes > 0 ? cfg->http_max_request_bytes : 32768, NULL},
        {addr ? MHD_OPTION_SOCK_ADDR : MHD_OPTION_END, (intptr_t)0, (void *)addr},
        {MHD_OPTION_END, 0, NULL},
    };

    return MHD_start_daemon(flags, port, NULL, NULL, on_redirect, r, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
}

static int bound_port(struct MHD_Daemon *d)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);

    return info ? info->port : -1;
}

int http_redirect_new(const struct cfg *cfg, int https_port, struct http_limits *limits,
                      struct http_redirect **out)
{
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
    struct http_redirect *r;
    struct addrinfo *res = NULL, *ai;
    struct MHD_Daemon *d = NULL;
    char host[CFG_STR_MAX];
    const char *why;
    int port;

    *out = NULL;
    if (cfg_split_listen(cfg->http_redirect_listen, host, sizeof(host), &port) < 0)
        return -EINVAL;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    r->https_port = https_port;
    r->limits = limits;
    if (MHD_is_feature_supported(MHD_FEATURE_POLL) == MHD_YES)
        flags |= MHD_USE_POLL; /* not epoll: see bind_and_start in http.c */
    if (!host[0]) {
        if (MHD_is_feature_supported(MHD_FEATURE_IPv6) == MHD_YES)
            d = start_one(r, cfg, flags | MHD_USE_DUAL_STACK, (uint16_t)port, NULL);
        if (!d)
            d = start_one(r, cfg, flags, (uint16_t)port, NULL);
        if (d)
            r->daemons[r->ndaemons++] = d;
    } else if (cfg_resolve_listen(host, port, &res, &why) == 0) {
        for (ai = res; ai && r->ndaemons < HTTP_REDIRECT_MAX_DAEMONS; ai = ai->ai_next) {
            int p = r->ndaemons > 0 && port == 0 ? bound_port(r->daemons[0]) : port;

            ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)p);
            d = start_one(r, cfg, flags | (ai->ai_family == AF_INET6 ? MHD_USE_IPv6 : 0),
                          (uint16_t)p, ai->ai_addr);
            if (!d) {
                while (r->ndaemons)
                    MHD_stop_daemon(r->daemons[--r->ndaemons]);
                break;
            }
            r->daemons[r->ndaemons++] = d;
        }
        freeaddrinfo(res);
    } else {
        log_error(MOD, "http.redirect_listen %s: %s", cfg->http_redirect_listen, why);
    }
    if (!r->ndaemons) {
        log_error(MOD, "cannot listen on %s (http.redirect_listen)", cfg->http_redirect_listen);
        free(r);
        return -EADDRNOTAVAIL;
    }
    r->port = bound_port(r->daemons[0]);
    log_info(MOD, "redirecting plain HTTP on %s (port %d) to HTTPS (port %d)",
             cfg->http_redirect_listen, r->port, https_port);
    *out = r;
    return 0;
}

void http_redirect_quiesce(struct http_redirect *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->ndaemons; i++) {
        MHD_socket fd = MHD_quiesce_daemon(r->daemons[i]);

        if (fd != MHD_INVALID_SOCKET)
            close(fd);
    }
}

void http_redirect_free(struct http_redirect *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->ndaemons; i++)
        MHD_stop_daemon(r->daemons[i]);
    free(r);
}

int http_redirect_port(const struct http_redirect *r)
{
    return r ? r->port : -1;
}
