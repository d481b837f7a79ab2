/*
 * HTTPS certificates for libmicrohttpd (GnuTLS), reloadable without a restart.
 *
 * MHD's MHD_OPTION_HTTPS_MEM_CERT/KEY fix the certificate for a daemon's life,
 * so instead the daemon gets a GnuTLS "retrieve" callback
 * (MHD_OPTION_HTTPS_CERT_CALLBACK) that hands each new handshake the current
 * certificate chain and key. A reload (SIGHUP) parses the files into a new
 * set and makes it current: connections that are already up keep going on
 * the set they negotiated, the next handshake gets the new one, and the
 * daemon, its socket and its connections are never touched.
 *
 * GnuTLS's callback has no user pointer, so "current" is one process-wide
 * slot (there is one HTTPS listener configuration per process; a server that
 * a reload replaces hands its slot to the new one). GnuTLS keeps pointers to
 * the set a session was given, so sets are never freed while their owner
 * lives: a reload appends, and http_tls_free drops them all (a few KiB per
 * reload).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>

#include "../common/common.h"
#include "http_tls.h"

#define MOD "http"
#define MAX_CHAIN 16
#define PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

struct cert_set {
    struct cert_set *older;
    gnutls_pcert_st pcert[MAX_CHAIN];
    unsigned n;
    gnutls_privkey_t key;
    char desc[384]; /* subject, serial, expiry: for logs */
};

struct http_tls {
    struct cert_set *sets; /* newest first: new handshakes get sets[0] */
    struct http_tls *prev, *next; /* every live one */
    unsigned long gen;            /* when it last became current */
};

static pthread_mutex_t current_lock = PTHREAD_MUTEX_INITIALIZER;
static struct http_tls *live;    /* every http_tls alive (usually one) */
static struct http_tls *current; /* the live one that became current last */
static unsigned long generation;

static void set_free(struct cert_set *s)
{
    for (unsigned i = 0; i < s->n; i++)
        gnutls_pcert_deinit(&s->pcert[i]);
    if (s->key)
        gnutls_privkey_deinit(s->key);
    free(s);
}

/* PATH's bytes in *OUT (gnutls_free them). Returns 0 or a negative errno. */
static int load(const char *path, gnutls_datum_t *out)
{
    return gnutls_load_file(path, out) < 0 ? -ENOENT : 0;
}

static void describe(struct cert_set *s)
{
    gnutls_x509_crt_t crt = NULL;
    gnutls_datum_t dn = {NULL, 0};
    unsigned char serial[64];
    size_t slen = sizeof(serial);
    char hex[2 * sizeof(serial) + 1] = "?", until[64] = "?";
    time_t t;
    struct tm tm;

    snprintf(s->desc, sizeof(s->desc), "?");
    if (gnutls_x509_crt_init(&crt) < 0)
        return;
    if (gnutls_x509_crt_import(crt, &s->pcert[0].cert, GNUTLS_X509_FMT_DER) == 0) {
        gnutls_x509_crt_get_dn3(crt, &dn, 0);
        if (gnutls_x509_crt_get_serial(crt, serial, &slen) == 0)
            for (size_t i = 0; i < slen; i++)
                snprintf(hex + 2 * i, 3, "%02X", serial[i]);
        t = gnutls_x509_crt_get_expiration_time(crt);
        if (t != (time_t)-1 && gmtime_r(&t, &tm))
            strftime(until, sizeof(until), "%Y-%m-%d %H:%M:%S UTC", &tm);
        snprintf(s->desc, sizeof(s->desc), "subject %s, serial %s, valid until %s",
                 dn.data ? (const char *)dn.data : "?", hex, until);
        gnutls_free(dn.data);
    }
    gnutls_x509_crt_deinit(crt);
}

/* Parses CERT (PEM chain) and KEY (PEM) into a new set. Returns NULL (logged) on error. */
static struct cert_set *set_new(const char *cert, const char *key)
{
    struct cert_set *s = calloc(1, sizeof(*s));
    gnutls_datum_t c = {NULL, 0}, k = {NULL, 0};
    gnutls_pubkey_t pub = NULL;
    unsigned char id1[64], id2[64];
    size_t l1 = sizeof(id1), l2 = sizeof(id2);
    const char *step = "out of memory";
    int rc = 0;

    if (!s)
        goto fail;
    step = "http.tls_cert: cannot read";
    if (load(cert, &c) < 0)
        goto fail;
    step = "http.tls_key: cannot read";
    if (load(key, &k) < 0)
        goto fail;
    step = "http.tls_cert: no PEM certificate chain";
    s->n = MAX_CHAIN;
    rc = gnutls_pcert_list_import_x509_raw(s->pcert, &s->n, &c, GNUTLS_X509_FMT_PEM, 0);
    if (rc < 0 || s->n == 0) {
        s->n = 0;
        goto fail;
    }
    step = "http.tls_key: no PEM private key";
    if ((rc = gnutls_privkey_init(&s->key)) < 0 ||
        (rc = gnutls_privkey_import_x509_raw(s->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
        goto fail;
    step = "http.tls_key does not match http.tls_cert";
    rc = 0;
    if (gnutls_pubkey_init(&pub) < 0 || gnutls_pubkey_import_privkey(pub, s->key, 0, 0) < 0 ||
        gnutls_pubkey_get_key_id(pub, 0, id1, &l1) < 0 ||
        gnutls_pubkey_get_key_id(s->pcert[0].pubkey, 0, id2, &l2) < 0 || l1 != l2 ||
        memcmp(id1, id2, l1) != 0)
        goto fail;
    gnutls_pubkey_deinit(pub);
    gnutls_free(c.data);
    gnutls_free(k.data);
    describe(s);
    return s;
fail:
    log_error(MOD, "%s (%s, %s)%s%s", step, cert, key, rc < 0 ? ": " : "",
              rc < 0 ? gnutls_strerror(rc) : "");
    if (pub)
        gnutls_pubkey_deinit(pub);
    gnutls_free(c.data);
    gnutls_free(k.data);
    if (s)
        set_free(s);
    return NULL;
}

/* gnutls_certificate_retrieve_function2: the current set, for every new handshake. */
static int retrieve(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int nreqs,
                    const gnutls_pk_algorithm_t *pk_algos, int pk_algos_length,
                    gnutls_pcert_st **pcert, unsigned int *pcert_length, gnutls_privkey_t *key)
{
    int rc = -1;

    (void)session, (void)req_ca_dn, (void)nreqs, (void)pk_algos, (void)pk_algos_length;
    pthread_mutex_lock(&current_lock);
    if (current && current->sets) {
        *pcert = current->sets->pcert;
        *pcert_length = current->sets->n;
        *key = current->sets->key;
        rc = 0;
    }
    pthread_mutex_unlock(&current_lock);
    return rc;
}

int http_tls_new(const char *cert, const char *key, struct http_tls **out)
{
    struct http_tls *t = calloc(1, sizeof(*t));

    *out = NULL;
    if (!t)
        return -ENOMEM;
    t->sets = set_new(cert, key);
    if (!t->sets) {
        free(t);
        return -EINVAL;
    }
    pthread_mutex_lock(&current_lock);
    t->next = live;
    if (live)
        live->prev = t;
    live = t;
    t->gen = ++generation;
    current = t;
    pthread_mutex_unlock(&current_lock);
    *out = t;
    return 0;
}

int http_tls_reload(struct http_tls *t, const char *cert, const char *key)
{
    struct cert_set *s = set_new(cert, key);

    if (!s)
        return -EINVAL;
    pthread_mutex_lock(&current_lock);
    s->older = t->sets;
    t->sets = s;
    t->gen = ++generation;
    current = t;
    pthread_mutex_unlock(&current_lock);
    return 0;
}

const char *http_tls_describe(const struct http_tls *t)
{
    return t && t->sets ? t->sets->desc : "?";
}

void http_tls_options(struct MHD_OptionItem opts[HTTP_TLS_NOPTS])
{
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)retrieve};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)PRIORITIES};
    opts[2] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
}

void http_tls_free(struct http_tls *t)
{
    struct cert_set *s, *older;

    if (!t)
        return;
    pthread_mutex_lock(&current_lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        live = t->next;
    if (t->next)
        t->next->prev = t->prev;
    if (current == t) { /* e.g. a new server that failed to start: the running one again */
        current = NULL;
        for (struct http_tls *o = live; o; o = o->next)
            if (!current || o->gen > current->gen)
                current = o;
    }
    pthread_mutex_unlock(&current_lock);
    for (s = t->sets; s; s = older) {
        older = s->older;
        set_free(s);
    }
    free(t);
}
