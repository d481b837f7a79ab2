/*
 * The RTMP listener: the only ingest file that touches sockets. One
 * bufferevent per connection; whatever arrives is fed to that connection's
 * session (rtmp_session.c) and whatever the session wants to send is written
 * back. A session error closes that connection only, after its last replies
 * went out:
 *
 *   accept ─▶ open ──(session error / refusal)──▶ flushing ──▶ lingering ──▶ freed
 *               │                                  (write)     (SHUT_WR, drain
 *               └──(EOF, socket error, timeout)──────────────────  input ≤ 2 s) ─▶ freed
 *
 * Limits (config rtmp.*), each logged when it triggers:
 *   - setup_timeout: handshake + connect + publish must be done by then;
 *   - max_unauthenticated: connections not publishing yet have their own
 *     budget; when it is full the oldest one (still in the handshake first)
 *     makes room, so a real publisher that gets through in milliseconds is
 *     never locked out by idle connections;
 *   - idle_timeout: a publisher that sends no audio or video is dropped (and
 *     any connection that sends no byte at all);
 *   - max_buffer_bytes (in the session's chunk reader) and
 *     max_total_buffer_bytes: partial messages per connection and in total;
 *     beyond the total the connection holding the most is closed.
 *
 * RTMPS (rtmps.listen) is the same server on more listeners: an accepted
 * socket gets an OpenSSL bufferevent (libevent's bufferevent_openssl, server
 * side, context from tls.c) instead of a plain one, and everything above it
 * (session, limits, timers, hooks) is shared. The TLS handshake counts as part
 * of the RTMP setup: setup_timeout and the unauthenticated budget cover it.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../config/config.h"
#include "../metrics/metrics.h"
#include "../segmenter/segmenter.h"
#include "control_internal.h"
#include "hooks_internal.h"
#include "ingest.h"
#include "session_internal.h"
#include "tls_internal.h"

#define FLUSH_TIMEOUT_S 5
#define LINGER_MS 2000
#define MEDIA_CHECK_MS 1000
#define MAX_PENDING_OUT (256 * 1024) /* a peer that does not read its replies */
#define DEFAULT_MAX_MESSAGE (8 * 1024 * 1024)
#define REFUSED_KEY_DELAY_MS 2000 /* what a wrong stream key costs: no fast guessing */

enum conn_phase { CONN_OPEN, CONN_REFUSING, CONN_FLUSHING, CONN_LINGERING };

struct conn {
    struct rtmp_server *srv;
    struct conn *prev, *next;   /* every connection */
    struct conn *pprev, *pnext; /* not publishing yet, oldest first */
    bool pending;               /* on that list */
    struct bufferevent *bev;
    struct event *timer; /* setup deadline, media checks, refusal delay, linger deadline */
    struct rtmp_session *sess;
    enum conn_phase phase;
    size_t buffered;         /* session's partial-message bytes, last seen */
    uint64_t media_messages; /* at the last media check */
    int64_t media_ms;        /* when media_messages last changed */
    char peer[64];
    unsigned id;
    struct hook_req *hook; /* the on_publish request the session waits for */
    char live_name[CFG_NAME_MAX]; /* stream on_live was sent for; "" = none */
    bool tls;                     /* accepted on rtmps.listen */
    bool tls_up;                  /* its TLS handshake is done */
};

#define RTMP_MAX_LISTENERS 8

/* Every address one rtmp.listen value binds to. */
struct listeners {
    struct evconnlistener *l[RTMP_MAX_LISTENERS];
    int n;
    int port;
};

struct rtmp_server {
    struct event_base *base;
    const struct cfg *cfg; /* our reference; swapped by rtmp_server_reconfigure */
    struct store *store;
    struct seg_hub *hub;    /* the stream names being published, and those in reconnect grace */
    struct event *hub_tick;
    struct listeners lis;
    struct listeners tls_lis; /* rtmps.listen; n = 0 when off */
    SSL_CTX *tls_ctx;         /* for new RTMPS connections; NULL when off */
    struct event *accept_retry;
    struct rtmp_session_params params; /* for new connections */
    struct conn *conns;
    struct hooks *hooks;
    struct conn *pending_head, *pending_tail;
    int nconns, npending;
    size_t buffered; /* sum of every conn's buffered */
    unsigned next_id;
    struct rtmp_control *control; /* kicks from the admin thread */
};

static void conn_event(struct bufferevent *bev, short what, void *arg);
static int drop_publisher(void *arg, const char *name);
static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg);
static void on_accept_tls(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                          int socklen, void *arg);
static int authorize(void *arg, const char *key, struct rtmp_publish_grant *out);
static void conn_hooks_end(struct conn *c);
static int conn_hooks(struct conn *c);

static void pending_remove(struct conn *c)
{
    struct rtmp_server *srv = c->srv;

    if (!c->pending)
        return;
    if (c->pprev)
        c->pprev->pnext = c->pnext;
    else
        srv->pending_head = c->pnext;
    if (c->pnext)
        c->pnext->pprev = c->pprev;
    else
        srv->pending_tail = c->pprev;
    c->pprev = c->pnext = NULL;
    c->pending = false;
    srv->npending--;
}

static void pending_append(struct conn *c)
{
    struct rtmp_server *srv = c->srv;

    c->pprev = srv->pending_tail;
    c->pnext = NULL;
    if (srv->pending_tail)
        srv->pending_tail->pnext = c;
    else
        srv->pending_head = c;
    srv->pending_tail = c;
    c->pending = true;
    srv->npending++;
}

static void conn_free(struct conn *c)
{
    struct rtmp_server *srv = c->srv;

    if (c->prev)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    srv->nconns--;
    pending_remove(c);
    srv->buffered -= c->buffered;
    hooks_cancel(c->hook);
    conn_hooks_end(c);
    mx_gauge_add(MX_RTMP_CONNECTIONS, -1);
    rtmp_session_free(c->sess); /* ends the stream */
    if (c->timer)
        event_free(c->timer);
    if (c->bev)
        bufferevent_free(c->bev); /* closes the socket */
    free(c);
}

/* Drops whatever the peer still sends while we linger (see conn_shutdown). */
static void conn_discard(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);

    (void)arg;
    evbuffer_drain(in, evbuffer_get_length(in));
}

/*
 * Our last bytes are out: send FIN and keep reading a little, so that a peer
 * still pushing media does not turn our close into an RST that could destroy
 * the error reply before the peer reads it.
 */
static void conn_shutdown(struct conn *c)
{
    struct timeval tv = {LINGER_MS / 1000, (LINGER_MS % 1000) * 1000};

    c->phase = CONN_LINGERING;
    if (c->tls) {
        SSL *ssl = bufferevent_openssl_get_ssl(c->bev);

        /* close_notify, so that the peer sees a clean end (the output is flushed) */
        if (ssl && SSL_is_init_finished(ssl))
            SSL_shutdown(ssl);
        ERR_clear_error();
    }
    shutdown(bufferevent_getfd(c->bev), SHUT_WR);
    bufferevent_setcb(c->bev, conn_discard, NULL, conn_event, c);
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    bufferevent_enable(c->bev, EV_READ);
    evtimer_add(c->timer, &tv);
}

static void conn_flushed(struct bufferevent *bev, void *arg)
{
    (void)bev;
    conn_shutdown(arg);
}

/* Closes C once its pending output is written. */
static void conn_close_soon(struct conn *c)
{
    struct timeval tv = {FLUSH_TIMEOUT_S, 0};

    c->phase = CONN_FLUSHING;
    hooks_cancel(c->hook);
    c->hook = NULL;
    evtimer_del(c->timer);
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_shutdown(c);
        return;
    }
    bufferevent_setcb(c->bev, NULL, conn_flushed, conn_event, c);
    bufferevent_set_timeouts(c->bev, NULL, &tv);
}

/* Hands the session's out-buffer to libevent. Returns 0 or a negative errno. */
static int conn_flush(struct conn *c)
{
    struct bytes *out = rtmp_session_out(c->sess);

    if (out->len) {
        if (bufferevent_write(c->bev, out->data, out->len) < 0)
            return -ENOMEM;
        out->len = 0;
    }
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) > MAX_PENDING_OUT) {
        log_warn_rl(rtmp_session_label(c->sess), "peer does not read our replies; closing");
        return -ENOBUFS;
    }
    return 0;
}

static void conn_timer(evutil_socket_t fd, short what, void *arg);

/* C just published: it leaves the unauthenticated budget; its timer now checks for media. */
static void conn_authenticated(struct conn *c)
{
    struct timeval tv = {MEDIA_CHECK_MS / 1000, (MEDIA_CHECK_MS % 1000) * 1000};

    pending_remove(c);
    c->media_messages = rtmp_session_media_messages(c->sess);
    c->media_ms = time_mono_ms();
    evtimer_del(c->timer);
    evtimer_add(c->timer, &tv);
}

/*
 * Accounts C's partial-message bytes; past rtmp.max_total_buffer_bytes closes
 * the connection that holds the most. Returns false if that was C (freed).
 */
static bool account_buffered(struct conn *c)
{
    struct rtmp_server *srv = c->srv;
    size_t now = rtmp_session_buffered_bytes(c->sess), cap;
    struct conn *big = c;

    srv->buffered += now - c->buffered;
    c->buffered = now;
    cap = srv->cfg->rtmp_max_total_buffer_bytes > 0
              ? (size_t)srv->cfg->rtmp_max_total_buffer_bytes
              : SIZE_MAX;
    if (srv->buffered <= cap)
        return true;
    for (struct conn *o = srv->conns; o; o = o->next)
        if (o->buffered > big->buffered)
            big = o;
    log_warn_rl(rtmp_session_label(big->sess),
                "holds %zu bytes of partial messages while all connections hold %zu "
                "(rtmp.max_total_buffer_bytes %zu); closing",
                big->buffered, srv->buffered, cap);
    conn_free(big);
    return big != c;
}

/*
 * After the session moved (RC from it): a refused publish waits out the
 * refusal delay, an error closes once the replies are out, else flush; a
 * session that now publishes leaves the unauthenticated budget.
 */
static void conn_after(struct conn *c, int rc)
{
    if (rc == -EACCES) {
        /*
         * A refused stream key: the error reply waits in the session's
         * out-buffer while the peer waits on a timer (never the loop).
         */
        struct timeval tv = {REFUSED_KEY_DELAY_MS / 1000, (REFUSED_KEY_DELAY_MS % 1000) * 1000};

        c->phase = CONN_REFUSING;
        hooks_cancel(c->hook);
        c->hook = NULL;
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_set_timeouts(c->bev, NULL, NULL);
        evtimer_del(c->timer);
        evtimer_add(c->timer, &tv);
        return;
    }
    if (conn_flush(c) < 0) {
        conn_free(c);
        return;
    }
    if (rc < 0) {
        conn_close_soon(c); /* the session logged why */
        return;
    }
    if (c->pending && rtmp_session_state(c->sess) == RTMP_SESS_PUBLISHING)
        conn_authenticated(c);
}

/* ---- webhooks (hooks.c) -------------------------------------------------------- */

static void hook_info(struct conn *c, const char *name, struct hooks_publish_info *info)
{
    memset(info, 0, sizeof(*info));
    info->id = c->id;
    info->app = c->srv->params.app;
    info->name = name;
    info->addr = c->peer;
    info->key = "";
    info->query = "";
}

/* on_end for the stream C told on_live about, once. */
static void conn_hooks_end(struct conn *c)
{
    struct hooks_publish_info info;

    if (!c->live_name[0])
        return;
    hook_info(c, c->live_name, &info);
    hooks_notify(c->srv->hooks, false, &info);
    c->live_name[0] = '\0';
}

/* hooks_publish_cb: the on_publish verdict for the session waiting on it. */
static void conn_hook_done(void *arg, bool allow, const char *why)
{
    struct conn *c = arg;
    int rc;

    c->hook = NULL;
    rc = rtmp_session_authorized(c->sess, allow, why);
    if (rc == 0)
        rc = conn_hooks(c);
    conn_after(c, rc);
}

/*
 * The webhooks a session's new state calls for: on_publish for a publish
 * waiting in AUTHORIZING, on_live / on_end when publishing starts / stops.
 * Returns 0 or a negative errno (logged, the publish refused).
 */
static int conn_hooks(struct conn *c)
{
    enum rtmp_session_state st = rtmp_session_state(c->sess);
    const char *pending = rtmp_session_pending_key(c->sess);
    struct hooks_publish_info info;

    if (st == RTMP_SESS_AUTHORIZING && pending && !c->hook) {
        size_t cut = strcspn(pending, "?");
        char key[256];

        snprintf(key, sizeof(key), "%.*s", (int)cut, pending);
        hook_info(c, rtmp_session_grant(c->sess)->name, &info);
        info.key = key;
        info.query = pending[cut] ? pending + cut + 1 : "";
        if (hooks_publish(c->srv->hooks, &info, conn_hook_done, c, &c->hook) < 0)
            return rtmp_session_authorized(c->sess, false, "cannot start the on_publish request");
        return 0;
    }
    if (st != RTMP_SESS_PUBLISHING && c->live_name[0])
        conn_hooks_end(c);
    if (st == RTMP_SESS_PUBLISHING && !c->live_name[0]) {
        snprintf(c->live_name, sizeof(c->live_name), "%s", rtmp_session_grant(c->sess)->name);
        hook_info(c, c->live_name, &info);
        hooks_notify(c->srv->hooks, true, &info);
    }
    return 0;
}

static void conn_read(struct bufferevent *bev, void *arg)
{
    struct conn *c = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    int rc = 0;

    while (rc == 0 && evbuffer_get_length(in) > 0) {
        struct evbuffer_iovec v[8];
        int n = evbuffer_peek(in, -1, NULL, v, (int)ARRAY_SIZE(v));
        size_t used = 0;

        if (n > (int)ARRAY_SIZE(v))
            n = (int)ARRAY_SIZE(v);
        for (int i = 0; i < n && rc == 0; i++) {
            rc = rtmp_session_feed(c->sess, v[i].iov_base, v[i].iov_len);
            used += v[i].iov_len;
        }
        evbuffer_drain(in, rc == 0 ? used : evbuffer_get_length(in));
    }
    if (!account_buffered(c))
        return;
    if (rc == 0)
        rc = conn_hooks(c);
    conn_after(c, rc);
}

/*
 * Logs an RTMPS connection's TLS error (a failed handshake: a plain RTMP
 * client on the TLS port, garbage, an old TLS version...). Returns false if
 * OpenSSL reported none (then it is a socket error).
 */
static bool tls_error(struct conn *c, const char *label)
{
    char why[512] = "";
    size_t used = 0;
    unsigned long e;

    while ((e = bufferevent_get_openssl_error(c->bev)) != 0) {
        const char *r = ERR_reason_error_string(e);
        char one[128];

        if (ERR_GET_LIB(e) == 0)
            continue; /* libevent also queues SSL_get_error()'s code: no text */
        if (!r) {
            ERR_error_string_n(e, one, sizeof(one));
            r = one;
        }
        if (used + 3 < sizeof(why))
            used += (size_t)snprintf(why + used, sizeof(why) - used, "%s%s", used ? "; " : "", r);
    }
    ERR_clear_error();
    if (!why[0])
        return false;
    if (!c->tls_up)
        log_warn_rl(label, "TLS handshake failed: %s%s; closing", why,
                    strstr(why, "wrong version number")
                        ? " (not TLS: a plain rtmp:// client on the rtmps port?)"
                        : "");
    else
        log_warn_rl(label, "TLS error: %s; closing", why);
    return true;
}

static void conn_event(struct bufferevent *bev, short what, void *arg)
{
    struct conn *c = arg;
    const char *label = rtmp_session_label(c->sess);
    const char *state = rtmp_session_state_str(rtmp_session_state(c->sess));

    if (what & BEV_EVENT_CONNECTED) { /* RTMPS: the TLS handshake is done */
        SSL *ssl = bufferevent_openssl_get_ssl(bev);

        c->tls_up = true;
        log_debug(label, "TLS handshake done (%s, %s)", ssl ? SSL_get_version(ssl) : "?",
                  ssl ? SSL_get_cipher_name(ssl) : "?");
        return;
    }
    if (c->phase != CONN_OPEN) {
        if (what & BEV_EVENT_TIMEOUT)
            log_warn_rl(label, "could not send the last replies within %d s", FLUSH_TIMEOUT_S);
    } else if (what & BEV_EVENT_EOF) {
        if (c->pending)
            log_info_rl(label, "disconnected (%s)", state);
        else
            log_info(label, "disconnected (%s)", state);
    } else if (what & BEV_EVENT_TIMEOUT) {
        log_warn_rl(label, "no data for %g s (rtmp.idle_timeout); closing",
                    c->srv->cfg->rtmp_idle_timeout_s);
    } else if ((what & BEV_EVENT_ERROR) && c->tls && tls_error(c, label)) {
        /* logged */
    } else if (what & BEV_EVENT_ERROR) {
        int err = EVUTIL_SOCKET_ERROR();

        log_info_rl(label, "connection error: %s", evutil_socket_error_to_string(err));
    }
    conn_free(c);
}

static struct timeval seconds_tv(double s)
{
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};

    return tv;
}

/* A publisher's periodic check: no audio or video for rtmp.idle_timeout drops it. */
static void check_media(struct conn *c)
{
    struct timeval tv = {MEDIA_CHECK_MS / 1000, (MEDIA_CHECK_MS % 1000) * 1000};
    uint64_t n = rtmp_session_media_messages(c->sess);
    int64_t now = time_mono_ms();
    double idle_s = c->srv->cfg->rtmp_idle_timeout_s > 0 ? c->srv->cfg->rtmp_idle_timeout_s : 10;

    if (n != c->media_messages) {
        c->media_messages = n;
        c->media_ms = now;
    } else if (now - c->media_ms >= (int64_t)(idle_s * 1000.0)) {
        log_warn(rtmp_session_label(c->sess), "no audio or video for %g s (rtmp.idle_timeout); "
                 "closing", idle_s);
        conn_free(c);
        return;
    }
    evtimer_add(c->timer, &tv);
}

/*
 * Makes room in the unauthenticated budget: closes the connection that is
 * furthest from publishing and oldest: one already closing, else one still in
 * the handshake, else the oldest. Returns false if there is none.
 */
static bool evict_pending(struct rtmp_server *srv, const char *why)
{
    struct conn *victim = NULL;
    int best = 3;

    for (struct conn *c = srv->pending_head; c && best > 0; c = c->pnext) {
        int rank = c->phase != CONN_OPEN                                 ? 0
                   : rtmp_session_state(c->sess) == RTMP_SESS_HANDSHAKE ? 1
                                                                        : 2;

        if (rank < best) {
            best = rank;
            victim = c;
        }
    }
    if (!victim)
        return false;
    log_info_rl(rtmp_session_label(victim->sess), "closed to make room (%s, %s)",
                rtmp_session_state_str(rtmp_session_state(victim->sess)), why);
    conn_free(victim);
    return true;
}

static void conn_timer(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;

    (void)fd, (void)what;
    if (c->phase == CONN_LINGERING) {
        conn_free(c);
        return;
    }
    if (c->phase == CONN_REFUSING) {
        if (conn_flush(c) < 0)
            conn_free(c);
        else
            conn_close_soon(c);
        return;
    }
    if (c->phase != CONN_OPEN)
        return;
    if (!c->pending) {
        check_media(c);
        return;
    }
    log_warn_rl(rtmp_session_label(c->sess),
                "not publishing after %g s (%s, rtmp.setup_timeout); closing",
                c->srv->cfg->rtmp_setup_timeout_s,
                rtmp_session_state_str(rtmp_session_state(c->sess)));
    conn_free(c);
}

/* rtmp_authorize_fn: stream keys from the config (see config.h, `publish`). */
static int authorize(void *arg, const char *key, struct rtmp_publish_grant *out)
{
    struct rtmp_server *srv = arg;
    const struct cfg *cfg = srv->cfg;
    const struct cfg_stream *st;
    size_t len = strlen(key);

    memset(out, 0, sizeof(*out));
    if (cfg->publish == CFG_PUBLISH_OPEN) {
        if (len < sizeof(out->name))
            memcpy(out->name, key, len + 1);
        return 0;
    }
    cfg_key_fingerprint(key, len, out->fingerprint);
    st = cfg_find_key(cfg, key, len);
    if (!st)
        return -EACCES;
    snprintf(out->name, sizeof(out->name), "%s", st->name);
    out->keyed = true;
    memcpy(out->key_sha256, st->key_sha256, sizeof(out->key_sha256));
    return 0;
}

static void format_peer(const struct sockaddr *sa, char *buf, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;

        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, n, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;

        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
        snprintf(buf, n, "[%s]:%u", host, ntohs(in6->sin6_port));
    } else {
        snprintf(buf, n, "?");
    }
}

/* A new connection on FD, over TLS if TLS (an RTMPS listener). */
static void accept_conn(struct rtmp_server *srv, evutil_socket_t fd, struct sockaddr *sa, bool tls)
{
    const struct cfg *cfg = srv->cfg;
    struct timeval setup = seconds_tv(cfg->rtmp_setup_timeout_s > 0 ? cfg->rtmp_setup_timeout_s : 5);
    struct timeval idle = seconds_tv(cfg->rtmp_idle_timeout_s > 0 ? cfg->rtmp_idle_timeout_s : 10);
    int max_pending = cfg->rtmp_max_unauthenticated > 0 ? cfg->rtmp_max_unauthenticated : 64;
    unsigned id = ++srv->next_id;
    struct conn *c = NULL;
    char peer[INET6_ADDRSTRLEN + 16];
    int one = 1;

    format_peer(sa, peer, sizeof(peer));
    if (cfg->rtmp_max_connections > 0 && srv->nconns >= cfg->rtmp_max_connections &&
        !evict_pending(srv, "rtmp.max_connections reached")) {
        log_warn_rl("rtmp",
                    "connection %u from %s refused: already %d connections, all publishing "
                    "(rtmp.max_connections)",
                    id, peer, srv->nconns);
        mx_reject(MX_REJECT_LIMIT);
        evutil_closesocket(fd);
        return;
    }
    if (srv->npending >= max_pending)
        evict_pending(srv, "rtmp.max_unauthenticated reached");
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c = calloc(1, sizeof(*c));
    if (!c)
        goto fail;
    c->srv = srv;
    snprintf(c->peer, sizeof(c->peer), "%s", peer);
    c->id = id;
    if (rtmp_session_new(&srv->params, srv->hub, id, peer, &c->sess) < 0)
        goto fail;
    c->tls = tls;
    if (tls) {
        SSL *ssl = srv->tls_ctx ? SSL_new(srv->tls_ctx) : NULL;

        if (!ssl)
            goto fail;
        c->bev = bufferevent_openssl_socket_new(srv->base, fd, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                                BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev) {
            SSL_free(ssl);
            goto fail;
        }
        /* A peer that closes without close_notify is an EOF, not an error. */
        bufferevent_openssl_set_allow_dirty_shutdown(c->bev, 1);
    } else {
        c->bev = bufferevent_socket_new(srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
        if (!c->bev)
            goto fail;
    }
    fd = -1; /* owned by the bufferevent now */
    c->timer = evtimer_new(srv->base, conn_timer, c);
    if (!c->timer)
        goto fail;
    bufferevent_setcb(c->bev, conn_read, NULL, conn_event, c);
    bufferevent_set_timeouts(c->bev, &idle, NULL);
    if (bufferevent_enable(c->bev, EV_READ) < 0 || evtimer_add(c->timer, &setup) < 0)
        goto fail;
    c->next = srv->conns;
    if (c->next)
        c->next->prev = c;
    srv->conns = c;
    srv->nconns++;
    mx_gauge_add(MX_RTMP_CONNECTIONS, 1);
    pending_append(c);
    log_info_rl(rtmp_session_label(c->sess), "connected%s (%d connections, %d not publishing)",
                tls ? " over TLS" : "", srv->nconns, srv->npending);
    return;
fail:
    log_error("rtmp", "connection %u from %s: out of memory", id, peer);
    if (c) {
        rtmp_session_free(c->sess);
        if (c->timer)
            event_free(c->timer);
        if (c->bev)
            bufferevent_free(c->bev);
        free(c);
    }
    if (fd >= 0)
        evutil_closesocket(fd);
}

static void on_accept(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                      int socklen, void *arg)
{
    (void)lis, (void)socklen;
    accept_conn(arg, fd, sa, false);
}

static void on_accept_tls(struct evconnlistener *lis, evutil_socket_t fd, struct sockaddr *sa,
                          int socklen, void *arg)
{
    (void)lis, (void)socklen;
    accept_conn(arg, fd, sa, true);
}

static void accept_retry(evutil_socket_t fd, short what, void *arg)
{
    struct rtmp_server *srv = arg;

    (void)fd, (void)what;
    for (int i = 0; i < srv->lis.n; i++)
        evconnlistener_enable(srv->lis.l[i]);
    for (int i = 0; i < srv->tls_lis.n; i++)
        evconnlistener_enable(srv->tls_lis.l[i]);
}

/* accept() failed (EMFILE...): pause for a second instead of spinning on it. */
static void on_accept_error(struct evconnlistener *lis, void *arg)
{
    struct rtmp_server *srv = arg;
    struct timeval tv = {1, 0};
    int err = EVUTIL_SOCKET_ERROR();

    log_warn_rl("rtmp", "accept failed: %s; pausing for 1 s", evutil_socket_error_to_string(err));
    evconnlistener_disable(lis);
    evtimer_add(srv->accept_retry, &tv);
}

static struct evconnlistener *listen_on(struct rtmp_server *srv, const struct sockaddr *sa,
                                        socklen_t len, bool tls)
{
    struct evconnlistener *l = evconnlistener_new_bind(
        srv->base, tls ? on_accept_tls : on_accept, srv,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, -1, sa, (int)len);

    if (l)
        evconnlistener_set_error_cb(l, on_accept_error);
    return l;
}

static void listeners_close(struct listeners *ls)
{
    for (int i = 0; i < ls->n; i++)
        evconnlistener_free(ls->l[i]);
    ls->n = 0;
}

/* The port listener L is bound to, or -1. */
static int bound_port(struct evconnlistener *l)
{
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof(ss);

    if (getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&ss, &sslen) != 0)
        return -1;
    return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                          : ((struct sockaddr_in *)&ss)->sin_port);
}

/*
 * Binds LISTEN into LS: an empty host means every interface ([::] dual stack,
 * else 0.0.0.0); a host name binds every address it resolves to (with port 0,
 * all on the port the first one got). Returns 0, or a negative errno (logged)
 * with nothing bound.
 */
static int bind_listeners(struct rtmp_server *srv, const char *listen, struct listeners *ls,
                          bool tls)
{
    const char *key = tls ? "rtmps.listen" : "rtmp.listen";
    struct addrinfo *res = NULL, *ai;
    char host[CFG_STR_MAX];
    const char *why;
    int port, rc = 0;

    ls->n = 0;
    if (cfg_split_listen(listen, host, sizeof(host), &port) < 0) {
        log_error("rtmp", "%s: invalid address '%s'", key, listen);
        return -EINVAL;
    }
    if (!host[0]) {
        struct sockaddr_in6 in6 = {.sin6_family = AF_INET6,
                                   .sin6_port = htons((uint16_t)port),
                                   .sin6_addr = IN6ADDR_ANY_INIT};
        struct sockaddr_in in4 = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)port),
                                  .sin_addr.s_addr = htonl(INADDR_ANY)};

        if ((ls->l[0] = listen_on(srv, (struct sockaddr *)&in6, sizeof(in6), tls)) ||
            (ls->l[0] = listen_on(srv, (struct sockaddr *)&in4, sizeof(in4), tls)))
            ls->n = 1;
        rc = ls->n ? 0 : -errno;
        goto out;
    }
    if (cfg_resolve_listen(host, port, &res, &why) < 0) {
        log_error("rtmp", "%s: cannot resolve '%s': %s", key, host, why);
        return -EINVAL;
    }
    for (ai = res; ai && ls->n < RTMP_MAX_LISTENERS; ai = ai->ai_next) {
        struct evconnlistener *l;

        if (ls->n > 0 && port == 0) /* the others follow the first one's port */
            ((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)bound_port(ls->l[0]));
        l = listen_on(srv, ai->ai_addr, ai->ai_addrlen, tls);
        if (!l) {
            rc = -errno;
            listeners_close(ls); /* every address or none */
            break;
        }
        ls->l[ls->n++] = l;
    }
    freeaddrinfo(res);
out:
    if (rc == 0 && ls->n == 0)
        rc = -EADDRNOTAVAIL;
    if (rc < 0) {
        log_error("rtmp", "%s: cannot listen on %s: %s", key, listen, strerror(-rc));
        return rc;
    }
    ls->port = bound_port(ls->l[0]);
    return 0;
}

/* Session parameters for new connections, from C. */
static void on_hub_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    seg_hub_tick(arg);
}

static void set_params(struct rtmp_server *srv, const struct cfg *c)
{
    snprintf(srv->params.app, sizeof(srv->params.app), "%s", c->rtmp_app);
    srv->params.chunk_size = c->rtmp_chunk_size > 0 ? (uint32_t)c->rtmp_chunk_size : 4096;
    srv->params.max_message_bytes = c->rtmp_max_message_bytes > 0
                                        ? (uint32_t)c->rtmp_max_message_bytes
                                        : DEFAULT_MAX_MESSAGE;
    srv->params.max_buffer_bytes =
        c->rtmp_max_buffer_bytes > 0 ? (size_t)c->rtmp_max_buffer_bytes : 0; /* 0: the default */
    srv->params.seg.segment_ms = (int)(c->hls_segment_seconds * 1000.0 + 0.5);
    srv->params.seg.window_segments = c->hls_window_segments;
    srv->params.seg.part_ms = (int)(c->hls_part_seconds * 1000.0 + 0.5);
    srv->params.seg.reconnect_grace_ms = (int)(c->hls_reconnect_grace_seconds * 1000.0 + 0.5);
    srv->params.seg.max_segment_bytes = c->hls_max_segment_bytes;
    srv->params.authorize = authorize;
    srv->params.authorize_arg = srv;
    srv->params.hold_publish = c->hooks_on_publish[0] != '\0';
}

static void set_hooks_params(struct hooks_params *hp, const struct cfg *c)
{
    memset(hp, 0, sizeof(*hp));
    snprintf(hp->on_publish, sizeof(hp->on_publish), "%s", c->hooks_on_publish);
    snprintf(hp->on_live, sizeof(hp->on_live), "%s", c->hooks_on_live);
    snprintf(hp->on_end, sizeof(hp->on_end), "%s", c->hooks_on_end);
    hp->timeout_ms = (int)(c->hooks_timeout * 1000.0 + 0.5);
    hp->fail_open = strcmp(c->hooks_on_failure, "allow") == 0;
}

static void log_tls_listening(struct rtmp_server *srv, const char *listen)
{
    char cert[512];

    rtmp_tls_describe(srv->tls_ctx, cert, sizeof(cert));
    log_info("rtmps", "listening on %s (port %d, %d address%s, TLS 1.2+), certificate %s", listen,
             srv->tls_lis.port, srv->tls_lis.n, srv->tls_lis.n == 1 ? "" : "es", cert);
}

int rtmp_server_new(struct event_base *base, const struct cfg *cfg, struct store *st,
                    struct rtmp_server **out)
{
    struct rtmp_server *srv = NULL;
    struct hooks_params hp;
    int rc;

    *out = NULL;
    srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->base = base;
    srv->cfg = cfg_ref(cfg);
    srv->store = st;
    set_params(srv, cfg);
    if ((rc = seg_hub_new(st, &srv->hub)) < 0)
        goto fail;
    set_hooks_params(&hp, cfg);
    if ((rc = hooks_new(base, &hp, &srv->hooks)) < 0)
        goto fail;
    srv->accept_retry = evtimer_new(base, accept_retry, srv);
    srv->hub_tick = event_new(base, -1, EV_PERSIST, on_hub_tick, srv->hub);
    if (!srv->accept_retry || !srv->hub_tick) {
        rc = -ENOMEM;
        goto fail;
    }
    {
        struct timeval every = {1, 0};

        if (event_add(srv->hub_tick, &every) < 0) {
            rc = -ENOMEM;
            goto fail;
        }
    }
    rc = bind_listeners(srv, cfg->rtmp_listen, &srv->lis, false);
    if (rc < 0)
        goto fail;
    rc = rtmp_control_new(base, drop_publisher, srv, &srv->control);
    if (rc < 0)
        goto fail;
    if (cfg->rtmps_listen[0]) {
        if ((rc = rtmp_tls_ctx_new(cfg->rtmps_cert, cfg->rtmps_key, &srv->tls_ctx)) < 0)
            goto fail;
        if ((rc = bind_listeners(srv, cfg->rtmps_listen, &srv->tls_lis, true)) < 0)
            goto fail;
        log_tls_listening(srv, cfg->rtmps_listen);
    }
    log_info("rtmp", "listening on %s (port %d, %d address%s), app '%s', publish: %s (%zu stream%s "
             "listed)",
             cfg->rtmp_listen, srv->lis.port, srv->lis.n, srv->lis.n == 1 ? "" : "es",
             srv->params.app, cfg->publish_name, cfg->nstreams, cfg->nstreams == 1 ? "" : "s");
    *out = srv;
    return 0;
fail:
    rtmp_server_free(srv);
    return rc;
}

/* Why publisher G may not go on under config NEXT, or NULL if it may. */
static const char *publish_revoked(const struct cfg *next, const struct rtmp_publish_grant *g,
                                   char *buf, size_t len)
{
    size_t i;

    if (next->publish == CFG_PUBLISH_OPEN)
        return NULL;
    if (!g->keyed) {
        snprintf(buf, len, "publish is now 'keys' and stream %s was published without one",
                 g->name);
        return buf;
    }
    for (i = 0; i < next->nstreams; i++) {
        if (strcmp(next->streams[i].name, g->name))
            continue;
        if (!memcmp(next->streams[i].key_sha256, g->key_sha256, sizeof(g->key_sha256)))
            return NULL;
        snprintf(buf, len, "the key of stream %s changed", g->name);
        return buf;
    }
    snprintf(buf, len, "stream %s was removed from the config", g->name);
    return buf;
}

/* rtmp_control_fn, on the loop: disconnects NAME's publisher. */
static int drop_publisher(void *arg, const char *name)
{
    struct rtmp_server *srv = arg;

    for (struct conn *c = srv->conns; c; c = c->next) {
        const struct rtmp_publish_grant *g = rtmp_session_grant(c->sess);

        if (c->phase != CONN_OPEN || !g || strcmp(g->name, name) != 0)
            continue;
        rtmp_session_kick(c->sess, "kicked through the admin API");
        if (conn_flush(c) < 0)
            conn_free(c);
        else
            conn_close_soon(c);
        return 0;
    }
    return -ENOENT;
}

int rtmp_server_kick(struct rtmp_server *srv, const char *name)
{
    return rtmp_control_call(srv->control, name, 5000);
}

/* Swaps in NCTX (may be NULL: RTMPS off) and logs what new connections get. */
static void set_tls_ctx(struct rtmp_server *srv, SSL_CTX *nctx, bool reloaded)
{
    char cert[512];
    int open = 0;

    SSL_CTX_free(srv->tls_ctx); /* open connections hold their own reference */
    srv->tls_ctx = nctx;
    if (!nctx || !reloaded)
        return;
    for (struct conn *c = srv->conns; c; c = c->next)
        open += c->tls;
    rtmp_tls_describe(nctx, cert, sizeof(cert));
    log_info("rtmps", "certificate reloaded: %s; new connections get it, %d open one%s keep%s "
             "theirs", cert, open, open == 1 ? "" : "s", open == 1 ? "s" : "");
}

int rtmp_server_reload_tls(struct rtmp_server *srv)
{
    SSL_CTX *nctx = NULL;
    int rc;

    if (!srv->cfg->rtmps_listen[0])
        return 0;
    rc = rtmp_tls_ctx_new(srv->cfg->rtmps_cert, srv->cfg->rtmps_key, &nctx);
    if (rc < 0) {
        log_error("rtmps", "keeping the certificate in use");
        return rc;
    }
    set_tls_ctx(srv, nctx, true);
    return 0;
}

int rtmp_server_reconfigure(struct rtmp_server *srv, const struct cfg *next)
{
    bool new_plain = strcmp(next->rtmp_listen, srv->cfg->rtmp_listen) != 0;
    bool new_tls = strcmp(next->rtmps_listen, srv->cfg->rtmps_listen) != 0;
    struct listeners nl = {0}, ntl = {0};
    SSL_CTX *nctx = NULL;
    struct conn *c, *after;
    struct hooks_params hp;
    int rc;

    /*
     * Everything that can fail first (the certificate files are read again on
     * every reload, new addresses bound); if anything does, nothing changes.
     */
    if (next->rtmps_listen[0] &&
        (rc = rtmp_tls_ctx_new(next->rtmps_cert, next->rtmps_key, &nctx)) < 0)
        return rc;
    if (new_plain && (rc = bind_listeners(srv, next->rtmp_listen, &nl, false)) < 0)
        goto fail;
    if (new_tls && next->rtmps_listen[0] &&
        (rc = bind_listeners(srv, next->rtmps_listen, &ntl, true)) < 0)
        goto fail;
    if (new_plain) {
        listeners_close(&srv->lis);
        srv->lis = nl;
        log_info("rtmp", "listening on %s (port %d); the old address is closed, connections on "
                         "it go on", next->rtmp_listen, srv->lis.port);
    }
    if (new_tls) {
        listeners_close(&srv->tls_lis);
        srv->tls_lis = ntl;
    }
    set_tls_ctx(srv, nctx, !new_tls);
    if (new_tls && nctx)
        log_tls_listening(srv, next->rtmps_listen);
    else if (new_tls)
        log_info("rtmps", "off; connections on the old address go on");
    cfg_unref(srv->cfg);
    srv->cfg = cfg_ref(next);
    set_params(srv, next);
    set_hooks_params(&hp, next);
    hooks_set_params(srv->hooks, &hp);
    for (c = srv->conns; c; c = after) {
        const struct rtmp_publish_grant *g;
        const char *why;
        char buf[160];

        after = c->next;
        if (c->phase != CONN_OPEN)
            continue;
        rtmp_session_set_seg_params(c->sess, &srv->params.seg);
        g = rtmp_session_grant(c->sess);
        if (!g || !(why = publish_revoked(next, g, buf, sizeof(buf))))
            continue;
        rtmp_session_kick(c->sess, why);
        if (conn_flush(c) < 0)
            conn_free(c);
        else
            conn_close_soon(c);
    }
    return 0;
fail:
    listeners_close(&nl);
    listeners_close(&ntl);
    SSL_CTX_free(nctx);
    return rc;
}

void rtmp_server_free(struct rtmp_server *srv)
{
    if (!srv)
        return;
    rtmp_control_free(srv->control);
    while (srv->conns)
        conn_free(srv->conns);
    if (srv->hub_tick)
        event_free(srv->hub_tick);
    seg_hub_free(srv->hub); /* ends the streams still in their reconnect grace */
    listeners_close(&srv->lis);
    listeners_close(&srv->tls_lis);
    SSL_CTX_free(srv->tls_ctx);
    hooks_free(srv->hooks);
    if (srv->accept_retry)
        event_free(srv->accept_retry);
    cfg_unref(srv->cfg);
    free(srv);
}

int rtmp_server_port(const struct rtmp_server *srv)
{
    return srv->lis.port;
}

void rtmp_server_set_recorder(struct rtmp_server *srv, struct recorder *rec)
{
    srv->params.seg.recorder = rec;
}

int rtmp_server_tls_port(const struct rtmp_server *srv)
{
    return srv->tls_lis.n ? srv->tls_lis.port : -1;
}
