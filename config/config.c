/*
 * config — YAML configuration parsed into struct cfg from one declarative table.
 *
 * The document is loaded with libyaml's document API and walked two levels
 * deep: a top-level mapping of sections, each a mapping of scalar values.
 *
 *     rtmp:                 <- section (must be a known section name)
 *       listen: ":1935"     <- key "rtmp.listen" = scalar value
 *
 * Every value goes through the same converter as the defaults (set_value), so
 * a default that does not pass its own row's checks is caught by the unit test.
 * Parsing works on a private copy and touches the caller's struct only on
 * success, so a failed reload leaves the running config as it was.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <netdb.h>
#include <sys/socket.h>
#include <yaml.h>

#include "../common/common.h"
#include "config.h"

/* A config file is small; anything bigger is a mistake (or not a config). */
#define CFG_FILE_MAX (1024 * 1024)

enum cfg_type {
    CT_STRING, /* any scalar, stored in char[CFG_STR_MAX] */
    CT_LISTEN, /* a string that cfg_split_listen accepts */
    CT_ENUM,   /* a string that is one of the '|'-separated CHOICES */
    CT_INT,    /* a plain whole number in [MIN, MAX], stored as int */
    CT_DOUBLE, /* a plain decimal number in [MIN, MAX], stored as double */
    CT_BOOL,   /* plain true/false/yes/no, stored as bool */
};

struct cfg_key {
    const char *key; /* "section.name" */
    enum cfg_type type;
    size_t offset;       /* into struct cfg */
    const char *def;     /* default, as it would be written in the file */
    double min, max;     /* CT_INT, CT_DOUBLE */
    const char *choices; /* CT_ENUM: "a|b|c" */
    const char *doc;
};

#define OFF(field) offsetof(struct cfg, field)

/* The only place that holds keys, types, defaults and limits. */
static const struct cfg_key keys[] = {
    {"rtmp.listen", CT_LISTEN, OFF(rtmp_listen), "127.0.0.1:1935", 0, 0, NULL,
     "address RTMP publishers connect to: host:port, :port (all interfaces) or [v6]:port"},
    {"rtmp.app", CT_STRING, OFF(rtmp_app), "live", 0, 0, NULL,
     "application name publishers use (rtmp://host/APP/stream)"},
    {"rtmp.chunk_size", CT_INT, OFF(rtmp_chunk_size), "4096", 128, 65536, NULL,
     "outgoing RTMP chunk size in bytes"},
    {"rtmp.max_message_bytes", CT_INT, OFF(rtmp_max_message_bytes), "8388608", 65536, 67108864,
     NULL, "largest RTMP message a client may announce, in bytes"},
    {"rtmp.max_connections", CT_INT, OFF(rtmp_max_connections), "1000", 1, 100000, NULL,
     "concurrent RTMP connections accepted"},
    {"http.listen", CT_LISTEN, OFF(http_listen), "127.0.0.1:8080", 0, 0, NULL,
     "address the HTTP server listens on: host:port, :port or [v6]:port"},
    {"http.threads", CT_INT, OFF(http_threads), "4", 1, 64, NULL, "HTTP worker threads"},
    {"http.max_connections", CT_INT, OFF(http_max_connections), "0", 0, 1000000, NULL,
     "concurrent HTTP connections; 0 = what the open-file limit leaves after RTMP"},
    {"http.cors_origin", CT_STRING, OFF(http_cors_origin), "*", 0, 0, NULL,
     "Access-Control-Allow-Origin value; empty = no CORS header"},
    {"http.playlist_max_age", CT_INT, OFF(http_playlist_max_age), "1", 0, 60, NULL,
     "Cache-Control max-age of live playlists, in seconds"},
    {"http.player_js", CT_STRING, OFF(http_player_js), "", 0, 0, NULL,
     "path of hls.min.js served at /static/hls.min.js; empty = search the usual places"},
    {"hls.segment_seconds", CT_DOUBLE, OFF(hls_segment_seconds), "2.0", 0.5, 30, NULL,
     "target segment duration in seconds (segments are cut on keyframes)"},
    {"hls.window_segments", CT_INT, OFF(hls_window_segments), "6", 2, 100, NULL,
     "segments listed in the live playlist"},
    {"hls.part_seconds", CT_DOUBLE, OFF(hls_part_seconds), "0.333", 0, 2, NULL,
     "LL-HLS part target in seconds (0 = standard HLS only; at least 0.1 otherwise)"},
    {"log.level", CT_ENUM, OFF(log_level), "info", 0, 0, "error|warn|info|debug",
     "most verbose level printed: error, warn, info or debug"},
};

#define NKEYS ARRAY_SIZE(keys)

/* ---- values ------------------------------------------------------------- */

/* Writes TEXT into OUT for a message: at most 40 bytes, control bytes as '?'. */
static void quote(char *out, size_t outlen, const char *text, size_t len)
{
    size_t n = len > 40 ? 40 : len, i;

    if (outlen < 4) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    if (n > outlen - 4)
        n = outlen - 4;
    for (i = 0; i < n; i++)
        out[i] = (unsigned char)text[i] < 0x20 || text[i] == 0x7f ? '?' : text[i];
    if (n < len) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* Plain empty, "~" and "null" are YAML's null; a string key takes them as "". */
static bool is_null(const char *text, size_t len, bool plain)
{
    return plain && (len == 0 || (len == 1 && text[0] == '~') ||
                     (len == 4 && (!memcmp(text, "null", 4) || !memcmp(text, "Null", 4) ||
                                   !memcmp(text, "NULL", 4))));
}

/* [+-]digits; returns 0 or -EINVAL. Huge values saturate (the range check rejects them). */
static int parse_int(const char *s, long long *out)
{
    long long v = 0;
    bool neg = false;
    const char *p = s;

    if (*p == '+' || *p == '-')
        neg = *p++ == '-';
    if (!isdigit((unsigned char)*p))
        return -EINVAL;
    for (; isdigit((unsigned char)*p); p++)
        v = v > (LLONG_MAX - 9) / 10 ? LLONG_MAX : v * 10 + (*p - '0');
    if (*p)
        return -EINVAL;
    *out = neg ? -v : v;
    return 0;
}

/* [+-](digits[.digits*] | .digits)([eE][+-]digits); no hex, inf or nan. */
static int parse_double(const char *s, double *out)
{
    const char *p = s;
    size_t before = 0, after = 0;
    char *end;

    if (*p == '+' || *p == '-')
        p++;
    while (isdigit((unsigned char)*p))
        p++, before++;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            after++;
    if (!before && !after)
        return -EINVAL;
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        while (isdigit((unsigned char)*p))
            p++;
    }
    if (*p)
        return -EINVAL;
    *out = strtod(s, &end);        /* overflow gives HUGE_VAL, which fails the range check */
    return end == p ? 0 : -EINVAL; /* != under a locale with ',' as decimal point */
}

static bool parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"true", "yes"}, *const no[] = {"false", "no"};
    size_t i;

    for (i = 0; i < ARRAY_SIZE(yes); i++) {
        if (!strcasecmp(s, yes[i]))
            return *out = true, true;
        if (!strcasecmp(s, no[i]))
            return *out = false, true;
    }
    return false;
}

/* True if TEXT is one of K's '|'-separated choices. */
static bool in_choices(const struct cfg_key *k, const char *text, size_t len)
{
    const char *p = k->choices;

    for (;;) {
        size_t n = strcspn(p, "|");
        if (n == len && !memcmp(p, text, len))
            return true;
        if (!p[n])
            return false;
        p += n + 1;
    }
}

/*
 * Converts TEXT (LEN bytes, NUL-terminated; PLAIN if it was an unquoted scalar)
 * for row K and stores it into C. Returns 0, or -EINVAL with the reason in WHY.
 */
static int set_value(const struct cfg_key *k, struct cfg *c, const char *text, size_t len,
                     bool plain, char *why, size_t whylen)
{
    void *field = (char *)c + k->offset;
    char q[48];
    long long iv;
    double dv;
    bool bv;
    int r;

    quote(q, sizeof(q), text, len);
    if (memchr(text, '\0', len)) {
        snprintf(why, whylen, "%s: value contains a NUL byte", k->key);
        return -EINVAL;
    }
    switch (k->type) {
    case CT_STRING:
    case CT_LISTEN:
    case CT_ENUM:
        if (is_null(text, len, plain))
            len = 0, text = "";
        if (len >= CFG_STR_MAX) {
            snprintf(why, whylen, "%s: value is too long (%zu bytes, at most %d)", k->key, len,
                     CFG_STR_MAX - 1);
            return -EINVAL;
        }
        if (k->type == CT_ENUM && !in_choices(k, text, len)) {
            char list[CFG_STR_MAX];
            size_t i, n = 0;
            for (i = 0; k->choices[i] && n + 3 < sizeof(list); i++) {
                if (k->choices[i] == '|') {
                    list[n++] = ',';
                    list[n++] = ' ';
                } else {
                    list[n++] = k->choices[i];
                }
            }
            list[n] = '\0';
            snprintf(why, whylen, "%s: must be one of %s, got '%s'", k->key, list, q);
            return -EINVAL;
        }
        if (k->type == CT_LISTEN) {
            char host[CFG_STR_MAX];
            int port;
            if (cfg_split_listen(text, host, sizeof(host), &port) < 0) {
                snprintf(why, whylen,
                         "%s: '%s' is not a listen address (host:port, :port or [v6]:port, "
                         "port 0..65535)",
                         k->key, q);
                return -EINVAL;
            }
        }
        memcpy(field, text, len);
        ((char *)field)[len] = '\0';
        return 0;
    case CT_INT:
        r = plain ? parse_int(text, &iv) : -EINVAL;
        if (r < 0) {
            snprintf(why, whylen, "%s: expected an integer (a whole number), got %s'%s'", k->key,
                     plain ? "" : "the quoted string ", q);
            return -EINVAL;
        }
        if (iv < (long long)k->min || iv > (long long)k->max) {
            snprintf(why, whylen, "%s: must be between %lld and %lld, got %s", k->key,
                     (long long)k->min, (long long)k->max, q);
            return -EINVAL;
        }
        *(int *)field = (int)iv;
        return 0;
    case CT_DOUBLE:
        r = plain ? parse_double(text, &dv) : -EINVAL;
        if (r < 0) {
            snprintf(why, whylen, "%s: expected a number, got %s'%s'", k->key,
                     plain ? "" : "the quoted string ", q);
            return -EINVAL;
        }
        if (dv < k->min || dv > k->max) {
            snprintf(why, whylen, "%s: must be between %g and %g, got %s", k->key, k->min, k->max,
                     q);
            return -EINVAL;
        }
        *(double *)field = dv;
        return 0;
    case CT_BOOL:
        if (!plain || !parse_bool(text, &bv)) {
            snprintf(why, whylen, "%s: expected true, false, yes or no, got '%s'", k->key, q);
            return -EINVAL;
        }
        *(bool *)field = bv;
        return 0;
    }
    return -EINVAL;
}

void cfg_defaults(struct cfg *c)
{
    char why[256];
    size_t i;

    memset(c, 0, sizeof(*c));
    for (i = 0; i < NKEYS; i++) {
        int r = set_value(&keys[i], c, keys[i].def, strlen(keys[i].def), true, why, sizeof(why));
        assert(r == 0 && "a default in config.c fails its own row's checks");
        (void)r;
    }
}

/* ---- key lookup --------------------------------------------------------- */

/* Edit distance, or SIZE_MAX for strings too long to be worth comparing. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b), row[64], i, j;

    if (la >= ARRAY_SIZE(row) || lb >= ARRAY_SIZE(row))
        return SIZE_MAX;
    for (j = 0; j <= lb; j++)
        row[j] = j;
    for (i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* Keeps NAME in BEST if it is closer to TYPED than the current best and close enough. */
static void consider(const char *typed, const char *name, size_t namelen, char *best,
                     size_t bestlen, size_t *bestd)
{
    char cand[64];
    size_t d;

    if (namelen >= sizeof(cand))
        return;
    memcpy(cand, name, namelen);
    cand[namelen] = '\0';
    d = distance(typed, cand);
    if (d < *bestd && d <= 3 && d * 3 <= namelen && namelen < bestlen) {
        *bestd = d;
        memcpy(best, cand, namelen + 1);
    }
}

/* Index of the first row of section NAME (LEN bytes), or -1. */
static int find_section(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (!strncmp(keys[i].key, name, len) && keys[i].key[len] == '.' && !memchr(name, '.', len))
            return (int)i;
    return -1;
}

/* Index of the row "SECTION.NAME", or -1. */
static int find_key(const char *dotted)
{
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].key, dotted))
            return (int)i;
    return -1;
}

/* Writes " (did you mean 'x'?)" into OUT if a section (or key, if KEYS) is close to TYPED. */
static void suggest(const char *typed, bool want_keys, char *out, size_t outlen)
{
    char best[64] = "";
    size_t bestd = SIZE_MAX, i;

    for (i = 0; i < NKEYS; i++) {
        const char *k = keys[i].key;
        size_t seclen = strcspn(k, ".");
        if (want_keys)
            consider(typed, k, strlen(k), best, sizeof(best), &bestd);
        else if (i == 0 || strncmp(keys[i - 1].key, k, seclen + 1))
            consider(typed, k, seclen, best, sizeof(best), &bestd);
    }
    if (best[0])
        snprintf(out, outlen, " (did you mean '%s'?)", best);
    else if (outlen)
        out[0] = '\0';
}

/* ---- the walk ----------------------------------------------------------- */

struct walk {
    const char *name;
    yaml_document_t *doc;
    struct cfg *c;
    char *err;
    size_t errlen;
    size_t key_line[NKEYS]; /* 1-based line where a key was set, 0 = not yet */
    size_t sec_line[NKEYS]; /* same, by the section's first row */
};

static int fail_at(struct walk *w, yaml_mark_t m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail_at(struct walk *w, yaml_mark_t m, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (!w->errlen)
        return -EINVAL;
    n = snprintf(w->err, w->errlen, "%s:%zu:%zu: ", w->name, m.line + 1, m.column + 1);
    if (n < 0 || (size_t)n >= w->errlen)
        return -EINVAL;
    va_start(ap, fmt);
    vsnprintf(w->err + n, w->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

static const char *kind(const yaml_node_t *n)
{
    return n->type == YAML_MAPPING_NODE    ? "a mapping"
           : n->type == YAML_SEQUENCE_NODE ? "a list"
                                           : "a scalar";
}

static bool is_plain(const yaml_node_t *n)
{
    return n->type == YAML_SCALAR_NODE && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static bool is_null_node(const yaml_node_t *n)
{
    return is_plain(n) && is_null((const char *)n->data.scalar.value, n->data.scalar.length, true);
}

/* Reads the scalar KEY of a mapping pair into OUT; returns 0 or an error at its mark. */
static int key_name(struct walk *w, const yaml_node_t *key, char *out, size_t outlen)
{
    const char *s = (const char *)key->data.scalar.value;
    size_t len = key->data.scalar.length;

    if (key->type != YAML_SCALAR_NODE)
        return fail_at(w, key->start_mark, "expected a key name, got %s", kind(key));
    if (len >= outlen || memchr(s, '\0', len)) {
        char q[48];
        quote(q, sizeof(q), s, len);
        return fail_at(w, key->start_mark, "unknown key '%s'", q);
    }
    memcpy(out, s, len + 1);
    return 0;
}

static int walk_section(struct walk *w, const char *sec, const yaml_node_t *map)
{
    yaml_node_pair_t *p;

    if (is_null_node(map))
        return 0; /* "rtmp:" with every key commented out */
    if (map->type != YAML_MAPPING_NODE)
        return fail_at(w, map->start_mark, "section '%s' must be a mapping of keys, got %s", sec,
                       kind(map));
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        char name[64], dotted[128], hint[80], why[384];
        int r, i;

        if ((r = key_name(w, kn, name, sizeof(name))) < 0)
            return r;
        snprintf(dotted, sizeof(dotted), "%s.%s", sec, name);
        if ((i = find_key(dotted)) < 0) {
            suggest(dotted, true, hint, sizeof(hint));
            return fail_at(w, kn->start_mark, "unknown key '%s'%s", dotted, hint);
        }
        if (w->key_line[i])
            return fail_at(w, kn->start_mark, "duplicate key '%s' (first set at line %zu)", dotted,
                           w->key_line[i]);
        w->key_line[i] = kn->start_mark.line + 1;
        if (vn->type != YAML_SCALAR_NODE)
            return fail_at(w, vn->start_mark, "%s: expected a single value, got %s", dotted,
                           kind(vn));
        r = set_value(&keys[i], w->c, (const char *)vn->data.scalar.value, vn->data.scalar.length,
                      is_plain(vn), why, sizeof(why));
        if (r < 0)
            return fail_at(w, vn->start_mark, "%s", why);
    }
    return 0;
}

static int walk_root(struct walk *w, const yaml_node_t *root)
{
    yaml_node_pair_t *p;

    if (is_null_node(root))
        return 0; /* a lone "---" */
    if (root->type != YAML_MAPPING_NODE)
        return fail_at(w, root->start_mark,
                       "the top level must be a mapping of sections (rtmp, http, hls, log), "
                       "got %s",
                       kind(root));
    for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        char name[64], hint[80];
        int r, s;

        if ((r = key_name(w, kn, name, sizeof(name))) < 0)
            return r;
        if ((s = find_section(name, strlen(name))) < 0) {
            if (find_key(name) >= 0)
                return fail_at(w, kn->start_mark,
                               "unknown section '%s' (write the key under its section: "
                               "'%.*s:' then '  %s:')",
                               name, (int)strcspn(name, "."), name, strchr(name, '.') + 1);
            suggest(name, false, hint, sizeof(hint));
            return fail_at(w, kn->start_mark, "unknown section '%s'%s", name, hint);
        }
        if (w->sec_line[s])
            return fail_at(w, kn->start_mark, "duplicate section '%s' (first at line %zu)", name,
                           w->sec_line[s]);
        w->sec_line[s] = kn->start_mark.line + 1;
        if ((r = walk_section(w, name, yaml_document_get_node(w->doc, p->value))) < 0)
            return r;
    }
    return 0;
}

/* Reports a libyaml error; reader errors carry only a byte offset into YAML. */
static int syntax_error(struct walk *w, yaml_parser_t *ps, const char *yaml, size_t len)
{
    yaml_mark_t m = ps->problem_mark;
    char ctx[128] = "";

    if (ps->error == YAML_MEMORY_ERROR) {
        snprintf(w->err, w->errlen, "%s: out of memory", w->name);
        return -ENOMEM;
    }
    if (ps->error == YAML_READER_ERROR) {
        size_t i, end = ps->problem_offset < len ? ps->problem_offset : len;
        memset(&m, 0, sizeof(m));
        for (i = 0; i < end; i++) {
            if (yaml[i] == '\n')
                m.line++, m.column = 0;
            else if (((unsigned char)yaml[i] & 0xc0) != 0x80)
                m.column++;
        }
    }
    if (ps->context)
        snprintf(ctx, sizeof(ctx), " (%s at line %zu)", ps->context, ps->context_mark.line + 1);
    return fail_at(w, m, "YAML syntax error: %s%s", ps->problem ? ps->problem : "unknown", ctx);
}

int cfg_parse(const char *name, const char *yaml, size_t len, struct cfg *c, char *err,
              size_t errlen)
{
    struct walk *w;
    struct cfg tmp;
    yaml_parser_t ps;
    yaml_document_t doc, extra;
    yaml_node_t *root;
    int r;

    if (errlen)
        err[0] = '\0';
    w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(err, errlen, "%s: out of memory", name);
        return -ENOMEM;
    }
    w->name = name;
    w->err = err;
    w->errlen = errlen;
    w->c = &tmp;
    w->doc = &doc;
    cfg_defaults(&tmp);
    if (!yaml_parser_initialize(&ps)) {
        snprintf(err, errlen, "%s: out of memory", name);
        r = -ENOMEM;
        goto fail_parser;
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)(yaml ? yaml : ""), yaml ? len : 0);
    if (!yaml_parser_load(&ps, &doc)) {
        r = syntax_error(w, &ps, yaml, len);
        goto fail_load;
    }
    root = yaml_document_get_root_node(&doc);
    if (root && (r = walk_root(w, root)) < 0)
        goto fail_doc;
    /* A second document would be silently ignored; say so instead. */
    if (root) {
        if (!yaml_parser_load(&ps, &extra)) {
            r = syntax_error(w, &ps, yaml, len);
            goto fail_doc;
        }
        root = yaml_document_get_root_node(&extra);
        if (root)
            r = fail_at(w, root->start_mark, "expected a single YAML document");
        else
            r = 0;
        yaml_document_delete(&extra);
        if (r < 0)
            goto fail_doc;
    }
    *c = tmp;
    r = 0;
fail_doc:
    yaml_document_delete(&doc);
fail_load:
    yaml_parser_delete(&ps);
fail_parser:
    free(w);
    return r;
}

int cfg_load(const char *path, struct cfg *c, char *err, size_t errlen)
{
    FILE *f;
    char *data = NULL;
    size_t len = 0, cap = 0;
    int r;

    if (errlen)
        err[0] = '\0';
    f = fopen(path, "rb");
    if (!f) {
        r = -errno;
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(-r));
        return r;
    }
    for (;;) {
        size_t n;
        if (len == cap) {
            char *p;
            if (cap > CFG_FILE_MAX) {
                snprintf(err, errlen, "%s: file is too large (more than %d bytes)", path,
                         CFG_FILE_MAX);
                r = -EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            p = realloc(data, cap + 1);
            if (!p) {
                snprintf(err, errlen, "%s: out of memory", path);
                r = -ENOMEM;
                goto fail;
            }
            data = p;
        }
        n = fread(data + len, 1, cap - len, f);
        len += n;
        if (n == 0) {
            if (ferror(f)) {
                r = errno ? -errno : -EIO;
                snprintf(err, errlen, "%s: cannot read: %s", path, strerror(-r));
                goto fail;
            }
            break;
        }
    }
    r = cfg_parse(path, data ? data : "", len, c, err, errlen);
fail:
    free(data);
    fclose(f);
    return r;
}

/* ---- listen addresses --------------------------------------------------- */

static bool host_char(char ch, bool bracketed)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_' ||
           (bracketed && (ch == ':' || ch == '%'));
}

int cfg_split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *h, *colon, *p;
    size_t hlen, i;
    bool bracketed;
    long v = 0;

    if (host && hostlen)
        host[0] = '\0';
    if (!listen)
        return -EINVAL;
    bracketed = listen[0] == '[';
    if (bracketed) {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (!hlen || !memchr(h, ':', hlen))
            return -EINVAL;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -EINVAL;
        h = listen;
        hlen = (size_t)(colon - h);
    }
    for (i = 0; i < hlen; i++)
        if (!host_char(h[i], bracketed))
            return -EINVAL; /* also rejects an unbracketed IPv6 address */
    p = colon + 1;
    if (!*p || strlen(p) > 5)
        return -EINVAL;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return -EINVAL;
    if (host) {
        if (hlen >= hostlen)
            return -EINVAL;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = (int)v;
    return 0;
}

int cfg_resolve_listen(const char *host, int port, struct addrinfo **out, const char **why)
{
    struct addrinfo hints = {0};
    char portstr[8];
    int rc;

    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, portstr, &hints, out);
    if (rc != 0) {
        *out = NULL;
        *why = gai_strerror(rc);
        return -EINVAL;
    }
    return 0;
}
