/*
 * Unit tests of the record module's pure parts (record/playlist.c): the VOD
 * and DVR playlists against golden files, closing a playlist a crash left
 * open, summaries for listings; and the disk side on a temporary directory:
 * atomic replace, recovery, retention, links not followed.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "../../config/config.h"
#include "../../record/record.h"
#include "../../record/record_disk.h"
#include "../../record/record_internal.h"
#include "harness.h"

static const char *data_dir = "tests/data";

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *s;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s = calloc(1, (size_t)n + 1);
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    fclose(f);
    return s;
}

static void check_golden(const char *name, const struct bytes *got)
{
    char path[512];
    char *want;

    snprintf(path, sizeof(path), "%s/%s", data_dir, name);
    want = read_text(path);
    CHECK(want != NULL);
    if (!want)
        return;
    CHECK_EQ_INT(got->len, strlen(want));
    if (got->len != strlen(want) || memcmp(got->data, want, got->len) != 0) {
        harness_failures++;
        fprintf(stderr, "%s differs; got:\n%.*s", name, (int)got->len, (const char *)got->data);
    }
    free(want);
}

/* Four segments: the third after a reconnect (discontinuity, new init segment). */
static void entries(struct rec_entry e[4])
{
    static const double dur[] = {2.0, 2.002, 1.5, 2.6};

    memset(e, 0, 4 * sizeof(*e));
    for (int i = 0; i < 4; i++) {
        e[i].duration = dur[i];
        e[i].pdt_ms = 1795835700000LL + i * 2000;
        e[i].init = i >= 2 ? 1 : 0;
        e[i].discontinuity = i == 2;
        snprintf(e[i].live_uri, sizeof(e[i].live_uri), "seg-abc-%d.m4s", i);
        snprintf(e[i].live_map, sizeof(e[i].live_map), "init-abc%s.mp4", i >= 2 ? "2" : "");
    }
}

static void test_vod_playlist(void)
{
    struct rec_entry e[4];
    struct bytes out = {0};
    struct rec_playlist pl = {.entries = e, .n = 4, .target = 2, .ended = true, .prefix = "",
                              .live_from = 4};

    entries(e);
    CHECK_EQ_INT(rec_render_playlist(&pl, &out), 0);
    check_golden("record_vod.m3u8", &out); /* TARGETDURATION 3: 2.6 s rounds up */
    bytes_reset(&out);
}

static void test_dvr_playlist(void)
{
    struct rec_entry e[4];
    struct bytes out = {0};
    struct rec_playlist pl = {.entries = e, .n = 4, .target = 2, .ended = false,
                              .prefix = "/vod/show/20261128-031500/", .live_from = 3};

    entries(e);
    CHECK_EQ_INT(rec_render_playlist(&pl, &out), 0);
    check_golden("record_dvr.m3u8", &out); /* disk for 0..2, the live store for 3 */
    /* The event ended: still EVENT, now with ENDLIST, so players on it play out. */
    pl.ended_event = true;
    out.len = 0;
    CHECK_EQ_INT(rec_render_playlist(&pl, &out), 0);
    CHECK(out.len > 15 && !memcmp(out.data + out.len - 15, "#EXT-X-ENDLIST\n", 15));
    CHECK(memmem(out.data, out.len, "TYPE:EVENT", 10) != NULL);
    bytes_reset(&out);
}

static bool contains(const struct bytes *b, const char *s)
{
    return memmem(b->data, b->len, s, strlen(s)) != NULL;
}

static void test_close_playlist(void)
{
    static const char open_pl[] =
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"init-0.mp4\"\n"
        "#EXTINF:2.000,\nseg-00000.m4s\n#EXTINF:2.000,\nseg-00001.m4s\n";
    struct bytes out = {0}, torn = {0};
    struct rec_summary sum;

    CHECK_EQ_INT(rec_close_playlist_text(open_pl, strlen(open_pl), &out), 0);
    CHECK_EQ_INT(rec_summarize_playlist((const char *)out.data, out.len, &sum), 0);
    CHECK(sum.ended && sum.segments == 2 && sum.duration > 3.99 && sum.duration < 4.01);
    CHECK(contains(&out, "#EXT-X-PLAYLIST-TYPE:VOD\n"));
    CHECK(!contains(&out, "EVENT"));
    /* Closed already: left alone. */
    CHECK_EQ_INT(rec_close_playlist_text((const char *)out.data, out.len, &torn), 1);
    /* A torn entry (tags without their URI, a half line) is dropped, whole ones kept. */
    bytes_printf(&torn, "%s#EXT-X-PROGRAM-DATE-TIME:2026-11-28T03:15:04.000Z\n#EXTINF:2.0", open_pl);
    bytes_reset(&out);
    CHECK_EQ_INT(rec_close_playlist_text((const char *)torn.data, torn.len, &out), 0);
    CHECK_EQ_INT(rec_summarize_playlist((const char *)out.data, out.len, &sum), 0);
    CHECK(sum.ended && sum.segments == 2);
    CHECK(!contains(&out, "PROGRAM-DATE-TIME"));
    bytes_reset(&out);
    bytes_reset(&torn);
    /* Not a playlist. */
    CHECK_EQ_INT(rec_close_playlist_text("hello\n", 6, &out), -EINVAL);
    CHECK_EQ_INT(rec_summarize_playlist("", 0, &sum), -EINVAL);
}

/* ---- disk ---------------------------------------------------------------- */

static char root[256];

static void put_file(const char *path, const char *text, size_t pad)
{
    FILE *f = fopen(path, "wb");

    CHECK(f != NULL);
    if (!f)
        return;
    fputs(text, f);
    for (size_t i = 0; i < pad; i++)
        fputc(0, f);
    fclose(f);
}

/* A finished recording NAME/ID of SIZE bytes that ended AGE_S seconds ago. */
static void fake_recording(const char *name, const char *id, size_t size, int age_s, bool ended)
{
    static const char pl[] = "#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXT-X-PLAYLIST-TYPE:EVENT\n"
                             "#EXT-X-MAP:URI=\"init-0.mp4\"\n#EXTINF:2.000,\nseg-00000.m4s\n";
    char path[512], text[512];
    struct timeval tv[2];

    snprintf(path, sizeof(path), "%s/%s", root, name);
    mkdir(path, 0755);
    snprintf(path, sizeof(path), "%s/%s/%s", root, name, id);
    CHECK_EQ_INT(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/%s/%s/seg-00000.m4s", root, name, id);
    put_file(path, "", size);
    snprintf(path, sizeof(path), "%s/%s/%s/index.m3u8", root, name, id);
    snprintf(text, sizeof(text), "%s%s", pl, ended ? "#EXT-X-ENDLIST\n" : "");
    put_file(path, text, 0);
    gettimeofday(&tv[0], NULL);
    tv[0].tv_sec -= age_s;
    tv[1] = tv[0];
    utimes(path, tv);
}

static bool exists(const char *name, const char *id)
{
    char path[512];

    snprintf(path, sizeof(path), "%s/%s/%s", root, name, id);
    return access(path, F_OK) == 0;
}

static bool never_busy(void *arg, const char *name, const char *id)
{
    (void)arg;
    (void)name;
    return !strcmp(id, "20261128-050000"); /* "being written" */
}

static int mp4_calls;
static void need_mp4(void *arg, const char *name, const char *id)
{
    (void)arg;
    (void)name;
    (void)id;
    mp4_calls++;
}

static void test_disk(void)
{
    struct rec_info *v = NULL;
    char path[512];
    int n, fd;

    snprintf(root, sizeof(root), "/tmp/onair-unit-record-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    fake_recording("a", "20261128-010000", 600000, 500, true);
    fake_recording("a", "20261128-020000", 600000, 400, true);
    fake_recording("b", "20261128-030000", 600000, 300, false); /* a crash left it open */
    fake_recording("b", "20261128-050000", 900000, 0, true);    /* busy */
    fake_recording("b", "20261128-040000", 10, 100, true);
    snprintf(path, sizeof(path), "%s/b/20261128-060000", root); /* nothing recorded */
    mkdir(path, 0755);
    /* Links are not followed out of the root: a link named like a recording. */
    snprintf(path, sizeof(path), "%s/b/20261128-070000", root);
    CHECK_EQ_INT(symlink("/etc", path), 0);

    rec_disk_recover(root, need_mp4, NULL);
    CHECK(!exists("b", "20261128-060000")); /* removed */
    CHECK_EQ_INT(mp4_calls, 5); /* every finished recording lacks its MP4 */
    n = rec_list(root, "b", &v);
    CHECK_EQ_INT(n, 3); /* the link is not listed */
    if (n == 3) {
        CHECK_EQ_STR(v[0].id, "20261128-050000"); /* newest first */
        CHECK(v[2].finished); /* closed by recovery */
        CHECK(v[2].bytes > 600000);
        CHECK(v[2].duration > 1.99 && v[2].duration < 2.01);
    }
    free(v);
    CHECK(rec_open_dir(root, "b", "20261128-070000") < 0); /* ENOTDIR: not followed */
    fd = rec_open_dir(root, "b", "20261128-050000");
    CHECK(fd >= 0);
    if (fd >= 0) {
        CHECK_EQ_INT(rec_disk_replace(fd, "index.m3u8", "#EXTM3U\n", 8), 0);
        CHECK_EQ_INT(faccessat(fd, ".index.m3u8.tmp", F_OK, 0), -1);
        close(fd);
    }
    {
        char id[REC_ID_MAX] = "";

        /* Newest first: 070000 is a link (skipped), 050000 was just replaced by a
         * playlist without ENDLIST, 040000 is finished. No MP4 anywhere yet. */
        CHECK_EQ_INT(rec_latest(root, "b", false, id), 0);
        CHECK_EQ_STR(id, "20261128-040000");
        CHECK_EQ_INT(rec_latest(root, "b", true, id), -ENOENT);
        snprintf(path, sizeof(path), "%s/a/20261128-010000/replay.mp4", root);
        put_file(path, "mp4", 0);
        CHECK_EQ_INT(rec_latest(root, "a", true, id), 0);
        CHECK_EQ_STR(id, "20261128-010000");
        CHECK_EQ_INT(rec_latest(root, "a", false, id), 0);
        CHECK_EQ_STR(id, "20261128-020000");
        CHECK(rec_latest(root, "nobody", false, id) < 0);
    }

    /* 2.7 MB in all, at most 1.6 MB: the oldest finished go first (by end time:
     * recovery just closed 030000, so it ended now), the busy one stays. */
    rec_disk_retention(root, 1600000, 0, never_busy, NULL);
    CHECK(!exists("a", "20261128-010000"));
    CHECK(!exists("a", "20261128-020000"));
    CHECK(exists("b", "20261128-030000"));
    CHECK(exists("b", "20261128-040000"));
    CHECK(exists("b", "20261128-050000"));
    /* Age: 040000 ended 100 s ago, limit 60 s. */
    rec_disk_retention(root, 0, 60, never_busy, NULL);
    CHECK(!exists("b", "20261128-040000"));
    CHECK(exists("b", "20261128-030000"));
    CHECK(exists("b", "20261128-050000"));
    rec_disk_remove(root, "b", "20261128-030000");
    CHECK(access("/etc/passwd", F_OK) == 0); /* the link's target untouched */
    rec_disk_remove(root, "b", "20261128-050000");
    snprintf(path, sizeof(path), "%s/b/20261128-070000", root);
    unlink(path);
    snprintf(path, sizeof(path), "%s/a", root);
    rmdir(path);
    snprintf(path, sizeof(path), "%s/b", root);
    rmdir(path);
    CHECK_EQ_INT(rmdir(root), 0);
}

/* ---- the recorder: a stalled disk never blocks the segmenter ------------------ */

static bool find_id_dir(const char *name_dir, char *out, size_t len)
{
    char cmd[600];
    FILE *p;
    bool ok;

    snprintf(cmd, sizeof(cmd), "ls %s 2>/dev/null | head -n 1", name_dir);
    p = popen(cmd, "r");
    if (!p)
        return false;
    ok = fgets(out, (int)len, p) != NULL;
    pclose(p);
    if (ok)
        out[strcspn(out, "\n")] = '\0';
    return ok && out[0];
}

/*
 * The writer is stuck opening init-0.mp4 (a FIFO nobody reads, as a hung
 * disk): the segmenter's calls still return at once; once REC_QUEUE_MAX_BYTES
 * are queued the recording stops (DVR gone), nothing blocks. When the disk
 * comes back the queue drains and the recording is closed.
 */
static void test_queue_full(void)
{
    struct cfg *cfg = cfg_new();
    struct recorder *r = NULL;
    struct recording *rc;
    struct buf *seg = buf_new(8u << 20), *init = buf_new_copy("init", 4), *dvr = NULL;
    char name_dir[300], id[64], fifo[400];
    struct rec_segment_info info = {.duration = 2.0, .live_uri = "seg-x-0.m4s"};
    int64_t t0;
    int i, fd;

    snprintf(root, sizeof(root), "/tmp/onair-unit-recq-XXXXXX");
    CHECK(mkdtemp(root) != NULL);
    CHECK(cfg && seg && init);
    if (!cfg || !seg || !init)
        return;
    memset(seg->data, 0, seg->len);
    cfg->record_enabled = true;
    snprintf(cfg->record_path, sizeof(cfg->record_path), "%s", root);
    CHECK_EQ_INT(rec_new(cfg, &r), 0);
    cfg_unref(cfg);
    if (!r)
        return;
    rc = rec_start(r, "q", 2);
    CHECK(rc != NULL);
    snprintf(name_dir, sizeof(name_dir), "%s/q", root);
    for (i = 0; i < 200 && !find_id_dir(name_dir, id, sizeof(id)); i++)
        usleep(10000);
    snprintf(fifo, sizeof(fifo), "%s/%s/init-0.mp4", name_dir, id);
    CHECK_EQ_INT(mkfifo(fifo, 0644), 0);
    rec_init(rc, init, "init-x.mp4"); /* the writer now blocks in open() */
    usleep(100000);
    t0 = time_mono_ms();
    for (i = 0; i < 12; i++) /* 96 MiB: more than the queue holds */
        rec_segment(rc, &seg, 1, &info);
    CHECK(time_mono_ms() - t0 < 1000); /* never waited for the disk */
    CHECK_EQ_INT(rec_dvr_playlist(r, "q", &dvr), -ENOENT); /* stopped */
    buf_unref(dvr);
    fd = open(fifo, O_RDONLY | O_NONBLOCK); /* the disk comes back */
    CHECK(fd >= 0);
    rec_end(rc);
    rec_free(r); /* drains: the init is written, the queued segments dropped */
    if (fd >= 0)
        close(fd);
    CHECK(access(name_dir, F_OK) == 0);
    CHECK(!find_id_dir(name_dir, id, sizeof(id))); /* nothing playable: removed */
    rmdir(name_dir);
    CHECK_EQ_INT(rmdir(root), 0);
    buf_unref(seg);
    buf_unref(init);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        data_dir = argv[1];
    RUN(test_vod_playlist);
    RUN(test_dvr_playlist);
    RUN(test_close_playlist);
    RUN(test_disk);
    RUN(test_queue_full);
    return harness_done();
}
