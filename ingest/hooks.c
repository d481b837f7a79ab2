/*
 * Publish webhooks over libcurl's multi interface, driven by libevent: curl
 * tells us which sockets to watch (sock_cb) and when to wake it (timer_cb); we
 * hand readiness back with curl_multi_socket_action and collect finished
 * transfers in check_done. Nothing here blocks: name resolution is curl's
 * threaded resolver, everything else is non-blocking sockets on the loop.
 *
 * Every request, pending or waiting for a retry, is on H->reqs so that
 * hooks_free can abandon them all. A request is freed before its callback runs,
 * so the callback may free whatever owns it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <jansson.h>

#include "../common/common.h"
#include "hooks_internal.h"

struct sock_ctx {
    struct sock_ctx *prev, *next;
    struct event *ev;
};

struct hook_req {
    struct hooks *h;
    struct hook_req *prev, *next;
    CURL *easy;            /* NULL while waiting for a retry */
    struct curl_slist *headers;
    char *body;            /* JSON, owned */
    char url[HOOKS_URL_MAX];
    char what[96];         /* "on_live live/show" for log lines (never the URL or the key) */
    bool notify;           /* on_live / on_end: retried, no callback */
    int attempts;
    struct event *retry;   /* notify only */
    hooks_publish_cb cb;
    void *arg;
};

struct hooks {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct hooks_params p;
    struct hook_req *reqs;
    struct sock_ctx *socks;
    int nnotify; /* notifications queued or in flight */
};

static void check_done(struct hooks *h);

/* ---- libevent <-> curl glue ------------------------------------------------ */

static void on_socket(evutil_socket_t fd, short kind, void *arg)
{
    struct hooks *h = arg;
    int running, flags = (kind & EV_READ ? CURL_CSELECT_IN : 0) |
                         (kind & EV_WRITE ? CURL_CSELECT_OUT : 0);

    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

static void on_timer(evutil_socket_t fd, short kind, void *arg)
{
    struct hooks *h = arg;
    int running;

    (void)fd, (void)kind;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static void sock_ctx_free(struct hooks *h, struct sock_ctx *sc)
{
    if (sc->prev)
        sc->prev->next = sc->next;
    else
        h->socks = sc->next;
    if (sc->next)
        sc->next->prev = sc->prev;
    if (sc->ev)
        event_free(sc->ev);
    free(sc);
}

/* CURLMOPT_SOCKETFUNCTION: watch S for WHAT (or stop watching it). */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct hooks *h = userp;
    struct sock_ctx *sc = socketp;
    short kind = EV_PERSIST;

    (void)e;
    if (what == CURL_POLL_REMOVE) {
        if (sc)
            sock_ctx_free(h, sc);
        return 0;
    }
    if (!sc) {
        sc = calloc(1, sizeof(*sc));
        if (!sc)
            return -1;
        sc->next = h->socks;
        if (sc->next)
            sc->next->prev = sc;
        h->socks = sc;
        curl_multi_assign(h->multi, s, sc);
    }
    if (sc->ev)
        event_free(sc->ev);
    kind |= (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    sc->ev = event_new(h->base, s, kind, on_socket, h);
    if (!sc->ev || event_add(sc->ev, NULL) < 0)
        return -1;
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: wake curl in TIMEOUT_MS (-1: never). */
static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    struct hooks *h = userp;
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};

    (void)m;
    if (timeout_ms < 0)
        return evtimer_del(h->timer);
    return evtimer_add(h->timer, &tv);
}

static size_t discard(char *ptr, size_t size, size_t n, void *arg)
{
    (void)ptr, (void)arg;
    return size * n;
}

/* ---- requests ------------------------------------------------------------------ */

static void req_free(struct hook_req *r)
{
    struct hooks *h = r->h;

    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    if (r->easy) {
        curl_multi_remove_handle(h->multi, r->easy);
        curl_easy_cleanup(r->easy);
    }
    if (r->notify)
        h->nnotify--;
    if (r->retry)
        event_free(r->retry);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r);
}

/* Hands R to curl. Returns 0 or a negative errno. */
static int req_start(struct hook_req *r)
{
    struct hooks *h = r->h;
    CURL *e = curl_easy_init();

    if (!e)
        return -ENOMEM;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(r->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)h->p.timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "onair/" ONAIR_VERSION);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return -ENOMEM;
    }
    r->easy = e;
    r->attempts++;
    return 0;
}

static void on_retry(evutil_socket_t fd, short kind, void *arg)
{
    struct hook_req *r = arg;

    (void)fd, (void)kind;
    if (req_start(r) < 0) {
        log_warn("hooks", "%s: cannot start the request; dropped", r->what);
        req_free(r);
    }
}

/* A notification failed (WHY): retry later with backoff, or give up. */
static void notify_failed(struct hook_req *r, const char *why)
{
    long ms = HOOKS_BACKOFF_MS << (r->attempts - 1);
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

    if (r->attempts >= HOOKS_ATTEMPTS) {
        log_warn("hooks", "%s: %s; giving up after %d attempts", r->what, why, r->attempts);
        req_free(r);
        return;
    }
    log_warn("hooks", "%s: %s; retrying in %ld ms", r->what, why, ms);
    if (!r->retry)
        r->retry = evtimer_new(r->h->base, on_retry, r);
    if (!r->retry || evtimer_add(r->retry, &tv) < 0) {
        log_warn("hooks", "%s: out of memory; dropped", r->what);
        req_free(r);
    }
}

/* R's transfer ended with RES and HTTP STATUS (0 if none). */
static void req_done(struct hook_req *r, CURLcode res, long status)
{
    bool ok2xx = res == CURLE_OK && status >= 200 && status <= 299;
    hooks_publish_cb cb = r->cb;
    void *arg = r->arg;
    char why[160];
    bool allow;

    curl_multi_remove_handle(r->h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    r->easy = NULL;
    if (res == CURLE_OK)
        snprintf(why, sizeof(why), "the hook answered %ld", status);
    else
        snprintf(why, sizeof(why), "the hook failed: %s", curl_easy_strerror(res));
    if (r->notify) {
        if (ok2xx) {
            log_debug("hooks", "%s: delivered (%ld)", r->what, status);
            req_free(r);
        } else {
            notify_failed(r, why);
        }
        return;
    }
    allow = ok2xx || (res != CURLE_OK && r->h->p.fail_open);
    if (res != CURLE_OK && allow)
        snprintf(why, sizeof(why), "the hook failed (%s), hooks.on_failure is allow",
                 curl_easy_strerror(res));
    req_free(r);
    cb(arg, allow, why);
}

static void check_done(struct hooks *h)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(h->multi, &left))) {
        struct hook_req *r = NULL;
        long status = 0;

        if (msg->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        curl_easy_getinfo(msg->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        req_done(r, msg->data.result, status);
    }
}

/* A JSON string from client bytes: bytes that are not valid UTF-8 become '?'. */
static json_t *json_text(const char *s)
{
    json_t *j = json_string(s ? s : "");
    char *copy;

    if (j)
        return j;
    copy = strdup(s);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    j = json_string(copy);
    free(copy);
    return j;
}

/* Builds the JSON body of EVENT for INFO (KEYED: with key and query). NULL on OOM. */
static char *make_body(const char *event, const struct hooks_publish_info *info, bool keyed)
{
    json_t *o = json_object();
    char *out = NULL;

    if (!o)
        return NULL;
    if (json_object_set_new(o, "event", json_string(event)) < 0 ||
        json_object_set_new(o, "app", json_text(info->app)) < 0 ||
        json_object_set_new(o, "name", json_text(info->name)) < 0 ||
        json_object_set_new(o, "addr", json_text(info->addr)) < 0 ||
        json_object_set_new(o, "id", json_integer(info->id)) < 0)
        goto out;
    if (keyed && (json_object_set_new(o, "key", json_text(info->key)) < 0 ||
                  json_object_set_new(o, "query", json_text(info->query)) < 0))
        goto out;
    out = json_dumps(o, JSON_COMPACT);
out:
    json_decref(o);
    return out;
}

/* A request of EVENT to URL, linked into H. NULL on OOM. */
static struct hook_req *req_new(struct hooks *h, const char *url, const char *event,
                                const struct hooks_publish_info *info, bool keyed)
{
    struct hook_req *r = calloc(1, sizeof(*r));

    if (!r)
        return NULL;
    r->h = h;
    snprintf(r->url, sizeof(r->url), "%s", url);
    snprintf(r->what, sizeof(r->what), "on_%s %s/%s", event, info->app, info->name);
    r->body = make_body(event, info, keyed);
    r->headers = curl_slist_append(NULL, "Content-Type: application/json");
    if (!r->body || !r->headers) {
        curl_slist_free_all(r->headers);
        free(r->body);
        free(r);
        return NULL;
    }
    r->next = h->reqs;
    if (r->next)
        r->next->prev = r;
    h->reqs = r;
    return r;
}

/* ---- public ---------------------------------------------------------------------- */

int hooks_publish(struct hooks *h, const struct hooks_publish_info *info, hooks_publish_cb cb,
                  void *arg, struct hook_req **out)
{
    struct hook_req *r;
    int rc;

    *out = NULL;
    r = req_new(h, h->p.on_publish, "publish", info, true);
    if (!r)
        return -ENOMEM;
    r->cb = cb;
    r->arg = arg;
    if ((rc = req_start(r)) < 0) {
        req_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void hooks_cancel(struct hook_req *r)
{
    if (r)
        req_free(r);
}

void hooks_notify(struct hooks *h, bool live, const struct hooks_publish_info *info)
{
    const char *url = live ? h->p.on_live : h->p.on_end, *event = live ? "live" : "end";
    struct hook_req *r;

    if (!url[0])
        return;
    if (h->nnotify >= HOOKS_QUEUE_MAX) {
        log_warn("hooks", "on_%s %s/%s: %d notifications already queued; dropped", event,
                 info->app, info->name, h->nnotify);
        return;
    }
    r = req_new(h, url, event, info, false);
    if (!r) {
        log_warn("hooks", "on_%s %s/%s: out of memory; dropped", event, info->app, info->name);
        return;
    }
    r->notify = true;
    h->nnotify++;
    if (req_start(r) < 0)
        notify_failed(r, "cannot start the request");
}

bool hooks_has_publish(const struct hooks *h)
{
    return h && h->p.on_publish[0];
}

void hooks_set_params(struct hooks *h, const struct hooks_params *p)
{
    h->p = *p;
}

int hooks_new(struct event_base *base, const struct hooks_params *p, struct hooks **out)
{
    struct hooks *h;

    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        log_error("hooks", "cannot initialise libcurl");
        return -ENOMEM;
    }
    h = calloc(1, sizeof(*h));
    if (!h)
        goto fail;
    h->base = base;
    h->p = *p;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(base, on_timer, h);
    if (!h->multi || !h->timer)
        goto fail;
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    *out = h;
    return 0;
fail:
    log_error("hooks", "out of memory");
    hooks_free(h);
    if (!h)
        curl_global_cleanup();
    return -ENOMEM;
}

void hooks_free(struct hooks *h)
{
    if (!h)
        return;
    while (h->reqs)
        req_free(h->reqs);
    if (h->multi)
        curl_multi_cleanup(h->multi);
    while (h->socks)
        sock_ctx_free(h, h->socks);
    if (h->timer)
        event_free(h->timer);
    free(h);
    curl_global_cleanup();
}
