/*
 * http_limits — what libmicrohttpd does not enforce by itself (http_limits.c):
 * a deadline for each request head (http.request_timeout), a log line when the
 * connection limit is reached, and a 414 for query strings with more
 * arguments than a real player sends. Internal to the http module.
 */
#ifndef ONAIR_HTTP_LIMITS_H
#define ONAIR_HTTP_LIMITS_H

#include <microhttpd.h>

struct cfg;
struct http_limits;

/* Most query arguments a request may carry (LL-HLS sends three). */
#define HTTP_LIMITS_MAX_QUERY_ARGS 32

/*
 * Starts the deadline thread. CFG is borrowed for the lifetime; MAX_CONNS is
 * the daemon's connection limit (for the log line). Returns 0 and *OUT, or a
 * negative errno.
 */
int http_limits_new(const struct cfg *cfg, unsigned max_conns, struct http_limits **out);

/* Stops the thread. Call after MHD_stop_daemon (which closes every connection). Accepts NULL. */
void http_limits_free(struct http_limits *l);

/*
 * Connection opened or closed (called from the server's MHD_OPTION_NOTIFY_CONNECTION
 * callback; CLS is the struct http_limits, *SOCKET_CONTEXT this module's record slot).
 */
void http_limits_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                        enum MHD_ConnectionNotificationCode toe);

/*
 * MHD_OPTION_URI_LOG_CALLBACK (CLS = the limits): a query string with more
 * than HTTP_LIMITS_MAX_QUERY_ARGS arguments is cut off before libmicrohttpd
 * parses it into its small per-connection pool, and the request is marked.
 * Returns NULL (the request state stays unset).
 */
void *http_limits_uri(void *cls, const char *uri, struct MHD_Connection *conn);

/*
 * The request head of CONN is complete (first handler call): its deadline is
 * off. Returns 0, or the HTTP status to answer instead (414).
 */
unsigned http_limits_request_begin(struct MHD_Connection *conn);

/* CONN's response is done: the next request head has http.request_timeout from now. */
void http_limits_request_end(struct MHD_Connection *conn);

#endif
