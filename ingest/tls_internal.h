/*
 * RTMPS: the server's TLS context (tls.c). Only rtmp_server.c and tests
 * include this header.
 */
#ifndef ONAIR_TLS_INTERNAL_H
#define ONAIR_TLS_INTERNAL_H

#include <stddef.h>

#include <openssl/ssl.h>

#include "../common/common.h"

/*
 * A TLS 1.2/1.3 server context from the PEM certificate chain CERT and the
 * private key KEY (paths). Returns 0 and a new context in *OUT (SSL_CTX_free
 * it), or a negative errno with the reason logged (which file, OpenSSL's words).
 */
int rtmp_tls_ctx_new(const char *cert, const char *key, SSL_CTX **out);

/* "subject /CN=..., serial 1A2B, valid until ..." of CTX's certificate, for logs. */
void rtmp_tls_describe(SSL_CTX *ctx, char *out, size_t outlen);

/* Drains this thread's OpenSSL error queue into OUT ("reason; reason"), for logs. */
void rtmp_tls_errors(char *out, size_t outlen);

#endif
