/*
 * metrics internals shared by registry.c and prom.c.
 */
#ifndef ONAIR_METRICS_INTERNAL_H
#define ONAIR_METRICS_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>

#include "metrics.h"

#define MX_HIST_MAX_BUCKETS 16

/* A Prometheus histogram over microseconds; bounds in microseconds, ascending. */
struct mx_hist {
    const int64_t *bounds_us;
    int nbounds;
    atomic_uint_fast64_t buckets[MX_HIST_MAX_BUCKETS + 1]; /* last: +Inf */
    atomic_uint_fast64_t count;
    atomic_uint_fast64_t sum_us;
};

void mx_hist_observe(struct mx_hist *h, int64_t us);

enum mx_hist_id { MX_H_PART, MX_H_SEGMENT, MX_H_HTTP, MX_HIST_COUNT };
struct mx_hist *mx_hist_get(enum mx_hist_id id);

uint64_t mx_reject_value(enum mx_reject why);
const char *mx_reject_name(enum mx_reject why);

struct mx_viewer {
    atomic_uint_fast64_t key; /* address hash | 1; 0 = free */
    atomic_int_fast64_t seen_ms;
};

struct mx_stream {
    char name[MX_NAME_MAX];
    uint32_t hash;
    /* hot counters: any thread */
    atomic_uint_fast64_t bytes_in, bytes_out, publishes;
    atomic_uint_fast64_t segments, parts, msn;
    atomic_bool live;         /* the playlist is live: a publisher, or its reconnect grace */
    atomic_bool publishing;   /* a publisher is attached */
    struct mx_viewer viewers[MX_VIEWER_SLOTS];
    /* the publisher's own (RTMP loop) */
    struct mx_ingest ing;
    int64_t next_snapshot_ms;
    /* the snapshot readers copy, under LOCK */
    pthread_mutex_t lock;
    struct mx_stream_info info;
};

#endif
