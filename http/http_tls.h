/*
 * HTTPS certificates (http_tls.c): the chain and key of http.tls_cert /
 * http.tls_key, handed to each new TLS handshake through a GnuTLS callback so
 * that a reload takes effect for new connections without touching the daemon.
 * Only http.c includes this header.
 */
#ifndef ONAIR_HTTP_TLS_H
#define ONAIR_HTTP_TLS_H

#include <microhttpd.h>

struct http_tls;

#define HTTP_TLS_NOPTS 3

/*
 * Loads CERT (PEM chain, leaf first) and KEY (PEM) and makes them what new
 * handshakes get. Returns 0 and a new object in *OUT, or a negative errno
 * (logged: which file, why; a key that does not match the certificate too).
 */
int http_tls_new(const char *cert, const char *key, struct http_tls **out);

/*
 * Reads CERT and KEY again: new handshakes get them, open connections go on
 * with theirs. Returns 0, or a negative errno (logged) with the old ones kept.
 * Any thread.
 */
int http_tls_reload(struct http_tls *t, const char *cert, const char *key);

/* "subject CN=..., serial ..., valid until ..." of T's newest certificate (borrowed). */
const char *http_tls_describe(const struct http_tls *t);

/* MHD options for a TLS daemon: the certificate callback and TLS 1.2/1.3 only. */
void http_tls_options(struct MHD_OptionItem opts[HTTP_TLS_NOPTS]);

/* Frees T (after the daemons that used it stopped). Accepts NULL. */
void http_tls_free(struct http_tls *t);

#endif
