/*
 * config — the YAML configuration, parsed into one plain struct from one
 * declarative table (config/config.c: key, type, offset, default, min, max,
 * help). Defaults live in that table only; the README's reference and the
 * example file are checked against it by the unit test.
 *
 * A loaded config is an immutable, refcounted snapshot. The running server
 * publishes the current one through a struct cfg_live; a reload builds a new
 * snapshot and swaps it in whole, so a reader never sees half a config.
 */
#ifndef ONAIR_CONFIG_H
#define ONAIR_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

#define CFG_STR_MAX 256
#define CFG_NAME_MAX 65 /* public stream name: up to 64 bytes + NUL */
#define CFG_STREAMS_MAX 1000
#define CFG_FINGERPRINT_LEN 8 /* hex digits of a key's fingerprint in log lines */

enum cfg_publish { CFG_PUBLISH_OPEN, CFG_PUBLISH_KEYS };

enum cfg_record { CFG_RECORD_DEFAULT = 0, CFG_RECORD_ON, CFG_RECORD_OFF };

/* One entry of `streams:`. Only the key's SHA-256 is kept, never the key. */
struct cfg_stream {
    char name[CFG_NAME_MAX];                  /* public: /live/NAME/ */
    uint8_t key_sha256[32];                   /* SHA-256 of the stream key */
    char fingerprint[CFG_FINGERPRINT_LEN + 1]; /* short, loggable, see cfg_key_fingerprint */
    bool signed_playback;                     /* playback: signed (links need exp/sig) */
    enum cfg_record record;                   /* record: true/false, else record.enabled */
};

struct cfg {
    atomic_int refs; /* snapshots from cfg_new/cfg_load/cfg_parse; 0 for embedded structs */
    /* top level: */
    enum cfg_publish publish;        /* open: any name publishes; keys: only listed streams */
    char publish_name[CFG_STR_MAX];  /* "open" / "keys", as written */
    struct cfg_stream *streams;      /* owned; nstreams entries */
    size_t nstreams;
    /* rtmp: */
    char rtmp_listen[CFG_STR_MAX];   /* "host:port", ":port" = all interfaces */
    char rtmp_app[CFG_STR_MAX];      /* application name publishers use ("live") */
    int rtmp_chunk_size;             /* our outgoing chunk size */
    int rtmp_max_message_bytes;      /* largest message a client may announce */
    int rtmp_max_connections;
    int rtmp_max_unauthenticated;    /* connections not publishing yet */
    double rtmp_setup_timeout_s;     /* handshake + connect + publish deadline */
    double rtmp_idle_timeout_s;      /* a publisher sending no media is dropped */
    int rtmp_max_buffer_bytes;       /* partial messages, per connection */
    int rtmp_max_total_buffer_bytes; /* partial messages, all connections */
    /* http: */
    char rtmps_listen[CFG_STR_MAX];  /* RTMP over TLS; "" = off */
    char rtmps_cert[CFG_STR_MAX];    /* PEM certificate chain for rtmps_listen */
    char rtmps_key[CFG_STR_MAX];     /* PEM private key of rtmps_cert */
    char http_listen[CFG_STR_MAX];
    int http_threads;
    int http_max_connections;        /* 0 = sized from the open-file limit */
    int http_max_connections_per_ip; /* 0 = no limit */
    double http_request_timeout_s;   /* deadline for a complete request head */
    double http_idle_timeout_s;      /* no progress at all */
    int http_max_request_bytes;      /* libmicrohttpd memory pool per connection */
    char http_cors_origin[CFG_STR_MAX]; /* Access-Control-Allow-Origin; "" = none */
    int http_playlist_max_age;       /* seconds, Cache-Control of live playlists */
    char http_tls_cert[CFG_STR_MAX];  /* PEM certificate chain: HTTPS; "" = plain HTTP */
    char http_tls_key[CFG_STR_MAX];   /* PEM private key of http_tls_cert */
    char http_redirect_listen[CFG_STR_MAX]; /* plain HTTP that redirects to HTTPS; "" = none */
    char http_hsts[CFG_STR_MAX];      /* Strict-Transport-Security on HTTPS; "" = none */
    char http_signing_secret[CFG_STR_MAX]; /* HMAC key of signed playback links; "" = none */
    char http_player_js[CFG_STR_MAX]; /* path of hls.min.js served at /static/hls.min.js;
                                         "" = search the usual install places */
    /* hls: */
    double hls_segment_seconds;      /* target; cut on keyframes */
    double hls_part_seconds;         /* LL-HLS part target; 0 = LL-HLS off */
    int hls_window_segments;         /* live playlist length */
    double hls_reconnect_grace_seconds; /* a stream stays live this long without a publisher */
    int hls_max_segment_bytes;       /* a segment is cut when it reaches this size */
    /* hooks: */
    char hooks_on_publish[CFG_STR_MAX]; /* http(s) URL asked before a publish; "" = off */
    char hooks_on_live[CFG_STR_MAX];    /* told when a stream goes live; "" = off */
    char hooks_on_end[CFG_STR_MAX];     /* told when a stream ends; "" = off */
    double hooks_timeout;               /* seconds, per request */
    char hooks_on_failure[CFG_STR_MAX]; /* "refuse" / "allow": on_publish down or slow */
    /* record: */
    bool record_enabled;             /* record every stream unless its entry says no */
    char record_path[CFG_STR_MAX];   /* PATH/NAME/ID/ per publish */
    int64_t record_max_bytes;        /* all recordings together; 0 = no limit */
    double record_max_age_s;         /* seconds; 0 = kept */
    /* log: */
    char log_level[CFG_STR_MAX];     /* error, warn, info, debug */
    char log_format[CFG_STR_MAX];    /* text, json */
    char log_http_access[CFG_STR_MAX]; /* off, on: an info line per public HTTP request */
    /* admin: */
    char admin_listen[CFG_STR_MAX];  /* admin API + /metrics; "" = off */
    char admin_token[CFG_STR_MAX];   /* bearer token; "" = none */
    /* thumbnails: */
    double thumbnails_interval;      /* seconds between refreshes of one stream */
    /* process: */
    char process_pid_file[CFG_STR_MAX]; /* written at start, read by `onair --reload` */
};

/* ---- errors --------------------------------------------------------------- */

/* Every error of one load: "FILE:LINE:COL: message" lines, each ending in '\n'. */
struct cfg_errors {
    struct bytes text; /* NUL-terminated when count > 0 */
    int count;
};

/* Frees the messages and zeroes E. */
void cfg_errors_reset(struct cfg_errors *e);

/* The messages as one string ("" when none); borrowed until the next reset. */
const char *cfg_errors_str(const struct cfg_errors *e);

/* ---- snapshots ---------------------------------------------------------- */

/* Fills C with the built-in defaults (no streams; C->refs untouched). */
void cfg_defaults(struct cfg *c);

/* Returns a new snapshot holding the defaults (one reference), or NULL on OOM. */
struct cfg *cfg_new(void);

/*
 * Takes one more reference on a snapshot; returns C. A struct with refs 0 (filled
 * by cfg_defaults, kept alive by its owner) is not counted: ref and unref do nothing.
 */
const struct cfg *cfg_ref(const struct cfg *c);
/* Drops one reference; frees the snapshot at zero. Accepts NULL. */
void cfg_unref(const struct cfg *c);

/*
 * Parses the YAML file PATH over the defaults. Besides the document itself it
 * checks what the file names: listen hosts resolve, http.player_js is
 * readable. Returns 0 and a new snapshot
 * in *OUT, or a negative errno with every error appended to ERRS (may be NULL)
 * and *OUT untouched.
 */
int cfg_load(const char *path, struct cfg **out, struct cfg_errors *errs);

/*
 * Same as cfg_load for an in-memory document, without looking at the system
 * (no name resolution, no file access); NAME is used in messages.
 */
int cfg_parse(const char *name, const char *yaml, size_t len, struct cfg **out,
              struct cfg_errors *errs);

/*
 * Appends the README's configuration reference (a Markdown table, one row per
 * key, from the table in config.c) to OUT. Returns 0 or -ENOMEM.
 */
int cfg_reference_markdown(struct bytes *out);

/* ---- changes between two snapshots --------------------------------------- */

/*
 * Calls FN(ARG, line) once per difference from OLD to NEW, as a human line:
 * "http.listen 127.0.0.1:8080 -> :8080", "stream townhall added",
 * "stream townhall key changed". Keys are never shown. Returns the count.
 */
int cfg_diff(const struct cfg *old, const struct cfg *next, void (*fn)(void *arg, const char *line),
             void *arg);

/* ---- stream keys ----------------------------------------------------------- */

/*
 * Looks up the stream whose key is KEY (LEN bytes), comparing SHA-256 digests
 * in constant time against every listed stream. Returns the entry (borrowed
 * from C) or NULL.
 */
const struct cfg_stream *cfg_find_key(const struct cfg *c, const char *key, size_t len);

/* The listed stream NAME, or NULL (borrowed from C). */
const struct cfg_stream *cfg_find_stream(const struct cfg *c, const char *name);

/* Writes the short loggable fingerprint of KEY into OUT (CFG_FINGERPRINT_LEN + 1 bytes). */
void cfg_key_fingerprint(const char *key, size_t len, char out[CFG_FINGERPRINT_LEN + 1]);

/* ---- the live config -------------------------------------------------------- */

/* The current snapshot of a running server, swapped whole on reload. */
struct cfg_live;

/* Returns a holder of INITIAL (takes ownership of that reference), or NULL on OOM. */
struct cfg_live *cfg_live_new(const struct cfg *initial);
/* Drops the current snapshot and frees L. Accepts NULL. */
void cfg_live_free(struct cfg_live *l);
/* Returns a new reference to the current snapshot (any thread; caller unrefs). */
const struct cfg *cfg_live_get(struct cfg_live *l);
/* Makes NEXT current (takes ownership of that reference); drops the old one. */
void cfg_live_set(struct cfg_live *l, const struct cfg *next);

/* ---- listen addresses ----------------------------------------------------- */

/*
 * Splits "host:port" / ":port" / "[v6]:port" into HOST (empty = any) and PORT.
 * Returns 0 or -EINVAL.
 */
int cfg_split_listen(const char *listen, char *host, size_t hostlen, int *port);

struct addrinfo;

/*
 * Resolves a listen HOST (numeric or a name; not empty) and PORT into passive
 * TCP addresses. Returns 0 and a list in *OUT (caller frees with
 * freeaddrinfo), or -EINVAL with the resolver's reason in *WHY.
 */
int cfg_resolve_listen(const char *host, int port, struct addrinfo **out, const char **why);

/* Whether stream NAME is recorded under C: its entry's `record`, else record.enabled. */
bool cfg_records(const struct cfg *c, const char *name);

/* Log level for a log.level value ("error", "warn", "info", "debug"). */
enum log_level cfg_log_level(const struct cfg *c);

#endif
