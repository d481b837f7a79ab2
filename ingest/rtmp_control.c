/*
 * Requests from other threads to the RTMP loop (today: kick a publisher).
 * The loop owns every connection, so another thread never touches one: it
 * writes a pointer to its request into a pipe, the loop's read event runs the
 * request and signals the answer; the caller waits on a condition variable,
 * never the loop.
 *
 *   admin thread ── write(req*) ──▶ pipe ──▶ loop: fn(name) ── cond ──▶ admin thread
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "control_internal.h"

struct req {
    atomic_int refs; /* the caller's and the pipe's */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool done;
    int result;
    char name[RTMP_CONTROL_NAME_MAX];
};

struct rtmp_control {
    int fd[2];
    struct event *ev;
    rtmp_control_fn fn;
    void *arg;
};

static void req_unref(struct req *r)
{
    if (atomic_fetch_sub(&r->refs, 1) == 1) {
        pthread_cond_destroy(&r->cond);
        pthread_mutex_destroy(&r->lock);
        free(r);
    }
}

static void req_finish(struct req *r, int result)
{
    pthread_mutex_lock(&r->lock);
    r->result = result;
    r->done = true;
    pthread_cond_signal(&r->cond);
    pthread_mutex_unlock(&r->lock);
    req_unref(r);
}

/* The loop side: runs every request waiting in the pipe. */
static void on_readable(evutil_socket_t fd, short what, void *arg)
{
    struct rtmp_control *c = arg;
    struct req *r;

    (void)what;
    while (read(fd, &r, sizeof(r)) == (ssize_t)sizeof(r))
        req_finish(r, c->fn(c->arg, r->name));
}

int rtmp_control_new(struct event_base *base, rtmp_control_fn fn, void *arg,
                     struct rtmp_control **out)
{
    struct rtmp_control *c = calloc(1, sizeof(*c));
    int rc;

    *out = NULL;
    if (!c)
        return -ENOMEM;
    c->fn = fn;
    c->arg = arg;
    if (pipe2(c->fd, O_CLOEXEC) < 0) {
        rc = -errno;
        free(c);
        return rc;
    }
    fcntl(c->fd[0], F_SETFL, O_NONBLOCK);
    c->ev = event_new(base, c->fd[0], EV_READ | EV_PERSIST, on_readable, c);
    if (!c->ev || event_add(c->ev, NULL) < 0) {
        rtmp_control_free(c);
        return -ENOMEM;
    }
    *out = c;
    return 0;
}

void rtmp_control_free(struct rtmp_control *c)
{
    struct req *r;

    if (!c)
        return;
    if (c->ev)
        event_free(c->ev);
    /* requests nobody ran: their callers get -ESHUTDOWN */
    while (read(c->fd[0], &r, sizeof(r)) == (ssize_t)sizeof(r))
        req_finish(r, -ESHUTDOWN);
    close(c->fd[0]);
    close(c->fd[1]);
    free(c);
}

int rtmp_control_call(struct rtmp_control *c, const char *name, int timeout_ms)
{
    struct req *r;
    struct timespec deadline;
    int rc;

    if (!c)
        return -ESHUTDOWN;
    if (strlen(name) >= RTMP_CONTROL_NAME_MAX)
        return -ENOENT;
    r = calloc(1, sizeof(*r));
    if (!r)
        return -ENOMEM;
    atomic_init(&r->refs, 2);
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    memcpy(r->name, name, strlen(name) + 1);
    /* a pointer is far below PIPE_BUF: the write is atomic */
    if (write(c->fd[1], &r, sizeof(r)) != (ssize_t)sizeof(r)) {
        atomic_store(&r->refs, 1);
        req_unref(r);
        return -EIO;
    }
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&r->lock);
    while (!r->done)
        if (pthread_cond_timedwait(&r->cond, &r->lock, &deadline) == ETIMEDOUT)
            break;
    rc = r->done ? r->result : -ETIMEDOUT;
    pthread_mutex_unlock(&r->lock);
    req_unref(r);
    return rc;
}
