/*
 * http internals shared between the files of the module (http.c, http_pages.c,
 * hls_query.c, waiters.c), the generated page sources and the unit tests.
 */
#ifndef ONAIR_HTTP_INTERNAL_H
#define ONAIR_HTTP_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct bytes;
struct buf;
struct cfg;
struct store;
struct MHD_Response;

/*
 * http/player.html and http/index.html, compiled in by http/embed.py (see
 * http/meson.build): _len bytes plus a trailing NUL.
 */
extern const unsigned char http_player_html[];
extern const size_t http_player_html_len;
extern const unsigned char http_index_html[];
extern const size_t http_index_html_len;

/* ---- http_pages.c -------------------------------------------------------- */

struct http_template_var {
    const char *name;  /* NAME in {{NAME}} */
    const char *value; /* inserted HTML-escaped */
};

/*
 * Appends TMPL (LEN bytes) to OUT with every {{NAME}} replaced by its VARS
 * value, HTML-escaped. Returns 0, -EINVAL for an unknown or unclosed
 * placeholder, or -ENOMEM.
 */
int http_render_template(const char *tmpl, size_t len, const struct http_template_var *vars,
                         size_t nvars, struct bytes *out);

/* The front page (GET /) for CFG. Returns a new buffer, or NULL (logged). */
struct buf *http_index_page_new(const struct cfg *cfg);

/*
 * GET /streams.json: the live streams (store_list) as JSON, no-cache; streams
 * with `playback: signed` in CFG (borrowed) are private and never listed.
 * Returns a new response (caller queues and destroys it) or NULL on OOM.
 */
struct MHD_Response *http_streams_response(struct store *st, const struct cfg *cfg);

/* ---- pure request parsing (request.c) -------------------------------------- */

/* [A-Za-z0-9_.-] */
bool http_path_char(char c);
/*
 * True if PATH is "/" followed by '/'-separated segments of [A-Za-z0-9_.-],
 * each 1..STORE_NAME_MAX-1 long and not starting with '.'; only the last may
 * be empty (a trailing slash). This rules out "..", "//", '%' and NUL.
 */
bool http_path_ok(const char *path);
/* True if the If-None-Match value VALUE (NULL = absent) lists ETAG (weak comparison). */
bool http_etag_matches(const char *value, const char *etag);
/* True if an Accept-Encoding value (NULL = absent) accepts gzip (RFC 9110 12.5.3). */
bool http_accepts_gzip(const char *v);
/* Parses a part name "part-GEN-MSN-IDX.m4s" into its store progress key. */
bool http_part_key(const char *obj, uint64_t *key);


#define HLS_QUERY_MSN_MAX ((UINT64_C(1) << 47) - 1) /* fits a store progress key */
#define HLS_QUERY_PART_MAX 65534u

struct hls_query {
    bool has_msn, has_part;
    uint64_t msn;
    unsigned part;
    bool skip;    /* _HLS_skip=YES or v2: a delta update */
    bool skip_v2; /* v2: also skip date ranges (we have none) */
};

/*
 * Validates the raw values of _HLS_msn, _HLS_part and _HLS_skip (NULL =
 * absent). Returns 0, or -EINVAL for a value that is not a plain decimal in
 * range, a _HLS_part without _HLS_msn, or a _HLS_skip other than YES/v2.
 */
int hls_query_parse(const char *msn, const char *part, const char *skip, struct hls_query *q);

/* ---- byte ranges (range.c) ------------------------------------------------ */

enum http_range {
    HTTP_RANGE_NONE,          /* absent, another unit, malformed or several ranges: 200 */
    HTTP_RANGE_OK,            /* 206 with *START and *LEN */
    HTTP_RANGE_UNSATISFIABLE, /* 416 */
};

/*
 * One byte range of a Range header VALUE (NULL = absent) over SIZE bytes
 * (RFC 9110 14.1.2): first-last (last clamped to the end), first-, or the
 * suffix -N. Sets *START and *LEN (the whole for NONE).
 */
enum http_range http_range_parse(const char *value, uint64_t size, uint64_t *start, uint64_t *len);

/* ---- blocked requests (waiters.c) ------------------------------------------ */

struct MHD_Connection;
struct store;
struct http_timer;

enum http_wait_state { HTTP_WAITING, HTTP_WOKEN, HTTP_TIMED_OUT, HTTP_SHUTDOWN };

/*
 * A request held until its part exists (blocking playlist reload or a
 * preload-hinted part). Allocated when a request has to wait, freed by the
 * request-completed callback.
 */
struct http_wait;

/* Starts the deadline thread. Returns 0 or a negative errno. */
int http_timer_new(struct http_timer **out);

/*
 * Resumes every request still held (they answer 503) and stops the thread.
 * Call before MHD_stop_daemon. Accepts NULL.
 */
void http_timer_free(struct http_timer *t);

/*
 * Suspends CONN until STREAM reaches KEY or TIMEOUT_MS passes. Returns 0 with
 * the new wait in *OUT: the handler keeps it as its request state, returns
 * MHD_YES and is called again once the connection is resumed; it then reads
 * http_wait_state and http_wait_result (if the store said READY, NONE or
 * TOO_FAR at once, the connection is already resumed). Returns -ENOMEM, or
 * -ESHUTDOWN while the server stops (nothing suspended).
 */
int http_wait_start(struct http_timer *t, struct store *st, struct MHD_Connection *conn,
                    const char *stream, uint64_t key, int64_t timeout_ms, struct http_wait **out);

enum http_wait_state http_wait_state(const struct http_wait *w);
/* What store_wait answered (an enum store_wait_result). */
int http_wait_result(const struct http_wait *w);
void http_wait_free(struct http_wait *w);

/* Requests currently held (for tests and the log). */
long http_timer_count(struct http_timer *t);

/* ---- per-connection context -------------------------------------------------- */

/*
 * MHD's socket context of a public-port connection: the limits' record
 * (http_limits.c) and the observation's (observe.c), each owned by its module.
 */
struct http_conn {
    void *limits;
    void *observe;
};

/* CONN's struct http_conn, or NULL (allocation failed). */
struct http_conn *http_conn_of(struct MHD_Connection *conn);

/* ---- observation: metrics, access log, thumbnails (observe.c) ---------------- */

struct MHD_Response;
enum MHD_ConnectionNotificationCode;

/* Connection opened or closed: a small per-connection context (never per request)
 * in *SOCKET_CONTEXT. */
void http_observe_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                             enum MHD_ConnectionNotificationCode toe);
/* A request's first handler call (METHOD and URL copied only for the access log). */
void http_observe_begin(struct MHD_Connection *conn, const char *method, const char *url);
/* The request is about stream STREAM (bytes served and viewers are charged to it). */
void http_observe_stream(struct MHD_Connection *conn, const char *stream);
/* An object is answered (200 or 304): a playlist or not, its body size. */
void http_observe_obj(struct MHD_Connection *conn, const char *method, bool playlist,
                      size_t bytes);
/* The request completed: counts the response, its time and the viewer. */
void http_observe_end(struct MHD_Connection *conn);
/*
 * GET /live/STREAM/thumb.jpg: returns a response (NULL with 404 or on OOM)
 * and its status in *STATUS: 200 with the JPEG, 503 + Retry-After while the
 * first one is being made.
 */
struct MHD_Response *http_thumb_response(const char *stream, unsigned *status);

/* ---- redirect.c: http.redirect_listen ------------------------------------------- */

#define HTTP_REDIRECT_MAX_DAEMONS 8

struct http_redirect;
struct http_limits;

/*
 * The Location for a request to URI (path and query as sent, starting with
 * '/') with Host header HOST, on HTTPS port HTTPS_PORT: "https://HOST[:PORT]URI"
 * (HOST's own port dropped; ":PORT" left out for 443; a bracketed IPv6 host
 * kept). Pure. Returns 0, -EINVAL (no Host, a bad host or URI byte) or -ENOSPC.
 */
int http_redirect_location(const char *host, const char *uri, int https_port, char *out,
                           size_t outlen);

/*
 * Starts the redirect listener(s) on CFG->http_redirect_listen, pointing at
 * HTTPS_PORT; LIMITS (borrowed, outlives it) gives the request-head deadline.
 * Returns 0 and *OUT, or a negative errno (logged).
 */
int http_redirect_new(const struct cfg *cfg, int https_port, struct http_limits *limits,
                      struct http_redirect **out);

/* Stops accepting (the port is free at once); requests in flight go on. Accepts NULL. */
void http_redirect_quiesce(struct http_redirect *r);

/* Stops the daemons. Accepts NULL. */
void http_redirect_free(struct http_redirect *r);

/* The bound port, or -1. */
int http_redirect_port(const struct http_redirect *r);

#endif
