/*
 * Unit tests for store/: claim and release, object refcounts, linger and
 * sweep, a reader/writer/sweeper stress run meant for ASan and TSan, and the
 * live-stream listing (store_set_info, store_list).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../store/store.h"
#include "harness.h"

static struct buf *make_buf(const char *text)
{
    return buf_new_copy(text, strlen(text));
}

static int refs(struct buf *b)
{
    return atomic_load(&b->refs);
}

static void test_claim_release(void)
{
    struct store *st = store_new();
    struct store_stream *a = NULL, *b = NULL, *again = NULL;

    CHECK(st != NULL);
    CHECK_EQ_INT(store_live_count(st), 0);
    CHECK_EQ_INT(store_claim(st, "show", &a), 0);
    CHECK(a != NULL);
    CHECK_EQ_STR(store_stream_name(a), "show");
    CHECK_EQ_INT(store_live_count(st), 1);

    /* A second publisher of the same name is refused; another name is fine. */
    CHECK_EQ_INT(store_claim(st, "show", &b), -EBUSY);
    CHECK(b == NULL);
    CHECK_EQ_INT(store_claim(st, "other", &b), 0);
    CHECK_EQ_INT(store_live_count(st), 2);

    /* Bad names. */
    {
        char longname[STORE_NAME_MAX + 1];
        struct store_stream *x = NULL;

        memset(longname, 'a', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        CHECK_EQ_INT(store_claim(st, longname, &x), -EINVAL);
        CHECK_EQ_INT(store_claim(st, "", &x), -EINVAL);
        longname[STORE_NAME_MAX - 1] = '\0'; /* 127 chars: the longest allowed */
        CHECK_EQ_INT(store_claim(st, longname, &x), 0);
        store_release(x, 0);
    }

    /* Release keeps the objects readable during the linger time. */
    CHECK_EQ_INT(store_put(a, "index.m3u8", STORE_PLAYLIST, make_buf("#EXTM3U\n")), 0);
    store_release(a, 60000);
    CHECK_EQ_INT(store_live_count(st), 1);
    store_sweep(st);
    {
        enum store_kind kind = STORE_SEGMENT;
        struct buf *got = store_get(st, "show", "index.m3u8", &kind);

        CHECK(got != NULL);
        CHECK_EQ_INT(kind, STORE_PLAYLIST);
        buf_unref(got);
    }

    /* Reclaiming the lingering stream reuses it, emptied. */
    CHECK_EQ_INT(store_claim(st, "show", &again), 0);
    CHECK(again == a);
    CHECK_EQ_INT(store_live_count(st), 2);
    CHECK(store_get(st, "show", "index.m3u8", NULL) == NULL);

    store_release(again, 0);
    store_release(b, 0);
    CHECK_EQ_INT(store_live_count(st), 0);
    store_free(st);
}

static void test_objects_refcounts(void)
{
    struct store *st = store_new();
    struct store_stream *ss;
    struct buf *seg = make_buf("segment-bytes"), *pl1 = make_buf("v1"), *pl2 = make_buf("v2");
    struct buf *got;
    enum store_kind kind;

    CHECK_EQ_INT(store_claim(st, "s", &ss), 0);

    /* The test keeps its own reference on each buffer to watch the count. */
    CHECK_EQ_INT(store_put(ss, "seg-1-0.m4s", STORE_SEGMENT, buf_ref(seg)), 0);
    CHECK_EQ_INT(refs(seg), 2);
    CHECK_EQ_INT(store_put(ss, "index.m3u8", STORE_PLAYLIST, buf_ref(pl1)), 0);

    got = store_get(st, "s", "seg-1-0.m4s", &kind);
    CHECK(got == seg);
    CHECK_EQ_INT(kind, STORE_SEGMENT);
    CHECK_EQ_INT(refs(seg), 3);
    buf_unref(got);
    CHECK_EQ_INT(refs(seg), 2);

    /* Replacing drops the store's reference on the old object only. */
    got = store_get(st, "s", "index.m3u8", &kind);
    CHECK(got == pl1);
    CHECK_EQ_INT(store_put(ss, "index.m3u8", STORE_PLAYLIST, buf_ref(pl2)), 0);
    CHECK_EQ_INT(refs(pl1), 2); /* test + the reader still holding it */
    CHECK_EQ_INT(refs(pl2), 2);
    CHECK(got->len == 2 && memcmp(got->data, "v1", 2) == 0);
    buf_unref(got);
    CHECK_EQ_INT(refs(pl1), 1);
    got = store_get(st, "s", "index.m3u8", NULL);
    CHECK(got == pl2);
    buf_unref(got);

    /* Misses. */
    CHECK(store_get(st, "s", "nope.m4s", &kind) == NULL);
    CHECK(store_get(st, "nostream", "index.m3u8", &kind) == NULL);

    /* Remove, and remove of a missing name. */
    store_remove(ss, "seg-1-0.m4s");
    CHECK_EQ_INT(refs(seg), 1);
    CHECK(store_get(st, "s", "seg-1-0.m4s", NULL) == NULL);
    store_remove(ss, "seg-1-0.m4s");
    CHECK_EQ_INT(refs(seg), 1);

    /* store_put takes the reference even when it fails. */
    {
        char longname[STORE_NAME_MAX + 8];

        memset(longname, 'x', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        CHECK_EQ_INT(store_put(ss, longname, STORE_SEGMENT, buf_ref(seg)), -EINVAL);
        CHECK_EQ_INT(refs(seg), 1);
    }

    /* Many objects: the array grows and every one stays findable. */
    for (int i = 0; i < 100; i++) {
        char name[32];

        snprintf(name, sizeof(name), "part-%d.m4s", i);
        CHECK_EQ_INT(store_put(ss, name, STORE_PART, buf_ref(seg)), 0);
    }
    CHECK_EQ_INT(refs(seg), 101);
    for (int i = 0; i < 100; i += 7) {
        char name[32];

        snprintf(name, sizeof(name), "part-%d.m4s", i);
        got = store_get(st, "s", name, &kind);
        CHECK(got == seg);
        CHECK_EQ_INT(kind, STORE_PART);
        buf_unref(got);
    }

    /* Ending and sweeping the stream drops every reference the store held. */
    store_release(ss, 0);
    store_sweep(st);
    CHECK_EQ_INT(refs(seg), 1);
    CHECK_EQ_INT(refs(pl2), 1);
    CHECK(store_get(st, "s", "index.m3u8", NULL) == NULL);

    buf_unref(seg);
    buf_unref(pl1);
    buf_unref(pl2);
    store_free(st);
}

static void test_sweep(void)
{
    struct store *st = store_new();
    struct store_stream *a, *b;
    struct buf *keep = make_buf("k");

    CHECK_EQ_INT(store_claim(st, "a", &a), 0);
    CHECK_EQ_INT(store_claim(st, "b", &b), 0);
    CHECK_EQ_INT(store_put(a, "x", STORE_SEGMENT, buf_ref(keep)), 0);
    CHECK_EQ_INT(store_put(b, "x", STORE_SEGMENT, buf_ref(keep)), 0);

    /* Claimed streams are never swept. */
    store_sweep(st);
    CHECK_EQ_INT(refs(keep), 3);

    /* Linger 0: gone at the next sweep; a long linger survives it. */
    store_release(a, 0);
    store_release(b, 3600 * 1000);
    store_sweep(st);
    CHECK(store_get(st, "a", "x", NULL) == NULL);
    {
        struct buf *got = store_get(st, "b", "x", NULL);

        CHECK(got == keep);
        buf_unref(got);
    }
    CHECK_EQ_INT(refs(keep), 2);

    /* A swept name can be claimed afresh. */
    CHECK_EQ_INT(store_claim(st, "a", &a), 0);
    CHECK(store_get(st, "a", "x", NULL) == NULL);
    store_release(a, 0);

    /* store_free drops lingering streams' objects. */
    store_free(st);
    CHECK_EQ_INT(refs(keep), 1);
    buf_unref(keep);
}

/* ---- stress: publishers, readers and a sweeper on shared streams --------- */

#define STRESS_STREAMS 3
#define STRESS_READERS 4
#define STRESS_ROUNDS 40
#define STRESS_PUTS 200

struct stress {
    struct store *st;
    atomic_int writers_left;
    atomic_long reads_ok;
    atomic_int bad;
};

/* Every buffer is filled with one byte value, and its length encodes it. */
static struct buf *pattern_buf(unsigned v)
{
    size_t len = 16 + (v % 200);
    struct buf *b = buf_new(len);

    if (b)
        memset(b->data, (int)(len & 0xff), len);
    return b;
}

static bool pattern_ok(const struct buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != (uint8_t)(b->len & 0xff))
            return false;
    return b->len >= 16;
}

static void *stress_writer(void *arg)
{
    struct stress *s = arg;
    char stream[16];

    /* Keep writing past STRESS_ROUNDS until the readers have seen something
     * (on a loaded 2-core machine they may not have been scheduled yet), but
     * never for more than 10 s. */
    int64_t give_up = time_mono_ms() + 10000;

    for (int round = 0; round < STRESS_ROUNDS ||
                        (atomic_load(&s->reads_ok) == 0 && time_mono_ms() < give_up);
         round++) {
        struct store_stream *ss;
        int rc;

        snprintf(stream, sizeof(stream), "s%d", round % STRESS_STREAMS);
        rc = store_claim(s->st, stream, &ss);
        if (rc == -EBUSY)
            continue; /* another writer holds it this round */
        if (rc != 0) {
            atomic_fetch_add(&s->bad, 1);
            continue;
        }
        for (unsigned i = 0; i < STRESS_PUTS; i++) {
            char name[32];

            snprintf(name, sizeof(name), "seg-%u.m4s", i % 8);
            if (store_put(ss, name, STORE_SEGMENT, pattern_buf(i * 7 + (unsigned)round)) != 0)
                atomic_fetch_add(&s->bad, 1);
            if (store_put(ss, "index.m3u8", STORE_PLAYLIST, pattern_buf(i)) != 0)
                atomic_fetch_add(&s->bad, 1);
            if (i % 5 == 0) {
                snprintf(name, sizeof(name), "seg-%u.m4s", (i + 3) % 8);
                store_remove(ss, name);
            }
        }
        store_release(ss, round % 2 ? 0 : 1);
    }
    atomic_fetch_sub(&s->writers_left, 1);
    return NULL;
}

static void *stress_reader(void *arg)
{
    struct stress *s = arg;
    unsigned n = 0;

    while (atomic_load(&s->writers_left) > 0) {
        char stream[16], name[32];
        enum store_kind kind;
        struct buf *b;

        snprintf(stream, sizeof(stream), "s%u", n % STRESS_STREAMS);
        if (n % 3 == 0)
            snprintf(name, sizeof(name), "index.m3u8");
        else
            snprintf(name, sizeof(name), "seg-%u.m4s", (n / 3) % 8);
        n++;
        b = store_get(s->st, stream, name, &kind);
        if (!b)
            continue;
        if (!pattern_ok(b) ||
            kind != (strcmp(name, "index.m3u8") == 0 ? STORE_PLAYLIST : STORE_SEGMENT))
            atomic_fetch_add(&s->bad, 1);
        else
            atomic_fetch_add(&s->reads_ok, 1);
        buf_unref(b);
    }
    return NULL;
}

static void *stress_sweeper(void *arg)
{
    struct stress *s = arg;
    struct timespec ts = {0, 200 * 1000};

    while (atomic_load(&s->writers_left) > 0) {
        store_sweep(s->st);
        (void)store_live_count(s->st);
        nanosleep(&ts, NULL);
    }
    return NULL;
}

static void test_stress(void)
{
    struct stress s = {.st = store_new()};
    pthread_t writers[2], readers[STRESS_READERS], sweeper;

    atomic_init(&s.writers_left, (int)ARRAY_SIZE(writers));
    atomic_init(&s.reads_ok, 0);
    atomic_init(&s.bad, 0);
    for (size_t i = 0; i < ARRAY_SIZE(writers); i++)
        CHECK_EQ_INT(pthread_create(&writers[i], NULL, stress_writer, &s), 0);
    for (size_t i = 0; i < ARRAY_SIZE(readers); i++)
        CHECK_EQ_INT(pthread_create(&readers[i], NULL, stress_reader, &s), 0);
    CHECK_EQ_INT(pthread_create(&sweeper, NULL, stress_sweeper, &s), 0);
    for (size_t i = 0; i < ARRAY_SIZE(writers); i++)
        pthread_join(writers[i], NULL);
    for (size_t i = 0; i < ARRAY_SIZE(readers); i++)
        pthread_join(readers[i], NULL);
    pthread_join(sweeper, NULL);

    CHECK_EQ_INT(atomic_load(&s.bad), 0);
    CHECK(atomic_load(&s.reads_ok) > 0);
    CHECK_EQ_INT(store_live_count(s.st), 0);
    store_free(s.st); /* ASan's leak check verifies every buffer was freed */
}

/* ---- progress and waiters ---- */

struct wake_rec {
    struct store_waiter w;
    int woken;
};

static void rec_wake(struct store_waiter *w)
{
    ((struct wake_rec *)w)->woken++;
}

static void test_waiters(void)
{
    struct store *st = store_new();
    struct store_stream *ss;
    struct wake_rec a = {.w = {.wake = rec_wake, .key = STORE_KEY(0, 1)}};
    struct wake_rec b = {.w = {.wake = rec_wake, .key = STORE_KEY(0, 5)}};   /* never cut */
    struct wake_rec c = {.w = {.wake = rec_wake, .key = STORE_KEY(0, STORE_PART_END)}};
    struct wake_rec d = {.w = {.wake = rec_wake, .key = STORE_KEY(1, 0)}};
    struct wake_rec e = {.w = {.wake = rec_wake, .key = STORE_KEY(2, 0)}};
    struct wake_rec far = {.w = {.wake = rec_wake, .key = STORE_KEY(3, 0)}};
    struct wake_rec gone = {.w = {.wake = rec_wake, .key = STORE_KEY(1, 1)}};

    CHECK_EQ_INT(store_wait(st, "none", &a.w), STORE_WAIT_NONE);
    CHECK_EQ_INT(store_claim(st, "s", &ss), 0);
    /* inserted out of order: the list stays sorted */
    CHECK_EQ_INT(store_wait(st, "s", &e.w), STORE_WAIT_QUEUED);
    CHECK_EQ_INT(store_wait(st, "s", &c.w), STORE_WAIT_QUEUED);
    CHECK_EQ_INT(store_wait(st, "s", &a.w), STORE_WAIT_QUEUED);
    CHECK_EQ_INT(store_wait(st, "s", &d.w), STORE_WAIT_QUEUED);
    CHECK_EQ_INT(store_wait(st, "s", &b.w), STORE_WAIT_QUEUED);
    CHECK_EQ_INT(store_wait(st, "s", &gone.w), STORE_WAIT_QUEUED);
    CHECK_EQ_INT(store_wait(st, "s", &far.w), STORE_WAIT_TOO_FAR); /* > live + 2 */
    CHECK_EQ_INT(store_waiting_count(st), 6);
    CHECK(store_cancel(&gone.w));
    CHECK(!store_cancel(&gone.w));
    CHECK_EQ_INT(store_waiting_count(st), 5);

    store_progress(ss, STORE_KEY(0, 0));
    CHECK_EQ_INT(a.woken, 0);
    store_progress(ss, STORE_KEY(0, 1));
    CHECK_EQ_INT(a.woken, 1);
    CHECK(!store_cancel(&a.w)); /* already unlinked by the wake */
    store_progress(ss, STORE_KEY(0, 2));
    /* segment 0 ends with 3 parts: part 5 of it is now part 0 of segment 1 */
    store_progress(ss, STORE_KEY(0, STORE_PART_END));
    CHECK_EQ_INT(c.woken, 1);
    CHECK_EQ_INT(b.woken, 0);
    CHECK_EQ_INT(store_check(st, "s", STORE_KEY(0, 4)), STORE_WAIT_QUEUED);
    CHECK_EQ_INT(store_check(st, "s", STORE_KEY(0, 2)), STORE_WAIT_READY);
    CHECK_EQ_INT(store_check(st, "s", STORE_KEY(3, 0)), STORE_WAIT_QUEUED); /* live 1 + 2 */
    CHECK_EQ_INT(store_check(st, "s", STORE_KEY(4, 0)), STORE_WAIT_TOO_FAR);
    store_progress(ss, STORE_KEY(1, 0));
    CHECK_EQ_INT(b.woken, 1);
    CHECK_EQ_INT(d.woken, 1);
    CHECK_EQ_INT(e.woken, 0);
    CHECK_EQ_INT(store_waiting_count(st), 1);
    /* the stream ends: every waiter is woken, later ones are READY at once */
    store_release(ss, 0);
    CHECK_EQ_INT(e.woken, 1);
    CHECK_EQ_INT(store_waiting_count(st), 0);
    CHECK_EQ_INT(store_wait(st, "s", &far.w), STORE_WAIT_READY);
    store_sweep(st);
    store_free(st);
}

/*
 * Without LL-HLS no part is ever announced: a playlist asked for before the
 * first segment (key 0) is answered when segment 0 ends, not moved on to a
 * part of segment 1 that will never be announced either.
 */
static void test_waiters_no_parts(void)
{
    struct store *st = store_new();
    struct store_stream *ss;
    struct wake_rec first = {.w = {.wake = rec_wake, .key = STORE_KEY(0, 0)}};

    CHECK_EQ_INT(store_claim(st, "s", &ss), 0);
    CHECK_EQ_INT(store_wait(st, "s", &first.w), STORE_WAIT_QUEUED);
    store_progress(ss, STORE_KEY(0, STORE_PART_END));
    CHECK_EQ_INT(first.woken, 1);
    CHECK_EQ_INT(store_waiting_count(st), 0);
    CHECK_EQ_INT(store_check(st, "s", STORE_KEY(0, 0)), STORE_WAIT_READY);
    store_release(ss, 0);
    store_sweep(st);
    store_free(st);
}

/* ---- store_set_info / store_list ----------------------------------------- */

struct listing {
    struct store *st;
    int n;
    char names[4][STORE_NAME_MAX];
    struct store_stream_info infos[4];
};

static void list_cb(void *arg, const char *name, const struct store_stream_info *info)
{
    struct listing *l = arg;

    /* Called outside the locks: calling back into the store must not deadlock. */
    CHECK(store_live_count(l->st) >= 0);
    if (l->n < 4) {
        snprintf(l->names[l->n], sizeof(l->names[l->n]), "%s", name);
        l->infos[l->n] = *info;
    }
    l->n++;
}

static void test_list(void)
{
    struct store *st = store_new();
    struct store_stream *a = NULL, *b = NULL;
    struct store_stream_info info = {.live_since_ms = 1700000000123, .width = 640, .height = 360};
    struct listing l = {.st = st};

    CHECK_EQ_INT(store_list(st, list_cb, &l), 0); /* empty store */
    CHECK_EQ_INT(l.n, 0);
    CHECK_EQ_INT(store_claim(st, "show", &a), 0);
    CHECK_EQ_INT(store_claim(st, "quiet", &b), 0);
    /* Claimed but neither info nor playlist: not playable, not listed. */
    CHECK_EQ_INT(store_list(st, list_cb, &l), 0);
    snprintf(info.codecs, sizeof(info.codecs), "avc1.64001e,mp4a.40.2");
    store_set_info(a, &info);
    CHECK_EQ_INT(store_list(st, list_cb, &l), 0); /* info, still no playlist */
    CHECK_EQ_INT(store_put(a, "init-1.mp4", STORE_INIT, make_buf("init")), 0);
    CHECK_EQ_INT(store_list(st, list_cb, &l), 0);
    CHECK_EQ_INT(store_put(a, "index.m3u8", STORE_PLAYLIST, make_buf("#EXTM3U\n")), 0);
    /* b has a playlist but no info. */
    CHECK_EQ_INT(store_put(b, "index.m3u8", STORE_PLAYLIST, make_buf("#EXTM3U\n")), 0);
    CHECK_EQ_INT(store_list(st, list_cb, &l), 1);
    CHECK_EQ_INT(l.n, 1);
    CHECK_EQ_STR(l.names[0], "show");
    CHECK_EQ_INT(l.infos[0].live_since_ms, 1700000000123);
    CHECK_EQ_INT(l.infos[0].width, 640);
    CHECK_EQ_INT(l.infos[0].height, 360);
    CHECK_EQ_STR(l.infos[0].codecs, "avc1.64001e,mp4a.40.2");

    /* Both listed once b is playable too. */
    info.width = info.height = 0;
    snprintf(info.codecs, sizeof(info.codecs), "mp4a.40.2");
    store_set_info(b, &info);
    l.n = 0;
    CHECK_EQ_INT(store_list(st, list_cb, &l), 2);
    CHECK_EQ_INT(l.n, 2);

    /* Released (ended, lingering): no longer listed, though still readable. */
    store_release(a, 60000);
    l.n = 0;
    CHECK_EQ_INT(store_list(st, list_cb, &l), 1);
    CHECK_EQ_STR(l.names[0], "quiet");
    /* A new claim of the lingering name starts without info. */
    CHECK_EQ_INT(store_claim(st, "show", &a), 0);
    CHECK_EQ_INT(store_put(a, "index.m3u8", STORE_PLAYLIST, make_buf("#EXTM3U\n")), 0);
    l.n = 0;
    CHECK_EQ_INT(store_list(st, list_cb, &l), 1);
    CHECK_EQ_STR(l.names[0], "quiet");

    store_release(a, 0);
    store_release(b, 0);
    l.n = 0;
    CHECK_EQ_INT(store_list(st, list_cb, &l), 0);
    store_sweep(st);
    store_free(st);
}

int main(void)
{
    RUN(test_claim_release);
    RUN(test_objects_refcounts);
    RUN(test_sweep);
    RUN(test_stress);
    RUN(test_waiters);
    RUN(test_waiters_no_parts);
    RUN(test_list);
    return harness_done();
}
