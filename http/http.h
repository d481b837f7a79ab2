/*
 * http — the HLS delivery server on libmicrohttpd (its own poll thread pool).
 * Reads objects from the store and serves them zero-copy; also /healthz and the
 * player page.
 */
#ifndef ONAIR_HTTP_H
#define ONAIR_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct store;
struct http_server;

/*
 * Starts serving CFG->http_listen (every address a host name resolves to)
 * from ST. Takes a reference on CFG; ST is borrowed for the server's lifetime.
 * Returns 0 and the server in *OUT, or a negative errno (logged).
 */
int http_server_new(const struct cfg *cfg, struct store *st, struct http_server **out);

/*
 * A live reload: NEXT (referenced) applies to every request from now on (CORS,
 * playlist max-age). The listen address, threads and hls.js stay; a new
 * http.listen takes a new server (see main.c). Any thread.
 */
void http_server_reconfigure(struct http_server *srv, const struct cfg *next);

/*
 * Reads NEXT's http.tls_cert / http.tls_key again (a SIGHUP: a renewed
 * certificate, or new paths): new connections get them, open ones go on, the
 * daemon and its socket stay. Returns 0 (also for plain HTTP) or a negative
 * errno (logged; the certificate in use stays). Any thread.
 */
int http_server_reload_tls(struct http_server *srv, const struct cfg *next);

/*
 * Retires a server replaced by a reload: stops accepting (the port is closed
 * at once), lets requests in flight finish for up to MAX_WAIT_MS, then frees
 * it. Blocks: call it off the RTMP loop thread. Accepts NULL.
 */
void http_server_retire(struct http_server *srv, int max_wait_ms);

/* Stops the daemons (waits for their threads). Accepts NULL. */
void http_server_free(struct http_server *srv);

/*
 * Writes the signed playback link path of stream NAME valid until EXP (Unix
 * seconds) into OUT: "/live/NAME/?exp=EXP&sig=HEX" (see http/signed.c).
 * Returns 0 or -ENOSPC.
 */
int http_sign_link(const char *secret, const char *name, int64_t exp, char *out, size_t outlen);

struct recorder;

/*
 * Serves the recordings of REC (record/record.h) under /vod/ and the
 * live-rewind playlists (?dvr=1). REC is borrowed for the server's life; NULL
 * = no recordings. Call before traffic arrives.
 */
void http_server_set_recorder(struct http_server *srv, struct recorder *rec);

/* Port actually bound (useful with port 0). */
int http_server_port(const struct http_server *srv);

/* Turns the per-request access log of the public port (log.http_access) on or off. */
void http_set_access_log(bool on);

/* ---- the admin API (admin.c): stats, metrics, kick; its own port ------------- */

struct admin_server;

struct admin_params {
    const char *listen;      /* admin.listen; NULL or "" = no admin server */
    const char *token;       /* admin.token; "" = none required */
    const char *config_path; /* shown by /api/v1/server; NULL = built-in defaults */
    /*
     * Disconnects stream NAME's publisher; called on the admin thread, may
     * block briefly. Returns 0, -ENOENT (no publisher) or a negative errno.
     */
    int (*kick)(void *arg, const char *name);
    void *kick_arg;
};

/*
 * Starts the admin server on P->listen (P's strings are copied; ST borrowed).
 * Returns 0 with the server in *OUT (NULL when disabled), or a negative errno
 * (logged).
 */
int admin_server_new(const struct admin_params *p, struct store *st, struct admin_server **out);
/* Stops it. Accepts NULL. */
void admin_server_free(struct admin_server *a);
/* A reload's admin.token ("" = none) for the requests that follow. Accepts NULL. */
void admin_server_set_token(struct admin_server *a, const char *token);
/* Port actually bound, 0 when disabled. */
int admin_server_port(const struct admin_server *a);

#endif
