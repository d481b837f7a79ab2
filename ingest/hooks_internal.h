/*
 * Publish webhooks: `hooks.on_publish` asks an HTTP endpoint whether a publish
 * may go on; `hooks.on_live` / `hooks.on_end` tell it a stream went live or
 * ended. Requests are POSTs with a JSON body, run by libcurl's multi interface
 * on the RTMP event loop (no thread per request): the loop never waits.
 *
 *   on_publish:  conn ──hooks_publish──▶ POST ──2xx──▶ cb(allow)
 *                  ▲                        └─other / timeout / down──▶ cb(refuse,
 *                  └─ hooks_cancel (peer left first: no callback)       or allow if
 *                                                                       fail-open)
 *   on_live/end: hooks_notify ──▶ bounded queue ──▶ POST, retried with backoff
 *
 * Only rtmp_server.c and the tests include this header.
 */
#ifndef ONAIR_HOOKS_INTERNAL_H
#define ONAIR_HOOKS_INTERNAL_H

#include <stdbool.h>

struct event_base;
struct hooks;
struct hook_req;

#define HOOKS_URL_MAX 256
#define HOOKS_QUEUE_MAX 64   /* notifications waiting or in flight */
#define HOOKS_ATTEMPTS 5     /* per notification: 1 + 4 retries */
#define HOOKS_BACKOFF_MS 500 /* first retry delay; doubles each time */

/* What the hooks do (copied by hooks_new / hooks_set_params). "" = hook off. */
struct hooks_params {
    char on_publish[HOOKS_URL_MAX];
    char on_live[HOOKS_URL_MAX];
    char on_end[HOOKS_URL_MAX];
    int timeout_ms;  /* per request, connection included */
    bool fail_open;  /* on_publish unreachable / timed out: allow instead of refuse */
};

/* Who publishes: the JSON body's fields (borrowed for the call). */
struct hooks_publish_info {
    unsigned id;       /* RTMP connection number */
    const char *app;   /* rtmp.app */
    const char *name;  /* public stream name */
    const char *key;   /* what the client sent as stream name, query cut (on_publish only) */
    const char *query; /* what followed '?' in it, or "" (on_publish only) */
    const char *addr;  /* peer "ip:port" */
};

/* The on_publish verdict: ALLOW, and WHY (static string) for the log. */
typedef void (*hooks_publish_cb)(void *arg, bool allow, const char *why);

/*
 * Creates the hooks for BASE with P (copied). Returns 0 and *OUT, or a negative
 * errno (logged).
 */
int hooks_new(struct event_base *base, const struct hooks_params *p, struct hooks **out);

/* Applies a reload: requests started from now on use P (copied). */
void hooks_set_params(struct hooks *h, const struct hooks_params *p);

/* True if on_publish is configured (a publish must wait for hooks_publish). */
bool hooks_has_publish(const struct hooks *h);

/*
 * Starts the on_publish request for INFO. CB(ARG, ...) is called exactly once,
 * later, from the event loop, unless hooks_cancel(*OUT) comes first. Returns 0
 * and the request in *OUT, or a negative errno (nothing started, no callback).
 */
int hooks_publish(struct hooks *h, const struct hooks_publish_info *info, hooks_publish_cb cb,
                  void *arg, struct hook_req **out);

/* Abandons a pending on_publish request: no callback. Accepts NULL. */
void hooks_cancel(struct hook_req *r);

/*
 * Queues the on_live (LIVE) or on_end notification for INFO if configured;
 * never waits and never fails the caller (a full queue drops it, logged).
 */
void hooks_notify(struct hooks *h, bool live, const struct hooks_publish_info *info);

/* Abandons everything in flight (no callbacks) and frees H. Accepts NULL. */
void hooks_free(struct hooks *h);

#endif
