/*
 * http — the HLS delivery server on libmicrohttpd (its own epoll thread pool).
 * Reads objects from the store and serves them zero-copy; also /healthz and the
 * player page.
 */
#ifndef ONAIR_HTTP_H
#define ONAIR_HTTP_H

struct cfg;
struct store;
struct http_server;

/*
 * Starts serving CFG->http_listen from ST (both borrowed for the server's
 * lifetime). Returns 0 and the server in *OUT, or a negative errno (logged).
 */
int http_server_new(const struct cfg *cfg, struct store *st, struct http_server **out);

/* Stops the daemon (waits for its threads). Accepts NULL. */
void http_server_free(struct http_server *srv);

/* Port actually bound (useful with port 0). */
int http_server_port(const struct http_server *srv);

#endif
