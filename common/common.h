/*
 * common — logging, refcounted immutable buffers and small helpers shared by
 * every module. This is the only header other modules include from common/.
 */
#ifndef ONAIR_COMMON_H
#define ONAIR_COMMON_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ONAIR_VERSION "0.1.0"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* ---- logging ------------------------------------------------------------ */

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Sets the most verbose level that is printed (default LOG_INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/*
 * Prints one line to stderr: "LEVEL module: message". The module names the
 * object too, e.g. log_msg(LOG_WARN, "rtmp[12] live/show", "...").
 */
void log_msg(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log.format json: one JSON object per line (ts, level, module, stream, msg, fields). */
void log_set_json(bool on);
/* log_json.c: writes one JSON line (what log_msg does when JSON is on). */
void log_json_v(enum log_level level, const char *module, const char *fmt, va_list ap);

#define log_error(mod, ...) log_msg(LOG_ERROR, mod, __VA_ARGS__)
#define log_warn(mod, ...) log_msg(LOG_WARN, mod, __VA_ARGS__)
#define log_info(mod, ...) log_msg(LOG_INFO, mod, __VA_ARGS__)
#define log_debug(mod, ...)                                                                      \
    do {                                                                                         \
        if (log_get_level() >= LOG_DEBUG)                                                        \
            log_msg(LOG_DEBUG, mod, __VA_ARGS__);                                                \
    } while (0)

/*
 * For lines a client can cause at will (connects, protocol errors, limits
 * reached): per call site (its format string), at most LOG_LIMIT_BURST lines
 * per LOG_LIMIT_INTERVAL_MS are printed; the rest are counted and reported as
 * one "N similar lines suppressed" line once the interval is over.
 */
#define LOG_LIMIT_BURST 5
#define LOG_LIMIT_INTERVAL_MS 10000
void log_msg_limited(enum log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* The same with an explicit call site SITE (e.g. a library's own format string). */
void log_msg_limited_site(const char *site, enum log_level level, const char *module,
                          const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#define log_warn_rl(mod, ...) log_msg_limited(LOG_WARN, mod, __VA_ARGS__)
#define log_info_rl(mod, ...) log_msg_limited(LOG_INFO, mod, __VA_ARGS__)

/* Prints the suppression counts of intervals that are over; call about once a second. */
void log_limited_flush(void);

/* ---- refcounted immutable buffers --------------------------------------- */

/*
 * A buffer of bytes shared between the thread that produced it and the HTTP
 * threads that serve it. Filled once by its creator, then never written again.
 * The count starts at 1 (owned by the creator); underflow asserts.
 */
struct buf {
    atomic_int refs;
    size_t len;
    uint8_t *data; /* points into the same allocation */
};

/* Returns a new buffer of LEN bytes (uninitialised), or NULL on OOM. */
struct buf *buf_new(size_t len);
/* Returns a new buffer holding a copy of LEN bytes at DATA, or NULL on OOM. */
struct buf *buf_new_copy(const void *data, size_t len);
/* Takes one more reference; returns B. */
struct buf *buf_ref(struct buf *b);
/* Drops one reference; frees at zero. Accepts NULL. */
void buf_unref(struct buf *b);

/* ---- growable byte vector (single owner, not shared) --------------------- */

struct bytes {
    uint8_t *data;
    size_t len, cap;
};

/* Appends LEN bytes; returns 0 or -ENOMEM. */
int bytes_append(struct bytes *v, const void *data, size_t len);
/* Appends a printf-formatted string (no NUL kept); returns 0 or -ENOMEM. */
int bytes_printf(struct bytes *v, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Frees the storage and zeroes V. */
void bytes_reset(struct bytes *v);

/* ---- names --------------------------------------------------------------- */

#define STREAM_NAME_MAX_LEN 64

/*
 * The public stream name rule, the one definition: [A-Za-z0-9_.-]{1,64}, not
 * starting with '.' (so never "." or "..").
 */
bool stream_name_valid(const char *name);

/* The value of the hexadecimal digit C (either case), or -1. */
int hex_digit(char c);
/* Decodes N hex digits at HEX into N/2 bytes at OUT; false if N is odd or a digit is not hex. */
bool hex_decode(const char *hex, size_t n, uint8_t *out);

/* ---- time ---------------------------------------------------------------- */

/* Monotonic clock in milliseconds. */
int64_t time_mono_ms(void);
/* Wall clock in milliseconds since the Unix epoch. */
int64_t time_wall_ms(void);
/* Formats MS (Unix epoch ms) as ISO 8601 UTC with milliseconds into OUT (>= 32 bytes). */
void time_iso8601(int64_t ms, char *out, size_t outlen);

#endif
