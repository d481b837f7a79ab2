/*
 * RTMPS server-side TLS context: the certificate chain and key of rtmps.cert /
 * rtmps.key in an OpenSSL SSL_CTX, TLS 1.2 and 1.3 only. No sockets here:
 * rtmp_server.c hands each accepted connection to libevent's
 * bufferevent_openssl with an SSL made from this context, so the session and
 * the parsers above it see plain RTMP bytes.
 *
 * A reload builds a new context and swaps it in; every SSL holds a reference
 * on the context it was made from, so open connections keep the old
 * certificate and new ones get the new one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_internal.h"

#define MOD "rtmps"

void rtmp_tls_errors(char *out, size_t outlen)
{
    unsigned long e;
    size_t used = 0;

    if (outlen)
        out[0] = '\0';
    while ((e = ERR_get_error()) != 0) {
        char one[256];
        const char *reason = ERR_reason_error_string(e);

        if (reason)
            snprintf(one, sizeof(one), "%s", reason);
        else
            ERR_error_string_n(e, one, sizeof(one));
        if (used + 3 < outlen)
            used += (size_t)snprintf(out + used, outlen - used, "%s%s", used ? "; " : "", one);
    }
    if (outlen && !out[0])
        snprintf(out, outlen, "no TLS error detail");
}

void rtmp_tls_describe(SSL_CTX *ctx, char *out, size_t outlen)
{
    X509 *x = SSL_CTX_get0_certificate(ctx);
    char subject[256] = "?", serial[80] = "?", until[64] = "?";
    BIGNUM *bn = NULL;
    BIO *bio = NULL;
    struct tm tm;

    if (x) {
        /* RFC 2253, as GnuTLS prints it for HTTPS: "CN=example.org,O=..." */
        bio = BIO_new(BIO_s_mem());
        if (bio && X509_NAME_print_ex(bio, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0) {
            int n = BIO_read(bio, subject, (int)sizeof(subject) - 1);

            subject[n > 0 ? n : 0] = '\0';
        }
        BIO_free(bio);
        bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL);
        if (bn) {
            char *hex = BN_bn2hex(bn);

            if (hex)
                snprintf(serial, sizeof(serial), "%s", hex);
            OPENSSL_free(hex);
            BN_free(bn);
        }
        if (ASN1_TIME_to_tm(X509_get0_notAfter(x), &tm) == 1)
            strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
    }
    snprintf(out, outlen, "subject %s, serial %s, valid until %s", subject, serial, until);
}

int rtmp_tls_ctx_new(const char *cert, const char *key, SSL_CTX **out)
{
    SSL_CTX *ctx;
    char why[512];
    const char *step;

    *out = NULL;
    ERR_clear_error();
    ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        rtmp_tls_errors(why, sizeof(why));
        log_error(MOD, "cannot create a TLS context: %s", why);
        return -ENOMEM;
    }
    step = "TLS versions";
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        goto fail;
    /* One-shot connections from encoders: no session cache, no tickets to keep a key for. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    /*
     * An encoder that stops often just closes the socket: with
     * IGNORE_UNEXPECTED_EOF, OpenSSL 3 reports that as an EOF (a disconnect)
     * rather than an SSL error, as libevent's "dirty shutdown" expects.
     */
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /*
     * No SSL_CTX_set_read_ahead: it would halve the read() calls, but
     * libevent 2.1's bufferevent_openssl then leaves records buffered inside
     * OpenSSL unread (publishes stall; integration-rtmps caught it).
     */
    /* libevent's bufferevent_openssl may retry a write with a moved buffer. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    step = "rtmps.cert";
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1)
        goto fail;
    step = "rtmps.key";
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1)
        goto fail;
    step = "rtmps.key does not match rtmps.cert";
    if (SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    *out = ctx;
    return 0;
fail:
    rtmp_tls_errors(why, sizeof(why));
    log_error(MOD, "%s (%s, %s): %s", step, cert, key, why);
    SSL_CTX_free(ctx);
    return -EINVAL;
}
