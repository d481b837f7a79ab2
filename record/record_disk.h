/*
 * The record module's file-system side (disk.c) and its MP4 jobs (remux.c).
 * Every path below ROOT is opened one component at a time with O_NOFOLLOW:
 * nothing under record.path leads outside it through a symbolic link.
 */
#ifndef ONAIR_RECORD_DISK_H
#define ONAIR_RECORD_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct buf;

/*
 * Creates ROOT/NAME/ID/ (ROOT and NAME as needed) for a recording started at
 * START_MS: ID is its UTC time "YYYYMMDD-HHMMSS", with "-2", "-3"... when
 * taken. Returns 0 with ID in OUT and the directory open in *DIRFD, or -errno.
 */
int rec_disk_create(const char *root, const char *name, int64_t start_ms, char *id, size_t idlen,
                    int *dirfd);

/* Writes the NBUFS buffers as file NAME in DIRFD and syncs its data. Returns 0 or -errno. */
int rec_disk_write(int dirfd, const char *name, struct buf *const *bufs, int nbufs);

/* Replaces NAME in DIRFD with LEN bytes: a temporary file, fsync, rename. Returns 0 or -errno. */
int rec_disk_replace(int dirfd, const char *name, const void *data, size_t len);

/* Deletes ROOT/NAME/ID/ and its files (not following links). Returns 0 or -errno. */
int rec_disk_remove(const char *root, const char *name, const char *id);

/*
 * Start-up: closes every recording under ROOT a crash left open (ENDLIST),
 * removes the ones with no segment, and calls NEED_MP4 for every finished
 * recording without its replay.mp4.
 */
void rec_disk_recover(const char *root, void (*need_mp4)(void *arg, const char *name, const char *id),
                      void *arg);

/*
 * Deletes finished recordings, oldest (by end) first, while all of them
 * together exceed MAX_BYTES (0 = no limit) or they ended more than MAX_AGE_S
 * ago (0 = kept). BUSY(ARG, name, id) recordings are never deleted.
 */
void rec_disk_retention(const char *root, int64_t max_bytes, double max_age_s,
                        bool (*busy)(void *arg, const char *name, const char *id), void *arg);

/* Opens ROOT/NAME/ID (ID NULL: ROOT/NAME) as a directory, no link followed. Returns an fd or -errno. */
int rec_disk_open_dir(const char *root, const char *name, const char *id);

/* ---- MP4 replays (remux.c) ------------------------------------------------- */

struct rec_remux;

/* Starts the remux thread for recordings under ROOT. Returns 0 or -errno. */
int rec_remux_new(const char *root, struct rec_remux **out);
/* Queues the MP4 of NAME/ID (remuxed in the background, replay.mp4). */
void rec_remux_queue(struct rec_remux *m, const char *name, const char *id);
/* Finishes the queued jobs and stops. Accepts NULL. */
void rec_remux_free(struct rec_remux *m);

/*
 * Remuxes the recording in directory DIRFD (index.m3u8, init and media
 * segments) into OUT_PATH... see remux.c. Returns 0 or a negative errno.
 */
int rec_remux_dir(int dirfd, const char *logname);

#endif
