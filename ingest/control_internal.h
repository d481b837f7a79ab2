/*
 * Calls into the RTMP loop from other threads (rtmp_control.c).
 */
#ifndef ONAIR_CONTROL_INTERNAL_H
#define ONAIR_CONTROL_INTERNAL_H

#include <stdbool.h>

#define RTMP_CONTROL_NAME_MAX 128

struct event_base;
struct rtmp_control;

/* Runs on the loop thread for one request; returns 0 or a negative errno. */
typedef int (*rtmp_control_fn)(void *arg, const char *name);

/* A channel into BASE's loop that runs FN(ARG, name). Returns 0 or a negative errno. */
int rtmp_control_new(struct event_base *base, rtmp_control_fn fn, void *arg,
                     struct rtmp_control **out);

/* Closes the channel (loop thread); pending callers get -ESHUTDOWN. Accepts NULL. */
void rtmp_control_free(struct rtmp_control *c);

/*
 * Any thread but the loop's: runs FN(NAME) on the loop and waits up to
 * TIMEOUT_MS for its answer. Returns FN's result or -ETIMEDOUT / -ENOMEM.
 */
int rtmp_control_call(struct rtmp_control *c, const char *name, int timeout_ms);

#endif
