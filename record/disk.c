/*
 * Recording directories: create, write, replace atomically, list, recover
 * after a crash, delete for retention. Paths below record.path are opened
 * one component at a time with O_NOFOLLOW (see record_disk.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "../common/common.h"
#include "record.h"
#include "record_disk.h"
#include "record_internal.h"

#define PLAYLIST_MAX_BYTES (16u << 20)
#define MAX_ID_TRIES 100

#define DIR_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)

/* mkdir -p of ROOT itself (an admin's path: links in it are the admin's choice). */
static int mkdir_root(const char *root)
{
    char path[4096];
    size_t n = strlen(root);

    if (n == 0 || n >= sizeof(path))
        return -EINVAL;
    memcpy(path, root, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (path[i] != '/' && path[i] != '\0')
            continue;
        path[i] = '\0';
        if (mkdir(path, 0755) < 0 && errno != EEXIST)
            return -errno;
        path[i] = i < n ? '/' : '\0';
    }
    return 0;
}

int rec_disk_open_dir(const char *root, const char *name, const char *id)
{
    int rfd, nfd, fd;

    rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -errno;
    nfd = openat(rfd, name, DIR_FLAGS);
    fd = nfd < 0 ? -errno : nfd;
    close(rfd);
    if (nfd < 0 || !id)
        return fd;
    fd = openat(nfd, id, DIR_FLAGS);
    if (fd < 0)
        fd = -errno;
    close(nfd);
    return fd;
}

int rec_open_dir(const char *root, const char *name, const char *id)
{
    return rec_disk_open_dir(root, name, id);
}

int rec_disk_create(const char *root, const char *name, int64_t start_ms, char *id, size_t idlen,
                    int *dirfd)
{
    char base[32];
    time_t t = (time_t)(start_ms / 1000);
    struct tm tm;
    int rfd = -1, nfd = -1, fd = -1, err;

    gmtime_r(&t, &tm);
    strftime(base, sizeof(base), "%Y%m%d-%H%M%S", &tm);
    if ((err = mkdir_root(root)) < 0)
        return err;
    rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (rfd < 0)
        return -errno;
    if (mkdirat(rfd, name, 0755) < 0 && errno != EEXIST) {
        err = -errno;
        goto out;
    }
    nfd = openat(rfd, name, DIR_FLAGS);
    if (nfd < 0) {
        err = -errno;
        goto out;
    }
    err = -EEXIST;
    for (int i = 1; i <= MAX_ID_TRIES && err == -EEXIST; i++) {
        if (i == 1)
            snprintf(id, idlen, "%s", base);
        else
            snprintf(id, idlen, "%s-%d", base, i);
        err = mkdirat(nfd, id, 0755) < 0 ? -errno : 0;
    }
    if (err < 0)
        goto out;
    fd = openat(nfd, id, DIR_FLAGS);
    err = fd < 0 ? -errno : 0;
    *dirfd = fd;
out:
    if (nfd >= 0)
        close(nfd);
    close(rfd);
    return err;
}

static int write_all(int fd, struct iovec *iov, int n)
{
    while (n > 0) {
        ssize_t w = writev(fd, iov, n > IOV_MAX ? IOV_MAX : n);

        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -errno;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    return 0;
}

static int write_file(int dirfd, const char *name, struct iovec *iov, int n, bool full_sync)
{
    int fd = openat(dirfd, name, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
    int err;

    if (fd < 0)
        return -errno;
    err = write_all(fd, iov, n);
    if (err == 0 && (full_sync ? fsync(fd) : fdatasync(fd)) < 0)
        err = -errno;
    if (close(fd) < 0 && err == 0)
        err = -errno;
    if (err < 0)
        unlinkat(dirfd, name, 0); /* a short file must not be mistaken for a segment */
    return err;
}

int rec_disk_write(int dirfd, const char *name, struct buf *const *bufs, int nbufs)
{
    struct iovec *iov = calloc((size_t)nbufs, sizeof(*iov));
    int err;

    if (!iov)
        return -ENOMEM;
    for (int i = 0; i < nbufs; i++) {
        iov[i].iov_base = bufs[i]->data;
        iov[i].iov_len = bufs[i]->len;
    }
    err = write_file(dirfd, name, iov, nbufs, false);
    free(iov);
    return err;
}

int rec_disk_replace(int dirfd, const char *name, const void *data, size_t len)
{
    char tmp[128];
    struct iovec iov = {(void *)data, len};
    int err;

    snprintf(tmp, sizeof(tmp), ".%s.tmp", name);
    err = write_file(dirfd, tmp, &iov, 1, true);
    if (err == 0 && renameat(dirfd, tmp, dirfd, name) < 0) {
        err = -errno;
        unlinkat(dirfd, tmp, 0);
    }
    return err;
}

/* Deletes the files of directory FD (not descending; links are removed, not followed). */
static void empty_dir(int fd)
{
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *e;

    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
            unlinkat(fd, e->d_name, 0);
    closedir(d);
}

int rec_disk_remove(const char *root, const char *name, const char *id)
{
    int nfd = rec_disk_open_dir(root, name, NULL), fd, err = 0;

    if (nfd < 0)
        return nfd;
    fd = openat(nfd, id, DIR_FLAGS);
    if (fd < 0) {
        err = -errno;
    } else {
        empty_dir(fd);
        close(fd);
        if (unlinkat(nfd, id, AT_REMOVEDIR) < 0)
            err = -errno;
    }
    close(nfd);
    return err;
}

/* Reads file NAME of DIRFD (at most PLAYLIST_MAX_BYTES) into OUT. Returns 0 or -errno. */
static int read_small(int dirfd, const char *name, struct bytes *out, struct stat *sb)
{
    char chunk[16384];
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    int err = 0;

    if (fd < 0)
        return -errno;
    if (fstat(fd, sb) < 0 || !S_ISREG(sb->st_mode) || sb->st_size > PLAYLIST_MAX_BYTES) {
        close(fd);
        return -EINVAL;
    }
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = -errno;
            break;
        }
        if (n == 0 || out->len + (size_t)n > PLAYLIST_MAX_BYTES)
            break;
        if (bytes_append(out, chunk, (size_t)n) < 0) {
            err = -ENOMEM;
            break;
        }
    }
    close(fd);
    return err;
}

/* Size of every regular file in FD; sets *HAS_MP4 if replay.mp4 is one of them. */
static int64_t dir_bytes(int fd, bool *has_mp4)
{
    int dfd = dup(fd);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    struct dirent *e;
    int64_t total = 0;

    *has_mp4 = false;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return 0;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat sb;

        if (e->d_name[0] == '.' || fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0 ||
            !S_ISREG(sb.st_mode))
            continue;
        total += sb.st_size;
        if (!strcmp(e->d_name, "replay.mp4"))
            *has_mp4 = true;
    }
    closedir(d);
    return total;
}

/* Fills INFO for recording directory FD; returns 0, or -ENOENT if it has no playlist yet. */
static int read_info(int fd, const char *id, struct rec_info *info)
{
    struct bytes text = {0};
    struct rec_summary sum;
    struct stat sb;
    int err;

    memset(info, 0, sizeof(*info));
    snprintf(info->id, sizeof(info->id), "%s", id);
    err = read_small(fd, "index.m3u8", &text, &sb);
    if (err == 0 && rec_summarize_playlist((const char *)text.data, text.len, &sum) < 0)
        err = -EINVAL;
    bytes_reset(&text);
    if (err < 0)
        return err;
    info->ended_ms = (int64_t)sb.st_mtim.tv_sec * 1000 + sb.st_mtim.tv_nsec / 1000000;
    info->duration = sum.duration;
    info->segments = sum.segments;
    info->finished = sum.ended;
    info->bytes = dir_bytes(fd, &info->has_mp4);
    return 0;
}

static bool id_ok(const char *s)
{
    return strlen(s) < REC_ID_MAX && stream_name_valid(s);
}

static int cmp_newest_first(const void *a, const void *b)
{
    return strcmp(((const struct rec_info *)b)->id, ((const struct rec_info *)a)->id);
}

int rec_list(const char *root, const char *name, struct rec_info **out)
{
    int nfd, dfd, n = 0, cap = 0;
    struct rec_info *v = NULL;
    struct dirent *e;
    DIR *d;

    *out = NULL;
    if (!stream_name_valid(name))
        return -EINVAL;
    nfd = rec_disk_open_dir(root, name, NULL);
    if (nfd < 0)
        return nfd;
    dfd = dup(nfd);
    d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        close(nfd);
        return -ENOMEM;
    }
    while ((e = readdir(d)) != NULL) {
        struct rec_info info;
        int fd;

        if (!id_ok(e->d_name))
            continue;
        fd = openat(nfd, e->d_name, DIR_FLAGS);
        if (fd < 0)
            continue;
        if (read_info(fd, e->d_name, &info) == 0) {
            if (n == cap) {
                int c = cap ? cap * 2 : 16;
                struct rec_info *p = realloc(v, (size_t)c * sizeof(*p));

                if (!p) {
                    close(fd);
                    break;
                }
                v = p;
                cap = c;
            }
            v[n++] = info;
        }
        close(fd);
    }
    closedir(d);
    close(nfd);
    if (n > 1)
        qsort(v, (size_t)n, sizeof(*v), cmp_newest_first);
    *out = v;
    return n;
}

static int cmp_id_desc(const void *a, const void *b)
{
    return strcmp(*(char *const *)b, *(char *const *)a);
}

/* Whether playlist NAME in FD ends with EXT-X-ENDLIST (its last bytes only). */
static bool ends_with_endlist(int fd)
{
    static const char tag[] = "#EXT-X-ENDLIST\n";
    char tail[sizeof(tag) - 1];
    int pfd = openat(fd, "index.m3u8", O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    bool ok = false;

    if (pfd < 0)
        return false;
    if (fstat(pfd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size >= (off_t)sizeof(tail) &&
        pread(pfd, tail, sizeof(tail), sb.st_size - (off_t)sizeof(tail)) == (ssize_t)sizeof(tail))
        ok = memcmp(tail, tag, sizeof(tail)) == 0;
    close(pfd);
    return ok;
}

int rec_latest(const char *root, const char *name, bool mp4, char id[REC_ID_MAX])
{
    int nfd, dfd, n = 0, cap = 0, err = -ENOENT;
    char **ids = NULL;
    struct dirent *e;
    DIR *d;

    if (!stream_name_valid(name))
        return -EINVAL;
    nfd = rec_disk_open_dir(root, name, NULL);
    if (nfd < 0)
        return nfd;
    dfd = dup(nfd);
    d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        close(nfd);
        return -ENOMEM;
    }
    while ((e = readdir(d)) != NULL) {
        if (!id_ok(e->d_name))
            continue;
        if (n == cap) {
            int c = cap ? cap * 2 : 32;
            char **p = realloc(ids, (size_t)c * sizeof(*p));

            if (!p)
                break;
            ids = p;
            cap = c;
        }
        if (!(ids[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n > 1)
        qsort(ids, (size_t)n, sizeof(*ids), cmp_id_desc);
    for (int i = 0; i < n && err == -ENOENT; i++) {
        int fd = openat(nfd, ids[i], DIR_FLAGS);
        bool found;

        if (fd < 0)
            continue;
        if (mp4) {
            struct stat sb;

            found = fstatat(fd, "replay.mp4", &sb, AT_SYMLINK_NOFOLLOW) == 0 &&
                    S_ISREG(sb.st_mode);
        } else {
            found = ends_with_endlist(fd);
        }
        close(fd);
        if (found) {
            snprintf(id, REC_ID_MAX, "%s", ids[i]);
            err = 0;
        }
    }
    for (int i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
    close(nfd);
    return err;
}

/* ---- every recording under ROOT --------------------------------------------- */

typedef void (*each_fn)(void *arg, int rfd, const char *name, int nfd, const char *id, int fd);

/* Calls FN for every ROOT/NAME/ID directory (valid names only, links skipped). */
static void for_each(const char *root, each_fn fn, void *arg)
{
    int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC), dfd;
    DIR *rd;
    struct dirent *ne;

    if (rfd < 0)
        return;
    dfd = dup(rfd);
    rd = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!rd) {
        if (dfd >= 0)
            close(dfd);
        close(rfd);
        return;
    }
    while ((ne = readdir(rd)) != NULL) {
        int nfd, nfd2;
        DIR *nd;
        struct dirent *ie;

        if (!stream_name_valid(ne->d_name) || (nfd = openat(rfd, ne->d_name, DIR_FLAGS)) < 0)
            continue;
        nfd2 = dup(nfd);
        nd = nfd2 >= 0 ? fdopendir(nfd2) : NULL;
        if (!nd) {
            if (nfd2 >= 0)
                close(nfd2);
            close(nfd);
            continue;
        }
        while ((ie = readdir(nd)) != NULL) {
            int fd;

            if (!id_ok(ie->d_name) || (fd = openat(nfd, ie->d_name, DIR_FLAGS)) < 0)
                continue;
            fn(arg, rfd, ne->d_name, nfd, ie->d_name, fd);
            close(fd);
        }
        closedir(nd);
        close(nfd);
    }
    closedir(rd);
    close(rfd);
}

struct recover_ctx {
    const char *root;
    void (*need_mp4)(void *arg, const char *name, const char *id);
    void *arg;
};

static void recover_one(void *arg, int rfd, const char *name, int nfd, const char *id, int fd)
{
    struct recover_ctx *ctx = arg;
    struct bytes text = {0}, closed = {0};
    struct rec_summary sum = {0};
    struct stat sb;
    int err;

    (void)rfd;
    unlinkat(fd, ".index.m3u8.tmp", 0);
    unlinkat(fd, ".replay.mp4.tmp", 0);
    err = read_small(fd, "index.m3u8", &text, &sb);
    if (err == 0)
        err = rec_summarize_playlist((const char *)text.data, text.len, &sum);
    if (err < 0 || sum.segments == 0) {
        /* Nothing playable was recorded (a crash before the first segment). */
        log_info("record", "%s/%s/%s/: no segment recorded: removed", ctx->root, name, id);
        empty_dir(fd);
        unlinkat(nfd, id, AT_REMOVEDIR);
        goto out;
    }
    if (!sum.ended) {
        err = rec_close_playlist_text((const char *)text.data, text.len, &closed);
        if (err == 0)
            err = rec_disk_replace(fd, "index.m3u8", closed.data, closed.len);
        if (err < 0) {
            log_error("record", "%s/%s/%s/: cannot close the unfinished recording: %s", ctx->root,
                      name, id, strerror(-err));
            goto out;
        }
        log_warn("record", "%s/%s/%s/: unfinished recording closed (%d segments, %.1f s)",
                 ctx->root, name, id, sum.segments, sum.duration);
    }
    if (faccessat(fd, "replay.mp4", F_OK, AT_SYMLINK_NOFOLLOW) != 0 && ctx->need_mp4)
        ctx->need_mp4(ctx->arg, name, id);
out:
    bytes_reset(&text);
    bytes_reset(&closed);
}

void rec_disk_recover(const char *root, void (*need_mp4)(void *arg, const char *name, const char *id),
                      void *arg)
{
    struct recover_ctx ctx = {root, need_mp4, arg};

    for_each(root, recover_one, &ctx);
}

struct victim {
    char name[STREAM_NAME_MAX_LEN + 1];
    struct rec_info info;
};

struct retention_ctx {
    struct victim *v;
    int n, cap;
    bool (*busy)(void *arg, const char *name, const char *id);
    void *arg;
    int64_t total;
};

static void collect_one(void *arg, int rfd, const char *name, int nfd, const char *id, int fd)
{
    struct retention_ctx *ctx = arg;
    struct rec_info info;

    (void)rfd;
    (void)nfd;
    if (read_info(fd, id, &info) < 0)
        return;
    ctx->total += info.bytes;
    if (!info.finished || ctx->busy(ctx->arg, name, id))
        return;
    if (ctx->n == ctx->cap) {
        int c = ctx->cap ? ctx->cap * 2 : 32;
        struct victim *p = realloc(ctx->v, (size_t)c * sizeof(*p));

        if (!p)
            return;
        ctx->v = p;
        ctx->cap = c;
    }
    snprintf(ctx->v[ctx->n].name, sizeof(ctx->v[ctx->n].name), "%s", name);
    ctx->v[ctx->n++].info = info;
}

static int cmp_oldest_first(const void *a, const void *b)
{
    const struct victim *x = a, *y = b;

    if (x->info.ended_ms != y->info.ended_ms)
        return x->info.ended_ms < y->info.ended_ms ? -1 : 1;
    return strcmp(x->info.id, y->info.id);
}

void rec_disk_retention(const char *root, int64_t max_bytes, double max_age_s,
                        bool (*busy)(void *arg, const char *name, const char *id), void *arg)
{
    struct retention_ctx ctx = {.busy = busy, .arg = arg};
    int64_t now = time_wall_ms();

    for_each(root, collect_one, &ctx);
    if (ctx.n > 1)
        qsort(ctx.v, (size_t)ctx.n, sizeof(*ctx.v), cmp_oldest_first);
    for (int i = 0; i < ctx.n; i++) {
        const struct victim *v = &ctx.v[i];
        bool too_old = max_age_s > 0 && (double)(now - v->info.ended_ms) / 1000.0 > max_age_s;
        bool too_big = max_bytes > 0 && ctx.total > max_bytes;

        if (!too_old && !too_big)
            continue;
        if (rec_disk_remove(root, v->name, v->info.id) == 0) {
            ctx.total -= v->info.bytes;
            log_info("record", "retention: deleted %s/%s (%.1f s, %lld bytes; %s)", v->name,
                     v->info.id, v->info.duration, (long long)v->info.bytes,
                     too_old ? "record.max_age" : "record.max_bytes");
        }
    }
    free(ctx.v);
}
