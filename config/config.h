/*
 * config — the YAML configuration, parsed into one plain struct from one
 * declarative table (config/config.c: key, type, offset, default, min, max).
 * Defaults live in that table only. Modules get a const view; a reload builds a
 * new struct and swaps it in whole.
 */
#ifndef ONAIR_CONFIG_H
#define ONAIR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define CFG_STR_MAX 256

struct cfg {
    /* rtmp: */
    char rtmp_listen[CFG_STR_MAX];   /* "host:port", ":port" = all interfaces */
    char rtmp_app[CFG_STR_MAX];      /* application name publishers use ("live") */
    int rtmp_chunk_size;             /* our outgoing chunk size */
    int rtmp_max_message_bytes;      /* largest message a client may announce */
    int rtmp_max_connections;
    /* http: */
    char http_listen[CFG_STR_MAX];
    int http_threads;
    int http_max_connections;        /* 0 = sized from the open-file limit */
    char http_cors_origin[CFG_STR_MAX]; /* Access-Control-Allow-Origin; "" = none */
    int http_playlist_max_age;       /* seconds, Cache-Control of live playlists */
    char http_player_js[CFG_STR_MAX]; /* path of hls.min.js served at /static/hls.min.js;
                                         "" = search the usual install places */
    /* hls: */
    double hls_segment_seconds;      /* target; cut on keyframes */
    int hls_window_segments;         /* live playlist length */
    double hls_part_seconds;         /* LL-HLS part target; 0 = off */
    /* log: */
    char log_level[CFG_STR_MAX];     /* error, warn, info, debug */
};

/* Fills C with the built-in defaults. */
void cfg_defaults(struct cfg *c);

/*
 * Parses the YAML file PATH over the defaults into C. On error returns a
 * negative errno and writes "PATH:LINE:COL: message" into ERR (ERRLEN bytes).
 */
int cfg_load(const char *path, struct cfg *c, char *err, size_t errlen);

/* Same as cfg_load for an in-memory document; NAME is used in messages. */
int cfg_parse(const char *name, const char *yaml, size_t len, struct cfg *c, char *err,
              size_t errlen);

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

#endif
