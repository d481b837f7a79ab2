/*
 * Signed playback links: HMAC-SHA256 over "NAME\nEXP" (OpenSSL), checked in
 * constant time, and the playlist rewrite that carries exp/sig to every URI.
 * See signed_internal.h for the link format.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "http.h"
#include "signed_internal.h"

static void mac(const char *secret, const char *name, const char *exp, uint8_t out[32])
{
    char msg[512];
    unsigned n = 32;
    int len = snprintf(msg, sizeof(msg), "%s\n%s", name, exp);

    if (len < 0 || (size_t)len >= sizeof(msg))
        len = 0; /* names and exps are short; a truncated message never verifies */
    HMAC(EVP_sha256(), secret, (int)strlen(secret), (const uint8_t *)msg, (size_t)len, out, &n);
    OPENSSL_cleanse(msg, sizeof(msg));
}

void sign_compute(const char *secret, const char *name, const char *exp,
                  char out[SIGN_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t d[32];

    mac(secret, name, exp, d);
    for (int i = 0; i < 32; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[SIGN_HEX_LEN] = '\0';
}

int sign_check(const char *secret, const char *name, const char *exp, const char *sig,
               int64_t now, char query[SIGN_QUERY_MAX], const char **why)
{
    uint8_t want[32], got[32];
    int64_t e = 0;
    size_t i;

    if (!exp || !sig) {
        *why = "no signature";
        return -EACCES;
    }
    for (i = 0; exp[i]; i++) {
        if (exp[i] < '0' || exp[i] > '9' || i >= 18) {
            *why = "malformed exp";
            return -EACCES;
        }
        e = e * 10 + (exp[i] - '0');
    }
    if (i == 0 || strlen(sig) != SIGN_HEX_LEN) {
        *why = i == 0 ? "malformed exp" : "malformed sig";
        return -EACCES;
    }
    if (!hex_decode(sig, 64, got)) {
        *why = "malformed sig";
        return -EACCES;
    }
    mac(secret, name, exp, want);
    if (CRYPTO_memcmp(want, got, sizeof(want)) != 0) {
        *why = "bad signature";
        return -EACCES;
    }
    if (e < now) {
        *why = "expired link";
        return -EACCES;
    }
    snprintf(query, SIGN_QUERY_MAX, "exp=%s&sig=%s", exp, sig);
    return 0;
}

/* Appends URI [P, P+N) and then '?'/'&' QUERY. */
static int put_uri(struct bytes *out, const uint8_t *p, size_t n, const char *query)
{
    int rc = bytes_append(out, p, n);

    if (rc == 0)
        rc = bytes_printf(out, "%c%s", memchr(p, '?', n) ? '&' : '?', query);
    return rc;
}

/* A tag line: copies it with QUERY added inside every URI="..." value. */
static int put_tag(struct bytes *out, const uint8_t *p, size_t n, const char *query)
{
    static const char attr[] = "URI=\"";
    size_t i = 0;
    int rc = 0;

    while (rc == 0 && i < n) {
        const uint8_t *at = NULL, *end;

        for (size_t j = i; j + sizeof(attr) - 1 <= n; j++) {
            if (!memcmp(p + j, attr, sizeof(attr) - 1) && (j == 0 || p[j - 1] == ':' ||
                                                           p[j - 1] == ',')) {
                at = p + j + sizeof(attr) - 1;
                break;
            }
        }
        if (!at || !(end = memchr(at, '"', (size_t)(p + n - at))))
            return bytes_append(out, p + i, n - i);
        rc = bytes_append(out, p + i, (size_t)(at - (p + i)));
        if (rc == 0)
            rc = put_uri(out, at, (size_t)(end - at), query);
        i = (size_t)(end - p);
    }
    return rc;
}

int sign_playlist(const uint8_t *in, size_t len, const char *query, struct bytes *out)
{
    size_t pos = 0;
    int rc = 0;

    while (rc == 0 && pos < len) {
        const uint8_t *nl = memchr(in + pos, '\n', len - pos);
        size_t end = nl ? (size_t)(nl - in) : len, n = end - pos;
        size_t body = n && in[end - 1] == '\r' ? n - 1 : n;

        if (body == 0)
            rc = 0;
        else if (in[pos] == '#')
            rc = put_tag(out, in + pos, body, query);
        else
            rc = put_uri(out, in + pos, body, query);
        if (rc == 0 && body < n)
            rc = bytes_append(out, "\r", 1);
        if (rc == 0 && nl)
            rc = bytes_append(out, "\n", 1);
        pos = nl ? end + 1 : len;
    }
    return rc;
}

int http_sign_link(const char *secret, const char *name, int64_t exp, char *out, size_t outlen)
{
    char e[24], sig[SIGN_HEX_LEN + 1];
    int n;

    snprintf(e, sizeof(e), "%lld", (long long)exp);
    sign_compute(secret, name, e, sig);
    n = snprintf(out, outlen, "/live/%s/?exp=%s&sig=%s", name, e, sig);
    return n < 0 || (size_t)n >= outlen ? -ENOSPC : 0;
}
