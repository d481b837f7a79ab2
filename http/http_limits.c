/*
 * Request-head deadline and connection accounting around libmicrohttpd.
 *
 * MHD only knows an idle timeout, so a client that sends one header byte every
 * few seconds is never timed out. Each connection gets a small record (MHD's
 * socket context) that is on a deadline list while a request head is
 * expected: from accept, and again from the end of each response (keep-alive).
 * Deadlines are "now + request_timeout", so appending keeps the list sorted; a
 * thread wakes every DEADLINE_TICK_MS and shuts down (SHUT_RDWR) the sockets
 * whose deadline passed. MHD then reads EOF and closes the connection itself:
 * no MHD call from a foreign thread. The record is unlinked in MHD's "closed"
 * notification, which comes before MHD closes the descriptor, and all list
 * work happens under one mutex, so a shut-down descriptor is always still ours.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "../common/common.h"
#include "../config/config.h"
#include "http_internal.h"
#include "http_limits.h"

#define MOD "http"
#define DEADLINE_TICK_MS 250

struct conn_rec {
    struct http_limits *l;
    struct conn_rec *prev, *next; /* on the deadline list while armed */
    bool armed;
    bool too_many_args;
    int fd;
    int64_t deadline_ms;
};

struct http_limits {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    pthread_t thread;
    bool stop;
    struct conn_rec *head, *tail;
    int64_t timeout_ms;
    unsigned max_conns;
    atomic_uint nconns;
};

static void disarm(struct http_limits *l, struct conn_rec *r)
{
    if (!r->armed)
        return;
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    r->armed = false;
}

static void arm(struct http_limits *l, struct conn_rec *r)
{
    disarm(l, r);
    r->deadline_ms = time_mono_ms() + l->timeout_ms;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    r->armed = true;
}

static void *deadline_thread(void *arg)
{
    struct http_limits *l = arg;

    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        struct timespec ts;
        int64_t now = time_mono_ms();
        unsigned n = 0;

        while (l->head && l->head->deadline_ms <= now) {
            struct conn_rec *r = l->head;

            shutdown(r->fd, SHUT_RDWR); /* MHD sees EOF and closes it */
            disarm(l, r);
            n++;
        }
        if (n) {
            pthread_mutex_unlock(&l->lock);
            log_warn_rl(MOD, "closed %u connection%s that sent no complete request head within "
                        "%g s (http.request_timeout)",
                        n, n == 1 ? "" : "s", (double)l->timeout_ms / 1000.0);
            pthread_mutex_lock(&l->lock);
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += DEADLINE_TICK_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&l->wake, &l->lock, &ts);
    }
    pthread_mutex_unlock(&l->lock);
    return NULL;
}

int http_limits_new(const struct cfg *cfg, unsigned max_conns, struct http_limits **out)
{
    struct http_limits *l = calloc(1, sizeof(*l));
    pthread_condattr_t ca;
    int rc;

    *out = NULL;
    if (!l)
        return -ENOMEM;
    l->timeout_ms = (int64_t)((cfg->http_request_timeout_s > 0 ? cfg->http_request_timeout_s : 10) *
                              1000.0);
    l->max_conns = max_conns;
    atomic_init(&l->nconns, 0);
    pthread_mutex_init(&l->lock, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&l->wake, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&l->thread, NULL, deadline_thread, l);
    if (rc != 0) {
        pthread_cond_destroy(&l->wake);
        pthread_mutex_destroy(&l->lock);
        free(l);
        return -rc;
    }
    *out = l;
    return 0;
}

void http_limits_free(struct http_limits *l)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->lock);
    l->stop = true;
    pthread_cond_signal(&l->wake);
    pthread_mutex_unlock(&l->lock);
    pthread_join(l->thread, NULL);
    pthread_cond_destroy(&l->wake);
    pthread_mutex_destroy(&l->lock);
    free(l);
}

void http_limits_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe)
{
    struct http_limits *l = cls;
    struct conn_rec *r = *socket_context;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        unsigned n = atomic_fetch_add(&l->nconns, 1) + 1;

        if (l->max_conns && n >= l->max_conns)
            log_warn_rl(MOD, "%u connections: the limit (http.max_connections, from the open-file "
                        "limit) is reached; new clients wait", n);
        r = calloc(1, sizeof(*r));
        if (!r || !ci) {
            free(r);
            return; /* no deadline for this one; MHD's idle timeout still applies */
        }
        r->l = l;
        r->fd = ci->connect_fd;
        pthread_mutex_lock(&l->lock);
        arm(l, r);
        pthread_mutex_unlock(&l->lock);
        *socket_context = r;
        return;
    }
    atomic_fetch_sub(&l->nconns, 1);
    if (!r)
        return;
    pthread_mutex_lock(&l->lock);
    disarm(l, r);
    pthread_mutex_unlock(&l->lock);
    free(r);
    *socket_context = NULL;
}

static struct conn_rec *rec_of(struct MHD_Connection *conn)
{
    struct http_conn *hc = http_conn_of(conn);

    return hc ? hc->limits : NULL;
}

void *http_limits_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct conn_rec *r = rec_of(conn);
    char *q = strchr(uri, '?');
    unsigned args = 1;

    (void)cls;
    if (!q)
        return NULL;
    for (const char *p = q; *p; p++)
        args += *p == '&' || *p == ';';
    if (args > HTTP_LIMITS_MAX_QUERY_ARGS) {
        /*
         * MHD's own buffer, parsed into name/value records right after this
         * call: without separators the whole query is one record, so the pool
         * has room left for our 414.
         */
        for (char *p = q; *p; p++)
            if (*p == '&' || *p == ';')
                *p = '_';
        if (r)
            r->too_many_args = true;
    }
    return NULL;
}

unsigned http_limits_request_begin(struct MHD_Connection *conn)
{
    struct conn_rec *r = rec_of(conn);

    if (!r)
        return 0;
    pthread_mutex_lock(&r->l->lock);
    disarm(r->l, r);
    pthread_mutex_unlock(&r->l->lock);
    if (r->too_many_args) {
        r->too_many_args = false;
        log_warn_rl(MOD, "a request with more than %d query arguments: 414",
                    HTTP_LIMITS_MAX_QUERY_ARGS);
        return MHD_HTTP_URI_TOO_LONG;
    }
    return 0;
}

void http_limits_request_end(struct MHD_Connection *conn)
{
    struct conn_rec *r = rec_of(conn);

    if (!r)
        return;
    pthread_mutex_lock(&r->l->lock);
    arm(r->l, r);
    pthread_mutex_unlock(&r->l->lock);
}
