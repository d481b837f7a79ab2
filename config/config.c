/*
 * config — YAML configuration parsed into struct cfg from one declarative table.
 *
 * The document is loaded with libyaml's document API and walked: a top-level
 * mapping of sections (each a mapping of scalar values) and two top-level keys,
 * `publish` and the `streams` list.
 *
 *     publish: keys         <- top-level key "publish"
 *     streams:              <- the list of public streams and their keys
 *       - name: townhall
 *         key: "change-me"
 *     rtmp:                 <- section (must be a known section name)
 *       listen: ":1935"     <- key "rtmp.listen" = scalar value
 *
 * The walk never stops at the first mistake: every error is appended to a
 * struct cfg_errors as "FILE:LINE:COL: message" and the walk goes on, so one
 * `--check-config` run lists them all. Only a YAML syntax error ends it (there
 * is no document to walk past it).
 *
 * Every value goes through the same converter as the defaults (set_value), so
 * a default that does not pass its own row's checks is caught by the unit test.
 */
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netdb.h>
#include <openssl/crypto.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <yaml.h>

#include "config.h"

/* A config file is small; anything bigger is a mistake (or not a config). */
#define CFG_FILE_MAX (1024 * 1024)
#define KEY_MIN_LEN 8
#define KEY_MAX_LEN 127

enum cfg_type {
    CT_STRING,   /* any scalar, stored in char[CFG_STR_MAX] */
    CT_LISTEN,   /* a string that cfg_split_listen accepts */
    CT_ENUM,     /* a string that is one of the '|'-separated CHOICES */
    CT_INT,      /* a plain whole number in [MIN, MAX], stored as int */
    CT_DURATION, /* 2, 2s, 1.5s, 333ms in [MIN, MAX] seconds, stored as double seconds */
    CT_SIZE,     /* 4096, 64KiB, 4MB, 8MiB in [MIN, MAX] bytes, stored as int (CF_INT64: int64_t) */
    CT_BOOL,     /* true/false (yes/no, on/off), stored as bool */
    CT_STREAMS,  /* the `streams:` list (walk_streams) */
};

enum cfg_flags {
    CF_ZERO_OK = 1 << 0,  /* 0 is allowed besides [MIN, MAX] ("off") */
    CF_READABLE = 1 << 1, /* a path that cfg_load checks is a readable file (if not "") */
    CF_URL = 1 << 2,      /* an http:// or https:// URL (if not "") */
    CF_SECRET = 1 << 3,   /* never shown in messages or diffs */
    CF_INT64 = 1 << 4,    /* CT_SIZE stored as int64_t (beyond 2 GiB) */
    CF_EMPTY_OK = 1 << 5, /* CT_LISTEN: "" is allowed ("off") */
};

struct cfg_key {
    const char *key; /* "section.name", or "name" at the top level */
    enum cfg_type type;
    size_t offset;       /* into struct cfg */
    const char *def;     /* default, as it would be written in the file */
    double min, max;     /* CT_INT, CT_DURATION (seconds), CT_SIZE (bytes) */
    const char *choices; /* CT_ENUM: "a|b|c"; CT_INT: why the range, for its error */
    unsigned flags;
    const char *reload; /* what a live reload does with a change */
    const char *doc;
};

#define OFF(field) offsetof(struct cfg, field)

/* The only place that holds keys, types, defaults, limits and help. */
static const struct cfg_key keys[] = {
    {"publish", CT_ENUM, OFF(publish_name), "open", 0, 0, "open|keys", 0, "live",
     "`open`: any stream name publishes; `keys`: only the keys listed under `streams` "
     "(the default as soon as streams are listed)"},
    {"streams", CT_STREAMS, OFF(streams), "", 0, 0, NULL, 0,
     "live; a removed stream or changed key disconnects that publisher",
     "list of `name` (public, in viewer URLs) with `key` or `key_sha256` (what OBS calls "
     "the Stream Key, or its SHA-256 in hex)"},
    {"rtmp.listen", CT_LISTEN, OFF(rtmp_listen), "127.0.0.1:1935", 0, 0, NULL, 0,
     "new listener bound before the old one closes",
     "address RTMP publishers connect to: `host:port`, `:port` (all interfaces) or "
     "`[v6]:port`; a host name binds every address it resolves to"},
    {"rtmp.app", CT_STRING, OFF(rtmp_app), "live", 0, 0, NULL, 0, "new connections",
     "application name publishers use (`rtmp://HOST/APP/KEY`)"},
    {"rtmp.chunk_size", CT_SIZE, OFF(rtmp_chunk_size), "4KiB", 128, 65536, NULL, 0,
     "new connections", "outgoing RTMP chunk size"},
    {"rtmp.max_message_bytes", CT_SIZE, OFF(rtmp_max_message_bytes), "8MiB", 65536, 67108864,
     NULL, 0, "new connections", "largest RTMP message a client may announce"},
    {"rtmp.max_connections", CT_INT, OFF(rtmp_max_connections), "1000", 1, 100000, NULL, 0,
     "live", "concurrent RTMP connections accepted"},
    {"rtmp.max_unauthenticated", CT_INT, OFF(rtmp_max_unauthenticated), "64", 1, 100000, NULL, 0,
     "live", "connections not publishing yet; when full, the oldest (still in the handshake "
     "first) is closed to make room for a new one"},
    {"rtmp.setup_timeout", CT_DURATION, OFF(rtmp_setup_timeout_s), "5s", 1, 120, NULL, 0,
     "new connections", "time a connection has to complete handshake, connect and publish"},
    {"rtmp.idle_timeout", CT_DURATION, OFF(rtmp_idle_timeout_s), "10s", 1, 3600, NULL, 0,
     "new connections", "a publisher that sends no audio or video this long is dropped"},
    {"rtmp.max_buffer_bytes", CT_SIZE, OFF(rtmp_max_buffer_bytes), "16MiB", 65536, 1073741824,
     NULL, 0, "new connections",
     "partial messages one connection may buffer (256 KiB before it publishes)"},
    {"rtmp.max_total_buffer_bytes", CT_SIZE, OFF(rtmp_max_total_buffer_bytes), "256MiB", 1048576,
     1073741824, NULL, 0, "live",
     "partial messages all connections together may buffer; beyond it the largest holder is "
     "closed"},
    {"rtmps.listen", CT_LISTEN, OFF(rtmps_listen), "", 0, 0, NULL, CF_EMPTY_OK,
     "new listener bound before the old one closes",
     "address of the RTMPS (RTMP over TLS 1.2/1.3) listener, as `rtmp.listen`; empty = off. "
     "Shares the `rtmp.*` limits and timeouts with the plain listener"},
    {"rtmps.cert", CT_STRING, OFF(rtmps_cert), "", 0, 0, NULL, CF_READABLE,
     "read again on every SIGHUP: new connections get it, open ones go on",
     "PEM certificate chain for `rtmps.listen` (e.g. Let's Encrypt's `fullchain.pem`)"},
    {"rtmps.key", CT_STRING, OFF(rtmps_key), "", 0, 0, NULL, CF_READABLE,
     "read again on every SIGHUP", "PEM private key of `rtmps.cert`"},
    {"http.listen", CT_LISTEN, OFF(http_listen), "127.0.0.1:8080", 0, 0, NULL, 0,
     "new server started before the old one stops", "address the HTTP server listens on, as "
                                                    "`rtmp.listen`"},
    {"http.threads", CT_INT, OFF(http_threads), "4", 1, 64, NULL, 0,
     "with the next `http.listen` change, else restart", "HTTP worker threads"},
    {"http.max_connections", CT_INT, OFF(http_max_connections), "0", 0, 1000000, NULL, 0,
     "with the next `http.listen` change, else restart",
     "concurrent HTTP connections; 0 = what the open-file limit leaves after RTMP"},
    {"http.max_connections_per_ip", CT_INT, OFF(http_max_connections_per_ip), "0", 0, 1000000,
     NULL, 0, "with the next `http.listen` change, else restart",
     "concurrent HTTP connections from one client address; 0 = no limit (a CDN in front is one "
     "address)"},
    {"http.request_timeout", CT_DURATION, OFF(http_request_timeout_s), "10s", 1, 300, NULL, 0,
     "with the next `http.listen` change, else restart",
     "time a client has to send a complete request head, also between keep-alive requests"},
    {"http.idle_timeout", CT_DURATION, OFF(http_idle_timeout_s), "30s", 1, 3600, NULL, 0,
     "with the next `http.listen` change, else restart",
     "time a connection may make no progress at all (e.g. a client that stops reading)"},
    {"http.max_request_bytes", CT_SIZE, OFF(http_max_request_bytes), "32KiB", 8192, 1048576, NULL,
     0, "with the next `http.listen` change, else restart",
     "memory per connection for the request head; beyond it 431 (headers) or 414 (URI); more "
     "than 32 query arguments is a 414"},
    {"http.cors_origin", CT_STRING, OFF(http_cors_origin), "*", 0, 0, NULL, 0,
     "responses built from then on (playlists within a part, new segments)",
     "`Access-Control-Allow-Origin` value; empty = no CORS headers"},
    {"http.playlist_max_age", CT_INT, OFF(http_playlist_max_age), "1", 0, 60, NULL, 0,
     "playlists rendered from then on",
     "seconds a cache may keep a live playlist (`Cache-Control: max-age`)"},
    {"http.tls_cert", CT_STRING, OFF(http_tls_cert), "", 0, 0, NULL, CF_READABLE,
     "read again on every SIGHUP: new connections get it, open ones go on; switching HTTPS on "
     "or off starts a new server (as `http.listen`)",
     "PEM certificate (full chain) for HTTPS on `http.listen`; empty = plain HTTP"},
    {"http.tls_key", CT_STRING, OFF(http_tls_key), "", 0, 0, NULL, CF_READABLE,
     "read again on every SIGHUP", "PEM private key of `http.tls_cert`"},
    {"http.redirect_listen", CT_LISTEN, OFF(http_redirect_listen), "", 0, 0, NULL, CF_EMPTY_OK,
     "new server started before the old one stops (as `http.listen`)",
     "plain-HTTP address (e.g. `:80`) that only redirects to HTTPS: 301 for GET/HEAD, 308 "
     "otherwise, same path and query; empty = none; needs `http.tls_cert`"},
    {"http.hsts", CT_STRING, OFF(http_hsts), "max-age=31536000", 0, 0, NULL, 0,
     "responses built from then on",
     "`Strict-Transport-Security` value sent over HTTPS; empty = none"},
    {"http.signing_secret", CT_STRING, OFF(http_signing_secret), "", 0, 0, NULL, CF_SECRET,
     "live (links signed with the old secret stop working)",
     "HMAC-SHA256 secret of signed playback links (streams with `playback: signed`); at least "
     "16 characters; `onair sign NAME` makes links"},
    {"http.player_js", CT_STRING, OFF(http_player_js), "", 0, 0, NULL, CF_READABLE,
     "with the next `http.listen` change, else restart",
     "path of `hls.min.js` served at `/static/hls.min.js`; empty = the installed copy "
     "(PREFIX/share/onair) or the source tree's node_modules"},
    {"hls.segment_seconds", CT_DURATION, OFF(hls_segment_seconds), "2s", 0.5, 30, NULL, 0,
     "from each stream's next segment, up to the target duration a live playlist keeps",
     "target segment duration (`2`, `2s`, `1500ms`); segments are cut on keyframes, or "
     "without one when keyframes come later than this rounded up "
     "(`EXT-X-TARGETDURATION`, fixed for a playlist's life)"},
    {"hls.part_seconds", CT_DURATION, OFF(hls_part_seconds), "333ms", 0.1, 2.0, NULL, CF_ZERO_OK,
     "restart (PART-TARGET is fixed for a running server)", "LL-HLS part target duration; 0 turns LL-HLS off"},
    {"hls.window_segments", CT_INT, OFF(hls_window_segments), "6", 3, 100,
     "RFC 8216 6.2.2: a live playlist lists at least three target durations", 0,
     "from each stream's next segment",
     "segments listed in the live playlist (at least three target durations are)"},
    {"hls.reconnect_grace_seconds", CT_DURATION, OFF(hls_reconnect_grace_seconds), "30s", 0,
     3600, NULL, 0, "live",
     "how long a stream stays live after its publisher left: a publish of the same name "
     "within it continues the playlist after an `EXT-X-DISCONTINUITY`; 0 = ends at once"},
    {"hls.max_segment_bytes", CT_SIZE, OFF(hls_max_segment_bytes), "32MiB", 1048576,
     1073741824, NULL, 0, "live",
     "a segment is cut when it reaches this size (without a keyframe if need be)"},
    {"hooks.on_publish", CT_STRING, OFF(hooks_on_publish), "", 0, 0, NULL, CF_URL,
     "publishes from then on",
     "`http://` or `https://` URL POSTed a JSON body (`event`, `app`, `name`, `key`, `query`, "
     "`addr`, `id`) before a publish starts: 2xx allows, anything else refuses; empty = off"},
    {"hooks.on_live", CT_STRING, OFF(hooks_on_live), "", 0, 0, NULL, CF_URL,
     "notifications from then on",
     "URL told (POST, JSON `event`, `app`, `name`, `addr`, `id`) when a stream goes live; "
     "retried with backoff; empty = off"},
    {"hooks.on_end", CT_STRING, OFF(hooks_on_end), "", 0, 0, NULL, CF_URL,
     "notifications from then on", "URL told when a stream ends, as `hooks.on_live`"},
    {"hooks.timeout", CT_DURATION, OFF(hooks_timeout), "3s", 0.1, 8, NULL, 0,
     "requests from then on", "how long a hook request may take, connecting included"},
    {"hooks.on_failure", CT_ENUM, OFF(hooks_on_failure), "refuse", 0, 0, "refuse|allow", 0,
     "publishes from then on",
     "what a publish gets when `on_publish` times out or cannot be reached (an answer other "
     "than 2xx always refuses)"},
    {"record.enabled", CT_BOOL, OFF(record_enabled), "false", 0, 0, NULL, 0, "publishes from then on",
     "record every stream (a stream entry's `record: true/false` overrides it); see Recording"},
    {"record.path", CT_STRING, OFF(record_path), "./recordings", 0, 0, NULL, 0, "restart",
     "directory of the recordings: `PATH/NAME/ID/` per live stream, served at `/vod/NAME/ID/`"},
    {"record.max_bytes", CT_SIZE, OFF(record_max_bytes), "0", 1048576, 1125899906842624.0, NULL,
     CF_ZERO_OK | CF_INT64, "live",
     "all recordings together at most this big: the oldest finished ones are deleted first; "
     "0 = no limit"},
    {"record.max_age", CT_DURATION, OFF(record_max_age_s), "0", 60, 315360000, NULL, CF_ZERO_OK,
     "live", "recordings older than this are deleted (`7d`, `12h`, `90min`); 0 = kept"},
    {"log.level", CT_ENUM, OFF(log_level), "info", 0, 0, "error|warn|info|debug", 0, "live",
     "most verbose level printed"},
    {"log.format", CT_ENUM, OFF(log_format), "text", 0, 0, "text|json", 0, "live",
     "`json`: one JSON object per line (`ts`, `level`, `module`, `stream`, `msg`, fields) "
     "for journald or Loki"},
    {"log.http_access", CT_ENUM, OFF(log_http_access), "off", 0, 0, "off|on", 0, "live",
     "`on`: an info line per request on the public HTTP port"},
    {"admin.listen", CT_LISTEN, OFF(admin_listen), "127.0.0.1:9080", 0, 0, NULL, CF_EMPTY_OK,
     "restart",
     "address of the admin API and `/metrics`, as `rtmp.listen`; empty = no admin port and "
     "no statistics"},
    {"admin.token", CT_STRING, OFF(admin_token), "", 0, 0, NULL, CF_SECRET, "next request",
     "bearer token the admin port requires (`Authorization: Bearer TOKEN`); empty = none: "
     "keep `admin.listen` on loopback then"},
    {"thumbnails.interval", CT_DURATION, OFF(thumbnails_interval), "10s", 1, 3600, NULL, 0,
     "next refresh",
     "a stream's `thumb.jpg` is refreshed at most this often, and only while it is asked for"},
    {"process.pid_file", CT_STRING, OFF(process_pid_file), "", 0, 0, NULL, 0, "restart",
     "file onair writes its process id to, read by `onair --reload`; empty = none"},
};

#define NKEYS ARRAY_SIZE(keys)

/* ---- errors ----------------------------------------------------------------- */

void cfg_errors_reset(struct cfg_errors *e)
{
    if (!e)
        return;
    bytes_reset(&e->text);
    e->count = 0;
}

const char *cfg_errors_str(const struct cfg_errors *e)
{
    return e && e->text.len ? (const char *)e->text.data : "";
}

static void errors_vadd(struct cfg_errors *e, const char *prefix, const char *fmt, va_list ap)
{
    char msg[640];

    if (!e)
        return;
    vsnprintf(msg, sizeof(msg), fmt, ap);
    e->count++;
    /* The trailing NUL is appended and then not counted, so text stays a C string. */
    if (bytes_printf(&e->text, "%s%s\n", prefix, msg) == 0 && bytes_append(&e->text, "", 1) == 0)
        e->text.len--;
}

static void errors_add(struct cfg_errors *e, const char *prefix, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void errors_add(struct cfg_errors *e, const char *prefix, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    errors_vadd(e, prefix, fmt, ap);
    va_end(ap);
}

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

/* [+-](digits[.digits*] | .digits)([eE][+-]digits) in S[0..LEN); no hex, inf or nan. */
static int parse_double(const char *s, size_t len, double *out)
{
    char buf[64];
    const char *p = buf;
    size_t before = 0, after = 0;
    char *end;

    if (len >= sizeof(buf))
        return -EINVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
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
    *out = strtod(buf, &end);        /* overflow gives HUGE_VAL, which fails the range check */
    return end == p ? 0 : -EINVAL; /* != under a locale with ',' as decimal point */
}

/* true/yes/on or false/no/off (YAML 1.1 booleans, lower case). Returns 0 or -EINVAL. */
static int parse_bool(const char *s, size_t len, bool *out)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < ARRAY_SIZE(yes); i++) {
        if (strlen(yes[i]) == len && !memcmp(s, yes[i], len)) {
            *out = true;
            return 0;
        }
        if (strlen(no[i]) == len && !memcmp(s, no[i], len)) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

/* Length of the number before a trailing unit (a run of letters) in S. */
static size_t number_len(const char *s, size_t len)
{
    size_t n = len;

    while (n > 0 && isalpha((unsigned char)s[n - 1]))
        n--;
    /* "1e5" is a number with an exponent, not "1" with the unit "e5". */
    return n;
}

static const struct {
    const char *unit;
    double bytes;
} size_units[] = {
    {"", 1},          {"B", 1},           {"KB", 1e3},         {"KiB", 1024},
    {"MB", 1e6},      {"MiB", 1048576.0}, {"GB", 1e9},         {"GiB", 1073741824.0},
};

/* Seconds from "2", "2s", "1.5s", "333ms". Returns 0, or -EINVAL with *UNIT_AT set when the unit is wrong. */
static int parse_duration(const char *s, size_t len, double *out, size_t *unit_at)
{
    size_t n = number_len(s, len);
    const char *unit = s + n;
    size_t ulen = len - n;
    double v;

    *unit_at = 0;
    if (parse_double(s, n, &v) < 0)
        return -EINVAL;
    if (ulen == 0 || (ulen == 1 && unit[0] == 's'))
        *out = v;
    else if (ulen == 2 && !memcmp(unit, "ms", 2))
        *out = v / 1000.0;
    else if (ulen == 3 && !memcmp(unit, "min", 3))
        *out = v * 60;
    else if (ulen == 1 && unit[0] == 'h')
        *out = v * 3600;
    else if (ulen == 1 && unit[0] == 'd')
        *out = v * 86400;
    else {
        *unit_at = n;
        return -EINVAL;
    }
    return 0;
}

/* Bytes from "4096", "64KiB", "4MB". Returns 0, or -EINVAL (*UNIT_AT set for a bad unit). */
static int parse_size(const char *s, size_t len, double *out, size_t *unit_at)
{
    size_t n = number_len(s, len), i;
    double v;

    *unit_at = 0;
    if (parse_double(s, n, &v) < 0)
        return -EINVAL;
    for (i = 0; i < ARRAY_SIZE(size_units); i++) {
        if (strlen(size_units[i].unit) == len - n && !strncmp(size_units[i].unit, s + n, len - n)) {
            *out = v * size_units[i].bytes;
            return 0;
        }
    }
    *unit_at = n;
    return -EINVAL;
}

/* "64KiB" for multiples of 1024, else the plain number of bytes. */
static void format_size(double bytes, char *out, size_t outlen)
{
    long long b = (long long)bytes;

    if (b >= 1099511627776LL && b % 1099511627776LL == 0)
        snprintf(out, outlen, "%lldTiB", b / 1099511627776LL);
    else if (b >= 16 * 1073741824LL && b % 1073741824LL == 0)
        snprintf(out, outlen, "%lldGiB", b / 1073741824LL);
    else if (b >= 1048576 && b % 1048576 == 0)
        snprintf(out, outlen, "%lldMiB", b / 1048576);
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(out, outlen, "%lldKiB", b / 1024);
    else
        snprintf(out, outlen, "%lld", b);
}

/* "2s", "333ms", "0.5s". */
static void format_duration(double seconds, char *out, size_t outlen)
{
    double ms = seconds * 1000.0;

    if (seconds != 0 && seconds < 1 && fabs(ms - round(ms)) < 1e-9)
        snprintf(out, outlen, "%gms", round(ms));
    else if (seconds >= 86400 && fmod(seconds, 86400) == 0)
        snprintf(out, outlen, "%gd", seconds / 86400);
    else if (seconds >= 3600 && fmod(seconds, 3600) == 0)
        snprintf(out, outlen, "%gh", seconds / 3600);
    else
        snprintf(out, outlen, "%gs", seconds);
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

/* K's choices as "a, b, c". */
static void choice_list(const struct cfg_key *k, char *out, size_t outlen)
{
    size_t i, n = 0;

    for (i = 0; k->choices[i] && n + 3 < outlen; i++) {
        if (k->choices[i] == '|') {
            out[n++] = ',';
            out[n++] = ' ';
        } else {
            out[n++] = k->choices[i];
        }
    }
    out[n] = '\0';
}

/* The allowed range of a numeric row: "500ms to 30s", or "from 500ms to 30s" if FROM. */
static void range_text(const struct cfg_key *k, bool from, char *out, size_t outlen)
{
    char lo[32], hi[32];

    switch (k->type) {
    case CT_INT:
        snprintf(lo, sizeof(lo), "%lld", (long long)k->min);
        snprintf(hi, sizeof(hi), "%lld", (long long)k->max);
        break;
    case CT_DURATION:
        format_duration(k->min, lo, sizeof(lo));
        format_duration(k->max, hi, sizeof(hi));
        break;
    case CT_SIZE:
        format_size(k->min, lo, sizeof(lo));
        format_size(k->max, hi, sizeof(hi));
        break;
    default:
        if (outlen)
            out[0] = '\0';
        return;
    }
    snprintf(out, outlen, "%s%s%s to %s", k->flags & CF_ZERO_OK ? "0 (off) or " : "",
             from ? "from " : "", lo, hi);
}

/* Checks V against K's range; 0 or -ERANGE with the reason in WHY. */
static int check_range(const struct cfg_key *k, double v, const char *q, char *why, size_t whylen)
{
    char range[96];

    if ((v >= k->min && v <= k->max) || (v == 0 && (k->flags & CF_ZERO_OK)))
        return 0;
    range_text(k, true, range, sizeof(range));
    snprintf(why, whylen, "%s: must be %s, got %s%s%s%s", k->key, range, q,
             k->type == CT_INT && k->choices ? " (" : "",
             k->type == CT_INT && k->choices ? k->choices : "",
             k->type == CT_INT && k->choices ? ")" : "");
    return -ERANGE;
}

/*
 * Converts TEXT (LEN bytes, NUL-terminated; PLAIN if it was an unquoted scalar)
 * for row K and stores it into C. Returns 0, or -EINVAL with the reason in WHY
 * and, for a bad unit, its offset into TEXT in *AT.
 */
static int set_value(const struct cfg_key *k, struct cfg *c, const char *text, size_t len,
                     bool plain, char *why, size_t whylen, size_t *at)
{
    void *field = (char *)c + k->offset;
    char q[48];
    long long iv;
    double dv;
    int r;

    *at = 0;
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
            choice_list(k, list, sizeof(list));
            snprintf(why, whylen, "%s: must be one of %s, got '%s'", k->key, list, q);
            return -EINVAL;
        }
        if ((k->flags & CF_URL) && len && strncmp(text, "http://", 7) &&
            strncmp(text, "https://", 8)) {
            snprintf(why, whylen, "%s: '%s' is not an http:// or https:// URL", k->key, q);
            return -EINVAL;
        }
        if (k->type == CT_LISTEN && !(len == 0 && (k->flags & CF_EMPTY_OK)) &&
            cfg_split_listen(text, NULL, 0, NULL) < 0) {
            snprintf(why, whylen,
                     "%s: '%s' is not a listen address (host:port, :port or [v6]:port, "
                     "port 0..65535)",
                     k->key, q);
            return -EINVAL;
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
        if (check_range(k, (double)iv, q, why, whylen) < 0)
            return -EINVAL;
        *(int *)field = (int)iv;
        return 0;
    case CT_DURATION:
        r = plain ? parse_duration(text, len, &dv, at) : -EINVAL;
        if (r < 0) {
            if (*at && *at < strlen(q))
                snprintf(why, whylen, "%s: unknown unit '%s' (write seconds as 2 or 2s, "
                                      "milliseconds as 500ms; also 90min, 12h, 7d)", k->key, q + *at);
            else
                snprintf(why, whylen, "%s: expected a duration (2, 2s or 500ms), got %s'%s'",
                         k->key, plain ? "" : "the quoted string ", q);
            return -EINVAL;
        }
        if (check_range(k, dv, q, why, whylen) < 0)
            return -EINVAL;
        *(double *)field = dv;
        return 0;
    case CT_SIZE:
        r = plain ? parse_size(text, len, &dv, at) : -EINVAL;
        if (r < 0) {
            if (*at && *at < strlen(q))
                snprintf(why, whylen, "%s: unknown unit '%s' (use B, KB, KiB, MB, MiB, GB or GiB)",
                         k->key, q + *at);
            else
                snprintf(why, whylen, "%s: expected a size (4096, 64KiB or 4MB), got %s'%s'",
                         k->key, plain ? "" : "the quoted string ", q);
            return -EINVAL;
        }
        if (dv != floor(dv)) {
            snprintf(why, whylen, "%s: %s is not a whole number of bytes", k->key, q);
            return -EINVAL;
        }
        if (check_range(k, dv, q, why, whylen) < 0)
            return -EINVAL;
        if (k->flags & CF_INT64)
            *(int64_t *)field = (int64_t)dv;
        else
            *(int *)field = (int)dv;
        return 0;
    case CT_BOOL:
        if (plain && parse_bool(text, len, (bool *)field) == 0)
            return 0;
        snprintf(why, whylen, "%s: expected true or false, got %s'%s'", k->key,
                 plain ? "" : "the quoted string ", q);
        return -EINVAL;
    case CT_STREAMS:
        break;
    }
    return -EINVAL;
}

/* Derived fields that follow from the table's values. */
static void derive(struct cfg *c)
{
    c->publish = strcmp(c->publish_name, "keys") == 0 ? CFG_PUBLISH_KEYS : CFG_PUBLISH_OPEN;
}

void cfg_defaults(struct cfg *c)
{
    char why[256];
    size_t i, at;

    memset(c, 0, sizeof(*c));
    atomic_init(&c->refs, 0);
    for (i = 0; i < NKEYS; i++) {
        int r;
        if (keys[i].type == CT_STREAMS)
            continue;
        r = set_value(&keys[i], c, keys[i].def, strlen(keys[i].def), true, why, sizeof(why), &at);
        assert(r == 0 && "a default in config.c fails its own row's checks");
        (void)r;
    }
    derive(c);
}

/* ---- snapshots ------------------------------------------------------------ */

static struct cfg *cfg_alloc(void)
{
    struct cfg *c = calloc(1, sizeof(*c));

    if (!c)
        return NULL;
    cfg_defaults(c);
    atomic_init(&c->refs, 1);
    return c;
}

struct cfg *cfg_new(void)
{
    return cfg_alloc();
}

const struct cfg *cfg_ref(const struct cfg *c)
{
    /* refs 0: a struct its owner keeps alive (a test's local), not counted. */
    if (atomic_load(&((struct cfg *)c)->refs) > 0)
        atomic_fetch_add(&((struct cfg *)c)->refs, 1);
    return c;
}

void cfg_unref(const struct cfg *cc)
{
    struct cfg *c = (struct cfg *)cc;
    int old;

    if (!c || atomic_load(&c->refs) == 0)
        return;
    old = atomic_fetch_sub(&c->refs, 1);
    assert(old > 0 && "cfg refcount underflow");
    if (old != 1)
        return;
    free(c->streams);
    free(c);
}

enum log_level cfg_log_level(const struct cfg *c)
{
    if (strcmp(c->log_level, "error") == 0)
        return LOG_ERROR;
    if (strcmp(c->log_level, "warn") == 0)
        return LOG_WARN;
    if (strcmp(c->log_level, "debug") == 0)
        return LOG_DEBUG;
    return LOG_INFO;
}

/* ---- keys --------------------------------------------------------------------- */

static void sha256(const char *data, size_t len, uint8_t out[32])
{
    SHA256((const unsigned char *)data, len, out);
}

/*
 * A fingerprint is a hash of the key's SHA-256 under its own label, cut to 32
 * bits: enough to tell keys apart in a log, useless to log in with.
 */
static void fingerprint_of_digest(const uint8_t digest[32], char out[CFG_FINGERPRINT_LEN + 1])
{
    static const char label[] = "onair key fingerprint";
    uint8_t in[sizeof(label) - 1 + 32], fp[32];
    int i;

    memcpy(in, label, sizeof(label) - 1);
    memcpy(in + sizeof(label) - 1, digest, 32);
    SHA256(in, sizeof(in), fp);
    for (i = 0; i < CFG_FINGERPRINT_LEN / 2; i++)
        snprintf(out + 2 * i, 3, "%02x", fp[i]);
    out[CFG_FINGERPRINT_LEN] = '\0';
}

void cfg_key_fingerprint(const char *key, size_t len, char out[CFG_FINGERPRINT_LEN + 1])
{
    uint8_t d[32];

    sha256(key, len, d);
    fingerprint_of_digest(d, out);
}

const struct cfg_stream *cfg_find_key(const struct cfg *c, const char *key, size_t len)
{
    const struct cfg_stream *found = NULL;
    uint8_t d[32];
    size_t i;

    sha256(key, len, d);
    /* Every entry is compared, match or not, so timing says nothing about which. */
    for (i = 0; i < c->nstreams; i++)
        if (CRYPTO_memcmp(d, c->streams[i].key_sha256, sizeof(d)) == 0 && !found)
            found = &c->streams[i];
    return found;
}

bool cfg_records(const struct cfg *c, const char *name)
{
    const struct cfg_stream *s = cfg_find_stream(c, name);

    if (s && s->record != CFG_RECORD_DEFAULT)
        return s->record == CFG_RECORD_ON;
    return c->record_enabled;
}

const struct cfg_stream *cfg_find_stream(const struct cfg *c, const char *name)
{
    for (size_t i = 0; i < c->nstreams; i++)
        if (!strcmp(c->streams[i].name, name))
            return &c->streams[i];
    return NULL;
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

/* True if row I is the first of its section (or a top-level key). */
static bool first_of_section(size_t i)
{
    size_t seclen = strcspn(keys[i].key, ".");

    return i == 0 || strncmp(keys[i - 1].key, keys[i].key, seclen + 1) != 0 ||
           !keys[i].key[seclen];
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

/* Index of the row "SECTION.NAME" (or a top-level "NAME"), or -1. */
static int find_key(const char *dotted)
{
    size_t i;

    for (i = 0; i < NKEYS; i++)
        if (!strcmp(keys[i].key, dotted))
            return (int)i;
    return -1;
}

/*
 * Writes " (did you mean 'x'?)" into OUT if a name is close to TYPED: a key
 * when WANT_KEYS, else a section or top-level key.
 */
static void suggest(const char *typed, bool want_keys, char *out, size_t outlen)
{
    char best[64] = "";
    size_t bestd = SIZE_MAX, i;

    for (i = 0; i < NKEYS; i++) {
        const char *k = keys[i].key;
        if (want_keys)
            consider(typed, k, strlen(k), best, sizeof(best), &bestd);
        else if (first_of_section(i))
            consider(typed, k, strcspn(k, "."), best, sizeof(best), &bestd);
    }
    if (best[0])
        snprintf(out, outlen, " (did you mean '%s'?)", best);
    else if (outlen)
        out[0] = '\0';
}

/* ---- the walk ----------------------------------------------------------- */

/* Where something was written: to point a later error at it. */
struct where {
    bool set;
    yaml_mark_t key, value;
};

struct stream_src {
    struct where name, key;
};

struct walk {
    const char *name;
    yaml_document_t *doc;
    struct cfg *c;
    struct cfg_errors *errs;
    int nerr;
    struct where at[NKEYS];      /* where each key was set */
    struct where sec_at[NKEYS];  /* where each section began, by its first row */
    struct stream_src *src;      /* per entry of c->streams */
    bool bad_stream;             /* an entry of `streams` was reported */
};

static void err_at(struct walk *w, yaml_mark_t m, size_t col_extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void err_at(struct walk *w, yaml_mark_t m, size_t col_extra, const char *fmt, ...)
{
    char prefix[CFG_STR_MAX + 48];
    va_list ap;

    w->nerr++;
    snprintf(prefix, sizeof(prefix), "%s:%zu:%zu: ", w->name, m.line + 1,
             m.column + 1 + col_extra);
    va_start(ap, fmt);
    errors_vadd(w->errs, prefix, fmt, ap);
    va_end(ap);
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

/* Reads the scalar KEY of a mapping pair into OUT; returns 0, or -EINVAL (reported). */
static int key_name(struct walk *w, const yaml_node_t *key, char *out, size_t outlen)
{
    const char *s = (const char *)key->data.scalar.value;
    size_t len = key->data.scalar.length;

    if (key->type != YAML_SCALAR_NODE) {
        err_at(w, key->start_mark, 0, "expected a key name, got %s", kind(key));
        return -EINVAL;
    }
    bool ctl = false;

    for (size_t i = 0; i < len && !ctl; i++)
        ctl = (unsigned char)s[i] < 0x20 || s[i] == 0x7f;
    /* No real name has control bytes; they would also break the one-line messages. */
    if (len >= outlen || ctl) {
        char q[48];
        quote(q, sizeof(q), s, len);
        err_at(w, key->start_mark, 0, "unknown key '%s'", q);
        return -EINVAL;
    }
    memcpy(out, s, len + 1);
    return 0;
}

/* Sets row I from value node VN (key node KN); reports what is wrong. */
static void walk_value(struct walk *w, int i, const yaml_node_t *kn, const yaml_node_t *vn)
{
    char why[384];
    size_t at;
    bool plain = is_plain(vn);

    if (w->at[i].set) {
        err_at(w, kn->start_mark, 0, "duplicate key '%s' (first set at line %zu)", keys[i].key,
               w->at[i].key.line + 1);
        return;
    }
    w->at[i] = (struct where){true, kn->start_mark, vn->start_mark};
    if (vn->type != YAML_SCALAR_NODE) {
        err_at(w, vn->start_mark, 0, "%s: expected a single value, got %s", keys[i].key, kind(vn));
        return;
    }
    if (set_value(&keys[i], w->c, (const char *)vn->data.scalar.value, vn->data.scalar.length,
                  plain, why, sizeof(why), &at) < 0)
        /* A unit is pointed at where it is, when the value sits on one line as written. */
        err_at(w, vn->start_mark,
               plain && vn->end_mark.line == vn->start_mark.line ? at : 0, "%s", why);
}

static void walk_section(struct walk *w, const char *sec, const yaml_node_t *map)
{
    yaml_node_pair_t *p;

    if (is_null_node(map))
        return; /* "rtmp:" with every key commented out */
    if (map->type != YAML_MAPPING_NODE) {
        err_at(w, map->start_mark, 0, "section '%s' must be a mapping of keys, got %s", sec,
               kind(map));
        return;
    }
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        char name[64], dotted[128], hint[80];
        int i;

        if (key_name(w, kn, name, sizeof(name)) < 0)
            continue;
        snprintf(dotted, sizeof(dotted), "%s.%s", sec, name);
        if ((i = find_key(dotted)) < 0) {
            suggest(dotted, true, hint, sizeof(hint));
            err_at(w, kn->start_mark, 0, "unknown key '%s'%s", dotted, hint);
            continue;
        }
        walk_value(w, i, kn, vn);
    }
}

/* A stream key: printable ASCII without spaces, '/', '?' (OBS sends it as a stream name). */
static bool key_ok(const char *k, size_t len)
{
    size_t i;

    if (len < KEY_MIN_LEN || len > KEY_MAX_LEN)
        return false;
    for (i = 0; i < len; i++)
        if (k[i] <= 0x20 || k[i] >= 0x7f || k[i] == '/' || k[i] == '?')
            return false;
    return true;
}

/* One `- name: ... key: ...` entry into S; returns true if it is complete and valid. */
static bool walk_stream(struct walk *w, const yaml_node_t *item, struct cfg_stream *s,
                        struct stream_src *src)
{
    static const char *const fields[] = {"name", "key", "key_sha256", "playback", "record"};
    yaml_node_pair_t *p;
    bool ok = true, have_name = false, have_key = false, have_hash = false, have_pb = false;
    bool have_rec = false;

    memset(s, 0, sizeof(*s));
    memset(src, 0, sizeof(*src));
    if (item->type != YAML_MAPPING_NODE) {
        err_at(w, item->start_mark, 0,
               "streams: each entry must be a mapping with name and key, got %s", kind(item));
        return false;
    }
    for (p = item->data.mapping.pairs.start; p < item->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        const char *v;
        char name[64], q[48], best[64] = "", hint[96] = "";
        size_t len, f, bestd = SIZE_MAX;

        if (key_name(w, kn, name, sizeof(name)) < 0) {
            ok = false;
            continue;
        }
        for (f = 0; f < ARRAY_SIZE(fields) && strcmp(name, fields[f]); f++)
            consider(name, fields[f], strlen(fields[f]), best, sizeof(best), &bestd);
        if (f == ARRAY_SIZE(fields)) {
            if (best[0])
                snprintf(hint, sizeof(hint), " (did you mean '%s'?)", best);
            err_at(w, kn->start_mark, 0, "unknown key '%s' in a stream entry (name, key, "
                                         "key_sha256, playback or record)%s", name, hint);
            ok = false;
            continue;
        }
        if ((f == 0 && have_name) || (f == 1 && have_key) || (f == 2 && have_hash) ||
            (f == 3 && have_pb) || (f == 4 && have_rec)) {
            err_at(w, kn->start_mark, 0, "duplicate key '%s' in a stream entry", name);
            ok = false;
            continue;
        }
        if (vn->type != YAML_SCALAR_NODE) {
            err_at(w, vn->start_mark, 0, "streams: %s: expected a single value, got %s", name,
                   kind(vn));
            ok = false;
            continue;
        }
        v = (const char *)vn->data.scalar.value;
        len = vn->data.scalar.length;
        quote(q, sizeof(q), v, len);
        if (f == 0) {
            have_name = true;
            src->name = (struct where){true, kn->start_mark, vn->start_mark};
            if (len >= sizeof(s->name) || memchr(v, '\0', len) || !stream_name_valid(v)) {
                err_at(w, vn->start_mark, 0,
                       "streams: name '%s' is not a stream name (1 to %d of A-Z a-z 0-9 _ - ., "
                       "not starting with '.')",
                       q, STREAM_NAME_MAX_LEN);
                ok = false;
                continue;
            }
            memcpy(s->name, v, len + 1);
        } else if (f == 1) {
            have_key = true;
            src->key = (struct where){true, kn->start_mark, vn->start_mark};
            if (!key_ok(v, len)) {
                /* The key itself is not repeated in the message: it is a secret. */
                err_at(w, vn->start_mark, 0,
                       "streams: key must be %d to %d printable characters without spaces, "
                       "'/' or '?' (got %zu bytes)",
                       KEY_MIN_LEN, KEY_MAX_LEN, len);
                ok = false;
                continue;
            }
            sha256(v, len, s->key_sha256);
        } else if (f == 4) {
            bool on;

            have_rec = true;
            if (parse_bool(v, len, &on) < 0) {
                err_at(w, vn->start_mark, 0, "streams: record must be true or false, got '%s'", q);
                ok = false;
                continue;
            }
            s->record = on ? CFG_RECORD_ON : CFG_RECORD_OFF;
        } else if (f == 3) {
            have_pb = true;
            if (len == 6 && !memcmp(v, "public", 6)) {
                s->signed_playback = false;
            } else if (len == 6 && !memcmp(v, "signed", 6)) {
                s->signed_playback = true;
            } else {
                err_at(w, vn->start_mark, 0, "streams: playback must be public or signed, got '%s'",
                       q);
                ok = false;
                continue;
            }
        } else {
            have_hash = true;
            src->key = (struct where){true, kn->start_mark, vn->start_mark};
            if (len != 64 || !hex_decode(v, 64, s->key_sha256)) {
                err_at(w, vn->start_mark, 0,
                       "streams: key_sha256 must be 64 hex digits (sha256sum of the key), "
                       "got '%s'", q);
                ok = false;
                continue;
            }
        }
    }
    if (!ok)
        return false; /* one message per mistake, not its consequences too */
    if (!have_name) {
        err_at(w, item->start_mark, 0, "streams: entry without a name");
        return false;
    }
    if (have_key && have_hash) {
        err_at(w, src->key.key, 0, "streams: %s: give key or key_sha256, not both", s->name);
        return false;
    }
    if (!have_key && !have_hash) {
        err_at(w, item->start_mark, 0, "streams: %s: needs a key (or key_sha256)", s->name);
        return false;
    }
    fingerprint_of_digest(s->key_sha256, s->fingerprint);
    return true;
}

/* Names and keys must be unique; reported at the later entry. */
static void check_unique(struct walk *w)
{
    size_t i, j;

    for (i = 0; i < w->c->nstreams; i++) {
        for (j = 0; j < i; j++) {
            const struct cfg_stream *a = &w->c->streams[j], *b = &w->c->streams[i];
            if (!strcmp(a->name, b->name))
                err_at(w, w->src[i].name.value, 0,
                       "streams: duplicate stream name '%s' (first at line %zu)", b->name,
                       w->src[j].name.value.line + 1);
            else if (!memcmp(a->key_sha256, b->key_sha256, 32))
                err_at(w, w->src[i].key.value, 0,
                       "streams: stream '%s' has the same key as stream '%s' (line %zu)",
                       b->name, a->name, w->src[j].key.value.line + 1);
        }
    }
}

static void walk_streams(struct walk *w, int row, const yaml_node_t *kn, const yaml_node_t *list)
{
    yaml_node_item_t *it;
    size_t n;

    if (w->at[row].set) {
        err_at(w, kn->start_mark, 0, "duplicate key 'streams' (first set at line %zu)",
               w->at[row].key.line + 1);
        return;
    }
    w->at[row] = (struct where){true, kn->start_mark, list->start_mark};
    if (is_null_node(list))
        return;
    if (list->type != YAML_SEQUENCE_NODE) {
        err_at(w, list->start_mark, 0,
               "streams: expected a list of entries ('- name: ...' lines), got %s", kind(list));
        return;
    }
    n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n > CFG_STREAMS_MAX) {
        err_at(w, list->start_mark, 0, "streams: %zu entries, at most %d", n, CFG_STREAMS_MAX);
        return;
    }
    w->c->streams = calloc(n ? n : 1, sizeof(*w->c->streams));
    w->src = calloc(n ? n : 1, sizeof(*w->src));
    if (!w->c->streams || !w->src) {
        err_at(w, list->start_mark, 0, "out of memory");
        return;
    }
    for (it = list->data.sequence.items.start; it < list->data.sequence.items.top; it++) {
        yaml_node_t *item = yaml_document_get_node(w->doc, *it);
        size_t k = w->c->nstreams;

        if (walk_stream(w, item, &w->c->streams[k], &w->src[k]))
            w->c->nstreams++;
        else
            w->bad_stream = true;
    }
    check_unique(w);
}

static void walk_root(struct walk *w, const yaml_node_t *root)
{
    yaml_node_pair_t *p;

    if (is_null_node(root))
        return; /* a lone "---" */
    if (root->type != YAML_MAPPING_NODE) {
        err_at(w, root->start_mark, 0,
               "the top level must be a mapping of sections (rtmp, http, hls, log, process) "
               "and publish/streams, got %s",
               kind(root));
        return;
    }
    for (p = root->data.mapping.pairs.start; p < root->data.mapping.pairs.top; p++) {
        yaml_node_t *kn = yaml_document_get_node(w->doc, p->key);
        yaml_node_t *vn = yaml_document_get_node(w->doc, p->value);
        char name[64], hint[80];
        int s;

        if (key_name(w, kn, name, sizeof(name)) < 0)
            continue;
        if (!strchr(name, '.') && (s = find_key(name)) >= 0) {
            if (keys[s].type == CT_STREAMS)
                walk_streams(w, s, kn, vn);
            else
                walk_value(w, s, kn, vn);
            continue;
        }
        if ((s = find_section(name, strlen(name))) < 0) {
            if (find_key(name) >= 0) {
                err_at(w, kn->start_mark, 0,
                       "unknown section '%s' (write the key under its section: "
                       "'%.*s:' then '  %s:')",
                       name, (int)strcspn(name, "."), name, strchr(name, '.') + 1);
                continue;
            }
            suggest(name, false, hint, sizeof(hint));
            err_at(w, kn->start_mark, 0, "unknown section '%s'%s", name, hint);
            continue;
        }
        if (w->sec_at[s].set) {
            err_at(w, kn->start_mark, 0, "duplicate section '%s' (first at line %zu)", name,
                   w->sec_at[s].key.line + 1);
            continue;
        }
        w->sec_at[s] = (struct where){true, kn->start_mark, vn->start_mark};
        walk_section(w, name, vn);
    }
}

/* Rules between keys, checked once every key is read. */
static void check_consistency(struct walk *w)
{
    int pub = find_key("publish");

    if (!w->at[pub].set && w->c->nstreams > 0)
        snprintf(w->c->publish_name, sizeof(w->c->publish_name), "keys");
    derive(w->c);
    if (w->c->http_redirect_listen[0] && !w->c->http_tls_cert[0])
        err_at(w, w->at[find_key("http.redirect_listen")].key, 0,
               "http.redirect_listen redirects to HTTPS: it needs http.tls_cert and "
               "http.tls_key");
    if (w->c->rtmps_listen[0] && (!w->c->rtmps_cert[0] || !w->c->rtmps_key[0]))
        err_at(w, w->at[find_key("rtmps.listen")].key, 0,
               "rtmps.listen needs rtmps.cert and rtmps.key (PEM files)");
    else if (!w->c->rtmps_cert[0] != !w->c->rtmps_key[0])
        err_at(w, w->at[find_key(w->c->rtmps_cert[0] ? "rtmps.cert" : "rtmps.key")].key, 0,
               "rtmps.cert and rtmps.key go together: set both or neither");
    if (!w->c->http_tls_cert[0] != !w->c->http_tls_key[0])
        err_at(w, w->at[find_key(w->c->http_tls_cert[0] ? "http.tls_cert" : "http.tls_key")].key,
               0, "http.tls_cert and http.tls_key go together: set both or neither");
    for (size_t i = 0; i < w->c->nstreams; i++) {
        if (w->c->streams[i].signed_playback && strlen(w->c->http_signing_secret) < 16) {
            err_at(w, w->src[i].name.key, 0,
                   "streams: %s: playback: signed needs http.signing_secret (at least 16 "
                   "characters)",
                   w->c->streams[i].name);
            break;
        }
    }
    /* With entries that failed to parse, that is already reported. */
    if (w->at[pub].set && w->c->publish == CFG_PUBLISH_KEYS && w->c->nstreams == 0 &&
        !w->bad_stream)
        err_at(w, w->at[pub].value, 0,
               "publish: keys, but no streams are listed: nobody could publish (add "
               "'streams:' entries with a name and a key)");
}

/*
 * What the file names must exist: listen hosts resolve, files can be read.
 * (The pid file's directory is not checked: systemd creates /run/onair only
 * for the service, and a failed write stops start-up with its own message.)
 */
static void check_environment(struct walk *w)
{
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        const char *v = (const char *)w->c + k->offset;
        char host[CFG_STR_MAX];
        int port, fd;

        if (!w->at[i].set)
            continue;
        if (k->type == CT_LISTEN && cfg_split_listen(v, host, sizeof(host), &port) == 0 &&
            host[0]) {
            struct addrinfo *ai = NULL;
            const char *why = "";
            if (cfg_resolve_listen(host, port, &ai, &why) < 0)
                err_at(w, w->at[i].value, 0, "%s: cannot resolve '%s': %s", k->key, host, why);
            freeaddrinfo(ai);
        }
        if ((k->flags & CF_READABLE) && v[0]) {
            fd = open(v, O_RDONLY | O_CLOEXEC);
            if (fd < 0) {
                char shown[CFG_STR_MAX];
                int err = errno;
                size_t j;
                for (j = 0; v[j] && j + 1 < sizeof(shown); j++) /* one line per message */
                    shown[j] = (unsigned char)v[j] < 0x20 || v[j] == 0x7f ? '?' : v[j];
                shown[j] = '\0';
                err_at(w, w->at[i].value, 0, "%s: cannot read '%s': %s", k->key, shown,
                       strerror(err));
            } else {
                close(fd);
            }
        }
    }
}

/* Reports a libyaml error; reader errors carry only a byte offset into YAML. */
static int syntax_error(struct walk *w, yaml_parser_t *ps, const char *yaml, size_t len)
{
    yaml_mark_t m = ps->problem_mark;
    char ctx[128] = "";

    if (ps->error == YAML_MEMORY_ERROR) {
        errors_add(w->errs, "", "%s: out of memory", w->name);
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
    err_at(w, m, 0, "YAML syntax error: %s%s", ps->problem ? ps->problem : "unknown", ctx);
    return -EINVAL;
}

enum { CHECK_ENV = 1 };

static int parse(const char *name, const char *yaml, size_t len, unsigned opts, struct cfg **out,
                 struct cfg_errors *errs)
{
    struct walk w = {0};
    yaml_parser_t ps;
    yaml_document_t doc, extra;
    yaml_node_t *root;
    int r = -EINVAL;

    w.name = name;
    w.errs = errs;
    w.doc = &doc;
    w.c = cfg_alloc();
    if (!w.c) {
        errors_add(errs, "", "%s: out of memory", name);
        return -ENOMEM;
    }
    if (!yaml_parser_initialize(&ps)) {
        errors_add(errs, "", "%s: out of memory", name);
        r = -ENOMEM;
        goto fail_parser;
    }
    yaml_parser_set_input_string(&ps, (const unsigned char *)(yaml ? yaml : ""), yaml ? len : 0);
    if (!yaml_parser_load(&ps, &doc)) {
        r = syntax_error(&w, &ps, yaml, len);
        goto fail_load;
    }
    root = yaml_document_get_root_node(&doc);
    if (root) {
        walk_root(&w, root);
        /* A second document would be silently ignored; say so instead. */
        if (!yaml_parser_load(&ps, &extra)) {
            r = syntax_error(&w, &ps, yaml, len);
            goto fail_doc;
        }
        if (yaml_document_get_root_node(&extra))
            err_at(&w, yaml_document_get_root_node(&extra)->start_mark, 0,
                   "expected a single YAML document");
        yaml_document_delete(&extra);
    }
    check_consistency(&w);
    if (opts & CHECK_ENV)
        check_environment(&w);
    if (w.nerr == 0) {
        *out = w.c;
        w.c = NULL;
        r = 0;
    }
fail_doc:
    yaml_document_delete(&doc);
fail_load:
    yaml_parser_delete(&ps);
fail_parser:
    cfg_unref(w.c);
    free(w.src);
    return r;
}

int cfg_parse(const char *name, const char *yaml, size_t len, struct cfg **out,
              struct cfg_errors *errs)
{
    return parse(name, yaml, len, 0, out, errs);
}

int cfg_load(const char *path, struct cfg **out, struct cfg_errors *errs)
{
    FILE *f;
    char *data = NULL;
    size_t len = 0, cap = 0;
    int r;

    f = fopen(path, "rb");
    if (!f) {
        r = -errno;
        errors_add(errs, "", "%s: cannot open: %s", path, strerror(-r));
        return r;
    }
    for (;;) {
        size_t n;
        if (len == cap) {
            char *p;
            if (cap > CFG_FILE_MAX) {
                errors_add(errs, "", "%s: file is too large (more than %d bytes)", path,
                           CFG_FILE_MAX);
                r = -EFBIG;
                goto fail;
            }
            cap = cap ? cap * 2 : 4096;
            p = realloc(data, cap + 1);
            if (!p) {
                errors_add(errs, "", "%s: out of memory", path);
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
                errors_add(errs, "", "%s: cannot read: %s", path, strerror(-r));
                goto fail;
            }
            break;
        }
    }
    r = parse(path, data ? data : "", len, CHECK_ENV, out, errs);
fail:
    free(data);
    fclose(f);
    return r;
}

/* ---- reference and diff ------------------------------------------------------ */

/* C's value of row K as written in the file: "2s", "8MiB", ":8080" (streams: a count). */
static void format_value(const struct cfg_key *k, const struct cfg *c, char *out, size_t outlen)
{
    const void *field = (const char *)c + k->offset;

    switch (k->type) {
    case CT_STRING:
    case CT_LISTEN:
    case CT_ENUM:
        snprintf(out, outlen, "%s", (const char *)field);
        break;
    case CT_INT:
        snprintf(out, outlen, "%d", *(const int *)field);
        break;
    case CT_DURATION:
        format_duration(*(const double *)field, out, outlen);
        break;
    case CT_SIZE:
        format_size(k->flags & CF_INT64 ? (double)*(const int64_t *)field : *(const int *)field,
                    out, outlen);
        break;
    case CT_BOOL:
        snprintf(out, outlen, "%s", *(const bool *)field ? "true" : "false");
        break;
    case CT_STREAMS:
        snprintf(out, outlen, "%zu streams", c->nstreams);
        break;
    }
}

int cfg_reference_markdown(struct bytes *out)
{
    struct cfg def = {0};
    size_t i;
    int rc = 0;

    cfg_defaults(&def);
    rc |= bytes_printf(out, "| key | default | allowed | on reload (SIGHUP) | meaning |\n"
                            "|---|---|---|---|---|\n");
    for (i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        char value[CFG_STR_MAX], allowed[CFG_STR_MAX];

        format_value(k, &def, value, sizeof(value));
        if (k->type == CT_STREAMS)
            snprintf(value, sizeof(value), "none");
        switch (k->type) {
        case CT_ENUM:
            choice_list(k, allowed, sizeof(allowed));
            break;
        case CT_LISTEN:
            snprintf(allowed, sizeof(allowed), "`host:port`, `:port`, `[v6]:port`");
            break;
        case CT_INT:
        case CT_DURATION:
        case CT_SIZE:
            range_text(k, false, allowed, sizeof(allowed));
            break;
        case CT_BOOL:
            snprintf(allowed, sizeof(allowed), "true, false");
            break;
        default:
            allowed[0] = '\0';
            break;
        }
        rc |= bytes_printf(out, "| `%s` | %s%s%s | %s | %s | %s |\n", k->key,
                           value[0] && k->type != CT_STREAMS ? "`" : "",
                           value[0] ? value : "empty",
                           value[0] && k->type != CT_STREAMS ? "`" : "", allowed, k->reload,
                           k->doc);
    }
    return rc ? -ENOMEM : 0;
}

static void diff_streams(const struct cfg *old, const struct cfg *next, int *n,
                         void (*fn)(void *, const char *), void *arg)
{
    char line[CFG_NAME_MAX + 64];
    size_t i, j;

    for (i = 0; i < old->nstreams; i++) {
        for (j = 0; j < next->nstreams && strcmp(old->streams[i].name, next->streams[j].name); j++)
            ;
        if (j == next->nstreams)
            snprintf(line, sizeof(line), "stream %s removed", old->streams[i].name);
        else if (memcmp(old->streams[i].key_sha256, next->streams[j].key_sha256, 32))
            snprintf(line, sizeof(line), "stream %s key changed (%s -> %s)", old->streams[i].name,
                     old->streams[i].fingerprint, next->streams[j].fingerprint);
        else
            continue;
        fn(arg, line);
        (*n)++;
    }
    for (j = 0; j < next->nstreams; j++) {
        for (i = 0; i < old->nstreams && strcmp(old->streams[i].name, next->streams[j].name); i++)
            ;
        if (i < old->nstreams)
            continue;
        snprintf(line, sizeof(line), "stream %s added (key %s)", next->streams[j].name,
                 next->streams[j].fingerprint);
        fn(arg, line);
        (*n)++;
    }
}

int cfg_diff(const struct cfg *old, const struct cfg *next, void (*fn)(void *arg, const char *line),
             void *arg)
{
    int n = 0;
    size_t i;

    for (i = 0; i < NKEYS; i++) {
        const struct cfg_key *k = &keys[i];
        char a[CFG_STR_MAX], b[CFG_STR_MAX], line[2 * CFG_STR_MAX + 64];

        if (k->type == CT_STREAMS) {
            diff_streams(old, next, &n, fn, arg);
            continue;
        }
        format_value(k, old, a, sizeof(a));
        format_value(k, next, b, sizeof(b));
        if (!strcmp(a, b))
            continue;
        if (k->flags & CF_SECRET)
            snprintf(line, sizeof(line), "%s changed", k->key);
        else
            snprintf(line, sizeof(line), "%s %s -> %s", k->key, a[0] ? a : "\"\"",
                     b[0] ? b : "\"\"");
        fn(arg, line);
        n++;
    }
    return n;
}
