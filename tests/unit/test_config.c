/*
 * Unit tests for config/: defaults, a full document, every error class with
 * its exact "name:LINE:COL:" position, several mistakes reported in one run,
 * units, stream keys, diffs, the live holder, listen addresses, cfg_load on
 * real files, the shipped example (argv[1]) and the README reference (argv[2]).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "../../config/config.h"
#include "harness.h"

static const char *example_path = "config/onair.example.yaml";
static const char *readme_path = "README.md";

/* Parses YAML; on success returns the snapshot, else NULL with the messages in *ERRS. */
static struct cfg *parse(const char *yaml, struct cfg_errors *errs)
{
    struct cfg *c = NULL;

    return cfg_parse("t.yaml", yaml, strlen(yaml), &c, errs) == 0 ? c : NULL;
}

/* Counts the errors of YAML (0 = valid). */
static int nerrors(const char *yaml)
{
    struct cfg_errors e = {0};
    struct cfg *c = parse(yaml, &e);
    int n = e.count;

    cfg_unref(c);
    cfg_errors_reset(&e);
    return n;
}

/* True if YAML fails with exactly one message that starts with WHERE and contains WORDS. */
static bool fails_with(const char *yaml, const char *where, const char *words)
{
    struct cfg_errors e = {0};
    struct cfg *c = parse(yaml, &e);
    const char *t = cfg_errors_str(&e);
    bool ok = !c && e.count == 1 && !strncmp(t, where, strlen(where)) && strstr(t, words);

    if (!ok)
        fprintf(stderr, "  input: \"%s\"\n  %d errors: \"%s\"\n  want \"%s...%s\"\n", yaml,
                e.count, t, where, words);
    cfg_unref(c);
    cfg_errors_reset(&e);
    return ok;
}

#define CHECK_FAILS(yaml, where, words) CHECK(fails_with(yaml, where, words))

/* Same values (the refcount and the streams' storage aside). */
static bool cfg_same(const struct cfg *a, const struct cfg *b)
{
    size_t off = offsetof(struct cfg, rtmp_listen);

    return a->publish == b->publish && !strcmp(a->publish_name, b->publish_name) &&
           a->nstreams == b->nstreams &&
           (!a->nstreams || !memcmp(a->streams, b->streams, a->nstreams * sizeof(*a->streams))) &&
           !memcmp((const char *)a + off, (const char *)b + off, sizeof(*a) - off);
}

static void test_defaults(void)
{
    struct cfg c;

    memset(&c, 0x5a, sizeof(c));
    cfg_defaults(&c);
    CHECK_EQ_INT(c.publish, CFG_PUBLISH_OPEN);
    CHECK_EQ_INT(c.nstreams, 0);
    CHECK_EQ_STR(c.rtmp_listen, "127.0.0.1:1935");
    CHECK_EQ_STR(c.rtmp_app, "live");
    CHECK_EQ_INT(c.rtmp_chunk_size, 4096);
    CHECK_EQ_INT(c.rtmp_max_message_bytes, 8388608);
    CHECK_EQ_INT(c.rtmp_max_connections, 1000);
    CHECK_EQ_STR(c.http_listen, "127.0.0.1:8080");
    CHECK_EQ_INT(c.http_threads, 4);
    CHECK_EQ_STR(c.http_cors_origin, "*");
    CHECK_EQ_INT(c.http_playlist_max_age, 1);
    CHECK_EQ_STR(c.http_player_js, "");
    CHECK(c.hls_segment_seconds == 2.0);
    CHECK(c.hls_part_seconds == 0.333);
    CHECK_EQ_INT(c.hls_window_segments, 6);
    CHECK(c.hls_reconnect_grace_seconds == 30);
    CHECK_EQ_INT(c.hls_max_segment_bytes, 32 * 1024 * 1024);
    CHECK_EQ_STR(c.log_level, "info");
    CHECK_EQ_INT(cfg_log_level(&c), LOG_INFO);
    CHECK_EQ_STR(c.process_pid_file, "");
}

/* Empty input, comments, a bare "---" and empty sections all mean "defaults". */
static void test_empty_means_defaults(void)
{
    static const char *const docs[] = {
        "", "# nothing\n\n   # here\n", "---\n", "---\n...\n", "rtmp:\nhttp: ~\nlog:\nstreams:\n",
    };
    struct cfg def;
    struct cfg_errors e = {0};
    struct cfg *c;
    size_t i;

    cfg_defaults(&def);
    for (i = 0; i < ARRAY_LEN(docs); i++) {
        c = parse(docs[i], &e);
        CHECK(c != NULL);
        CHECK_EQ_INT(e.count, 0);
        CHECK_EQ_STR(cfg_errors_str(&e), "");
        CHECK(c && cfg_same(c, &def));
        cfg_unref(c);
    }
    c = NULL;
    CHECK_EQ_INT(cfg_parse("t.yaml", NULL, 0, &c, &e), 0);
    CHECK(c && cfg_same(c, &def));
    cfg_unref(c);
}

/*
 * Every default round-trips: the README reference prints each default as it
 * would be written; a document made of those values parses to the defaults.
 */
static void test_defaults_round_trip(void)
{
    struct bytes md = {0}, doc = {0};
    struct cfg_errors e = {0};
    struct cfg def, *c;
    char section[32] = "";
    const char *p;
    int rows = 0;

    cfg_defaults(&def);
    CHECK_EQ_INT(cfg_reference_markdown(&md), 0);
    CHECK_EQ_INT(bytes_append(&md, "", 1), 0);
    for (p = (const char *)md.data; (p = strstr(p, "\n| `")) != NULL; p++) {
        char key[64], value[300];
        const char *dot;

        if (sscanf(p, "\n| `%63[^`]` | `%299[^`]`", key, value) != 2)
            continue; /* "empty" / "none" defaults: nothing to write */
        dot = strchr(key, '.');
        if (!dot) {
            bytes_printf(&doc, "%s: \"%s\"\n", key, value);
        } else {
            if (strncmp(section, key, (size_t)(dot - key)) || section[dot - key]) {
                snprintf(section, sizeof(section), "%.*s", (int)(dot - key), key);
                bytes_printf(&doc, "%s:\n", section);
            }
            /* Quoted for strings, plain for numbers with units and booleans. */
            if ((strspn(value, "0123456789.") && strcspn(value, ":") == strlen(value)) ||
                !strcmp(value, "true") || !strcmp(value, "false"))
                bytes_printf(&doc, "  %s: %s\n", dot + 1, value);
            else
                bytes_printf(&doc, "  %s: \"%s\"\n", dot + 1, value);
        }
        rows++;
    }
    CHECK(rows >= 14);
    c = NULL;
    CHECK_EQ_INT(cfg_parse("doc", (const char *)doc.data, doc.len, &c, &e), 0);
    if (e.count)
        fprintf(stderr, "%s%.*s", cfg_errors_str(&e), (int)doc.len, (const char *)doc.data);
    CHECK(c && cfg_same(c, &def));
    cfg_unref(c);
    cfg_errors_reset(&e);
    bytes_reset(&md);
    bytes_reset(&doc);
}

static const char full_doc[] = "# every key, none at its default\n"
                               "publish: keys\n"
                               "streams:\n"
                               "  - name: townhall\n"
                               "    key: \"change-me\"\n"
                               "  - {name: backstage, key_sha256: "
                               "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08}\n"
                               "rtmp:\n"
                               "  listen: \":1936\"\n"
                               "  app: 'studio'\n"
                               "  chunk_size: 128\n"
                               "  max_message_bytes: 64MiB\n"
                               "  max_connections: +42\n"
                               "http:\n"
                               "  listen: '[::1]:0'\n"
                               "  threads: 64\n"
                               "  cors_origin: https://example.org\n"
                               "  playlist_max_age: 0\n"
                               "  player_js: >-\n"
                               "    /usr/share/hls.js/hls.min.js\n"
                               "hls:\n"
                               "  segment_seconds: 4\n"
                               "  part_seconds: 0\n"
                               "  window_segments: 100\n"
                               "log: {level: debug}\n"
                               "process:\n"
                               "  pid_file: /run/onair/onair.pid\n";

static void test_full_document(void)
{
    struct cfg_errors e = {0};
    struct cfg *c = parse(full_doc, &e);

    CHECK(c != NULL);
    CHECK_EQ_STR(cfg_errors_str(&e), "");
    if (!c)
        return;
    CHECK_EQ_INT(c->publish, CFG_PUBLISH_KEYS);
    CHECK_EQ_INT(c->nstreams, 2);
    CHECK_EQ_STR(c->streams[0].name, "townhall");
    CHECK_EQ_STR(c->streams[1].name, "backstage");
    CHECK_EQ_INT(c->streams[1].key_sha256[0], 0x9f);
    CHECK_EQ_INT(c->streams[1].key_sha256[31], 0x08);
    CHECK_EQ_STR(c->rtmp_listen, ":1936");
    CHECK_EQ_STR(c->rtmp_app, "studio");
    CHECK_EQ_INT(c->rtmp_chunk_size, 128);
    CHECK_EQ_INT(c->rtmp_max_message_bytes, 67108864);
    CHECK_EQ_INT(c->rtmp_max_connections, 42);
    CHECK_EQ_STR(c->http_listen, "[::1]:0");
    CHECK_EQ_INT(c->http_threads, 64);
    CHECK_EQ_STR(c->http_cors_origin, "https://example.org");
    CHECK_EQ_INT(c->http_playlist_max_age, 0);
    CHECK_EQ_STR(c->http_player_js, "/usr/share/hls.js/hls.min.js");
    CHECK(c->hls_segment_seconds == 4.0);
    CHECK(c->hls_part_seconds == 0);
    CHECK_EQ_INT(c->hls_window_segments, 100);
    CHECK_EQ_STR(c->log_level, "debug");
    CHECK_EQ_INT(cfg_log_level(c), LOG_DEBUG);
    CHECK_EQ_STR(c->process_pid_file, "/run/onair/onair.pid");
    cfg_unref(c);
}

/* A document is applied over the defaults. */
static void test_partial_over_defaults(void)
{
    struct cfg def;
    struct cfg *c = parse("hls:\n  window_segments: 10\n", NULL);

    cfg_defaults(&def);
    CHECK(c != NULL);
    if (!c)
        return;
    CHECK_EQ_INT(c->hls_window_segments, 10);
    c->hls_window_segments = def.hls_window_segments;
    CHECK(cfg_same(c, &def));
    cfg_unref(c);
}

static void test_value_forms(void)
{
    static const struct {
        const char *doc;
        size_t off;
        double want; /* double fields */
    } durations[] = {
        {"hls:\n  segment_seconds: .5\n", offsetof(struct cfg, hls_segment_seconds), 0.5},
        {"hls:\n  segment_seconds: 3e1\n", offsetof(struct cfg, hls_segment_seconds), 30},
        {"hls:\n  segment_seconds: 2s\n", offsetof(struct cfg, hls_segment_seconds), 2},
        {"hls:\n  segment_seconds: 1.5s\n", offsetof(struct cfg, hls_segment_seconds), 1.5},
        {"hls:\n  segment_seconds: 1500ms\n", offsetof(struct cfg, hls_segment_seconds), 1.5},
        {"hls:\n  part_seconds: 333ms\n", offsetof(struct cfg, hls_part_seconds), 0.333},
        {"hls:\n  part_seconds: 0\n", offsetof(struct cfg, hls_part_seconds), 0},
        {"hls:\n  part_seconds: 0ms\n", offsetof(struct cfg, hls_part_seconds), 0},
        {"hls:\n  part_seconds: 2\n", offsetof(struct cfg, hls_part_seconds), 2},
    };
    static const struct {
        const char *doc;
        int want;
    } sizes[] = {
        {"rtmp:\n  max_message_bytes: 65536\n", 65536},
        {"rtmp:\n  max_message_bytes: 64KiB\n", 65536},
        {"rtmp:\n  max_message_bytes: 4MB\n", 4000000},
        {"rtmp:\n  max_message_bytes: 4MiB\n", 4194304},
        {"rtmp:\n  max_message_bytes: 100KB\n", 100000},
        {"rtmp:\n  max_message_bytes: 1.5MiB\n", 1572864},
        {"rtmp:\n  max_message_bytes: 70000B\n", 70000},
    };
    struct cfg *c;
    size_t i;

    for (i = 0; i < ARRAY_LEN(durations); i++) {
        c = parse(durations[i].doc, NULL);
        CHECK(c != NULL);
        if (c)
            CHECK(*(double *)((char *)c + durations[i].off) == durations[i].want);
        cfg_unref(c);
    }
    for (i = 0; i < ARRAY_LEN(sizes); i++) {
        c = parse(sizes[i].doc, NULL);
        CHECK(c != NULL);
        if (c)
            CHECK_EQ_INT(c->rtmp_max_message_bytes, sizes[i].want);
        cfg_unref(c);
    }
    c = parse("http:\n  cors_origin:\n", NULL);
    CHECK(c && !strcmp(c->http_cors_origin, ""));
    cfg_unref(c);
    c = parse("http:\n  cors_origin: \"null\"\n", NULL);
    CHECK(c && !strcmp(c->http_cors_origin, "null"));
    cfg_unref(c);
    c = parse("rtmp:\n  app: 123\n", NULL);
    CHECK(c && !strcmp(c->rtmp_app, "123"));
    cfg_unref(c);
    /* Aliases resolve to the anchored value. */
    c = parse("rtmp:\n  listen: &a \"[::]:1935\"\nhttp:\n  cors_origin: *a\n", NULL);
    CHECK(c && !strcmp(c->http_cors_origin, "[::]:1935"));
    cfg_unref(c);
}

static void test_bad_units(void)
{
    CHECK_FAILS("hls:\n  segment_seconds: 2sec\n", "t.yaml:2:21: ",
                "hls.segment_seconds: unknown unit 'sec'");
    CHECK_FAILS("hls:\n  part_seconds: 300us\n", "t.yaml:2:20: ", "unknown unit 'us'");
    CHECK_FAILS("hls:\n  segment_seconds: \"2s\"\n", "t.yaml:2:20: ",
                "expected a duration (2, 2s or 500ms), got the quoted string '2s'");
    CHECK_FAILS("hls:\n  segment_seconds: s\n", "t.yaml:2:20: ", "expected a duration");
    CHECK_FAILS("rtmp:\n  max_message_bytes: 4Mb\n", "t.yaml:2:23: ",
                "rtmp.max_message_bytes: unknown unit 'Mb'");
    CHECK_FAILS("rtmp:\n  max_message_bytes: 4 MiB\n", "t.yaml:2:22: ", "expected a size");
    CHECK_FAILS("rtmp:\n  chunk_size: 0.1234KB\n", "t.yaml:2:15: ", "0.1234KB is not a whole number");
    CHECK_FAILS("rtmp:\n  max_message_bytes: 4mb\n", "t.yaml:2:23: ", "unknown unit 'mb'");
    CHECK_FAILS("rtmp:\n  chunk_size: 1.0001KB\n", "t.yaml:2:15: ", "not a whole number");
    CHECK_FAILS("rtmp:\n  chunk_size: 1MiB\n", "t.yaml:2:15: ",
                "rtmp.chunk_size: must be from 128 to 64KiB, got 1MiB");
    CHECK_FAILS("hls:\n  part_seconds: 50ms\n", "t.yaml:2:17: ",
                "hls.part_seconds: must be 0 (off) or from 100ms to 2s, got 50ms");
    CHECK_FAILS("hls:\n  segment_seconds: 31s\n", "t.yaml:2:20: ", "from 500ms to 30s, got 31s");
}

static void test_syntax_errors(void)
{
    CHECK_FAILS("rtmp:\n  app: live\n   chunk_size: 5\n",
                "t.yaml:3:14: ", "YAML syntax error: mapping values are not allowed");
    CHECK_FAILS("rtmp:\n  app: \"live\n",
                "t.yaml:3:1: ", "YAML syntax error: found unexpected end");
    CHECK_FAILS("rtmp:\n  app: [live\n", "t.yaml:3:1: ", "YAML syntax error: did not find");
    /* Reader errors only carry a byte offset; it is turned into a line and column too. */
    CHECK_FAILS("log:\n  level: d\xff\n", "t.yaml:2:11: ", "YAML syntax error: invalid");
}

static void test_unknown_names(void)
{
    CHECK_FAILS("hls:\n  segmnt_seconds: 3\n", "t.yaml:2:3: ",
                "unknown key 'hls.segmnt_seconds' (did you mean 'hls.segment_seconds'?)");
    CHECK_FAILS("http:\n  threads: 2\n  segment_seconds: 3\n", "t.yaml:3:3: ",
                "unknown key 'http.segment_seconds' (did you mean 'hls.segment_seconds'?)");
    CHECK_FAILS("log:\n  zzzzzzzz: 1\n", "t.yaml:2:3: ", "unknown key 'log.zzzzzzzz'");
    CHECK(!fails_with("log:\n  zzzzzzzz: 1\n", "t.yaml", "did you mean"));
    CHECK_FAILS("\nrtp:\n  listen: \":1\"\n",
                "t.yaml:2:1: ", "unknown section 'rtp' (did you mean 'rtmp'?)");
    CHECK_FAILS("publsh: keys\n", "t.yaml:1:1: ", "unknown section 'publsh' (did you mean 'publish'?)");
    CHECK_FAILS("stream:\n  - name: a\n", "t.yaml:1:1: ", "(did you mean 'streams'?)");
    CHECK_FAILS("log:\n  level: info\nplayer: {}\n", "t.yaml:3:1: ", "unknown section 'player'");
    CHECK_FAILS("rtmp.app: live\n", "t.yaml:1:1: ", "unknown section 'rtmp.app' (write the key");
    /* A name with a line break stays on one message line (found by fuzz-config). */
    CHECK_FAILS("rtmp: {\"a\\nb\": 1}\n", "t.yaml:1:8: ", "unknown key 'a?b'\n");
    CHECK_FAILS("streams:\n  - {name: x, \"k\\ty\": 1}\n", "t.yaml:2:15: ", "unknown key 'k?y'\n");
    CHECK_FAILS("rtmp:\n  ? [a, b]\n  : 1\n", "t.yaml:2:5: ", "expected a key name, got a list");
    CHECK_FAILS("streams:\n  - name: a\n    kee: abcdefgh1\n", "t.yaml:3:5: ",
                "unknown key 'kee' in a stream entry (name, key, key_sha256, playback or record) (did you mean 'key'?)");
    /* record: true | false per stream; record.* keys (issue 9) */
    CHECK_FAILS("streams:\n  - name: a\n    key: abcdefgh1\n    record: maybe\n", "t.yaml:4:13: ",
                "streams: record must be true or false, got 'maybe'");
    CHECK_FAILS("record:\n  enabled: 1\n", "t.yaml:2:12: ", "record.enabled: expected true or false");
    CHECK_FAILS("record:\n  max_age: 10s\n", "t.yaml:2:12: ", "record.max_age: must be 0 (off) or from 60s");
    /* playback: public | signed; signed needs a secret (issue 7) */
    CHECK_FAILS("streams:\n  - name: a\n    key: abcdefgh1\n    playback: private\n", "t.yaml:4:15: ",
                "streams: playback must be public or signed, got 'private'");
    CHECK_FAILS("streams:\n  - name: a\n    key: abcdefgh1\n    playback: signed\n", "t.yaml:2:5: ",
                "streams: a: playback: signed needs http.signing_secret");
    CHECK(!fails_with("http:\n  signing_secret: 0123456789abcdef\nstreams:\n  - name: a\n"
                      "    key: abcdefgh1\n    playback: signed\n", "t.yaml", ""));
}

static void test_wrong_types(void)
{
    CHECK_FAILS("rtmp:\n  max_connections: big\n",
                "t.yaml:2:20: ", "rtmp.max_connections: expected an integer");
    CHECK_FAILS("hls:\n  window_segments: 2.5\n", "t.yaml:2:20: ",
                "hls.window_segments: expected an integer (a whole number), got '2.5'");
    CHECK_FAILS("http:\n  threads: \"4\"\n",
                "t.yaml:2:12: ", "expected an integer (a whole number), got the quoted string '4'");
    CHECK_FAILS("http:\n  threads: 0x10\n", "t.yaml:2:12: ", "expected an integer");
    CHECK_FAILS("http:\n  threads:\n", "t.yaml:2:11: ", "expected an integer");
    CHECK_FAILS("hls:\n  segment_seconds: nan\n", "t.yaml:2:20: ", "expected a duration");
    CHECK_FAILS("hls:\n  segment_seconds: 1.5.2\n", "t.yaml:2:20: ", "expected a duration");
    CHECK_FAILS("rtmp:\n  app: [a, b]\n",
                "t.yaml:2:8: ", "rtmp.app: expected a single value, got a list");
    CHECK_FAILS("rtmp: 5\n",
                "t.yaml:1:7: ", "section 'rtmp' must be a mapping of keys, got a scalar");
    CHECK_FAILS("rtmp:\n  app: \"a\\0b\"\n", "t.yaml:2:8: ", "rtmp.app: value contains a NUL byte");
    CHECK_FAILS("streams: townhall\n", "t.yaml:1:10: ", "streams: expected a list of entries");
    CHECK_FAILS("streams:\n  - townhall\n", "t.yaml:2:5: ",
                "streams: each entry must be a mapping with name and key, got a scalar");
    CHECK_FAILS("publish: [keys]\n", "t.yaml:1:10: ", "publish: expected a single value");
}

static void test_out_of_range(void)
{
    char doc[600];

    CHECK_FAILS("hls:\n  window_segments: 101\n",
                "t.yaml:2:20: ", "hls.window_segments: must be from 3 to 100, got 101");
    CHECK_FAILS("hls:\n  window_segments: 2\n", "t.yaml:2:20: ",
                "hls.window_segments: must be from 3 to 100, got 2 (RFC 8216 6.2.2: a live "
                "playlist lists at least three target durations)");
    CHECK_FAILS("rtmp:\n  max_message_bytes: 99999999999999999999999999\n",
                "t.yaml:2:22: ", "must be from 64KiB to 64MiB");
    CHECK_FAILS("http:\n  playlist_max_age: -1\n", "t.yaml:2:21: ", "must be from 0 to 60");
    CHECK_FAILS("hls:\n  segment_seconds: 0.4\n",
                "t.yaml:2:20: ", "must be from 500ms to 30s, got 0.4");
    CHECK_FAILS("hls:\n  segment_seconds: 1e999\n", "t.yaml:2:20: ", "must be from 500ms to 30s");
    snprintf(doc, sizeof(doc), "rtmp:\n  app: %0300d\n", 7);
    CHECK_FAILS(doc, "t.yaml:2:8: ", "rtmp.app: value is too long (300 bytes, at most 255)");
}

static void test_bad_enum_and_listen(void)
{
    CHECK_FAILS("log:\n  level: verbose\n", "t.yaml:2:10: ",
                "log.level: must be one of error, warn, info, debug, got 'verbose'");
    CHECK_FAILS("log:\n  level: INFO\n", "t.yaml:2:10: ", "must be one of");
    CHECK_FAILS("log:\n  level: \"\"\n", "t.yaml:2:10: ", "must be one of");
    CHECK_FAILS("publish: closed\n", "t.yaml:1:10: ", "publish: must be one of open, keys");
    CHECK_FAILS("rtmp:\n  listen: 1935\n",
                "t.yaml:2:11: ", "rtmp.listen: '1935' is not a listen address");
    CHECK_FAILS("http:\n  listen: \"localhost:65536\"\n",
                "t.yaml:2:11: ", "http.listen: 'localhost:65536' is not a listen address");
    CHECK_FAILS("http:\n  listen: \"::1:80\"\n", "t.yaml:2:11: ", "is not a listen address");
}

static void test_structure_errors(void)
{
    CHECK_FAILS("- rtmp\n- http\n", "t.yaml:1:1: ",
                "the top level must be a mapping of sections (rtmp, http, hls, log, process)");
    CHECK_FAILS("# c\nhello\n", "t.yaml:2:1: ", "the top level must be a mapping");
    CHECK_FAILS("rtmp:\n  app: a\n  chunk_size: 128\n  app: b\n",
                "t.yaml:4:3: ", "duplicate key 'rtmp.app' (first set at line 2)");
    CHECK_FAILS("log:\n  level: info\nhls: {}\nlog:\n  level: debug\n",
                "t.yaml:4:1: ", "duplicate section 'log' (first at line 1)");
    CHECK_FAILS("rtmp:\n  app: a\n---\nhls:\n  window_segments: 3\n",
                "t.yaml:4:1: ", "expected a single YAML document");
    CHECK_FAILS("rtmp:\n  app: a\n---\n[\n", "t.yaml:5:1: ", "YAML syntax error");
}

static void test_streams(void)
{
    static const char two[] = "streams:\n"
                              "  - name: townhall\n"
                              "    key: change-me\n"
                              "  - name: backstage\n"
                              "    key_sha256: "
                              "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n";
    struct cfg *c = parse(two, NULL);
    char fp[CFG_FINGERPRINT_LEN + 1];

    CHECK(c != NULL);
    if (!c)
        return;
    /* Listing streams without saying "publish" means keys. */
    CHECK_EQ_INT(c->publish, CFG_PUBLISH_KEYS);
    CHECK(cfg_find_key(c, "change-me", 9) == &c->streams[0]);
    CHECK(cfg_find_key(c, "test", 4) == &c->streams[1]); /* sha256("test") */
    CHECK(cfg_find_key(c, "townhall", 8) == NULL);
    CHECK(cfg_find_key(c, "change-m", 8) == NULL);
    CHECK(cfg_find_key(c, "", 0) == NULL);
    cfg_key_fingerprint("change-me", 9, fp);
    CHECK_EQ_STR(c->streams[0].fingerprint, fp);
    CHECK_EQ_INT(strlen(fp), CFG_FINGERPRINT_LEN);
    CHECK(strstr(fp, "change") == NULL);
    cfg_unref(c);

    c = parse("publish: open\nstreams:\n  - name: a\n    key: abcdefgh1\n", NULL);
    CHECK(c && c->publish == CFG_PUBLISH_OPEN);
    cfg_unref(c);

    CHECK_FAILS("streams:\n  - name: a\n    key: abcdefgh1\n  - name: b\n    key: abcdefgh2\n"
                "  - name: a\n    key: abcdefgh3\n",
                "t.yaml:6:11: ", "streams: duplicate stream name 'a' (first at line 2)");
    CHECK_FAILS("streams:\n  - name: a\n    key: abcdefgh1\n  - name: b\n    key: abcdefgh1\n",
                "t.yaml:5:10: ", "streams: stream 'b' has the same key as stream 'a' (line 3)");
    CHECK_FAILS("streams:\n  - name: a\n    key: test\n", "t.yaml:3:10: ",
                "streams: key must be 8 to 127 printable characters");
    CHECK_FAILS("streams:\n  - name: a\n    key: \"has space\"\n", "t.yaml:3:10: ",
                "(got 9 bytes)");
    CHECK(!fails_with("streams:\n  - name: a\n    key: \"has space\"\n", "t.yaml", "has space"));
    CHECK_FAILS("streams:\n  - name: a\n    key_sha256: abc\n", "t.yaml:3:17: ",
                "key_sha256 must be 64 hex digits");
    CHECK_FAILS("streams:\n  - name: ../x\n    key: abcdefgh1\n", "t.yaml:2:11: ",
                "streams: name '../x' is not a stream name");
    CHECK_FAILS("streams:\n  - key: abcdefgh1\n", "t.yaml:2:5: ", "streams: entry without a name");
    CHECK_FAILS("streams:\n  - name: a\n", "t.yaml:2:5: ", "streams: a: needs a key");
    CHECK_FAILS("streams:\n  - name: a\n    key: abcdefgh1\n    key_sha256: "
                "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
                "t.yaml:4:5: ", "give key or key_sha256, not both");
    CHECK_FAILS("publish: keys\n", "t.yaml:1:10: ", "publish: keys, but no streams are listed");
    CHECK_FAILS("publish: keys\nstreams: []\n", "t.yaml:1:10: ", "no streams are listed");
}

/* One run reports every mistake, each at its own place. */
static void test_five_mistakes(void)
{
    static const char doc[] = "rtmp:\n"
                              "  chunk_size: 2KB\n"          /* fine */
                              "  max_conections: 10\n"       /* 3:3 unknown key */
                              "http:\n"
                              "  listen: \"localhost\"\n"    /* 5:11 bad listen */
                              "  threads: many\n"            /* 6:12 wrong type */
                              "hls:\n"
                              "  segment_seconds: 45s\n"     /* 8:20 out of range */
                              "streams:\n"
                              "  - name: show\n"
                              "    key: abcdefgh1\n"
                              "  - name: show\n"             /* 12:11 duplicate name */
                              "    key: abcdefgh2\n";
    static const char *const want[] = {
        "t.yaml:3:3: unknown key 'rtmp.max_conections' (did you mean 'rtmp.max_connections'?)\n",
        "t.yaml:5:11: http.listen: 'localhost' is not a listen address",
        "t.yaml:6:12: http.threads: expected an integer (a whole number), got 'many'\n",
        "t.yaml:8:20: hls.segment_seconds: must be from 500ms to 30s, got 45s\n",
        "t.yaml:12:11: streams: duplicate stream name 'show' (first at line 10)\n",
    };
    struct cfg_errors e = {0};
    struct cfg *c = parse(doc, &e);
    const char *t = cfg_errors_str(&e), *prev = t;
    size_t i;

    CHECK(c == NULL);
    CHECK_EQ_INT(e.count, 5);
    for (i = 0; i < ARRAY_LEN(want); i++) {
        const char *at = strstr(t, want[i]);
        CHECK(at != NULL && at >= prev); /* in file order */
        if (!at)
            fprintf(stderr, "  missing \"%s\" in:\n%s", want[i], t);
        else
            prev = at;
    }
    cfg_unref(c);
    cfg_errors_reset(&e);
    CHECK_EQ_INT(nerrors("rtmp:\n  bogus: 1\n  bogus2: 2\nhls:\n  bogus3: 3\n"), 3);
}

static void collect(void *arg, const char *line)
{
    struct bytes *b = arg;

    bytes_printf(b, "%s\n", line);
}

static void test_diff(void)
{
    struct cfg *a = parse("streams:\n  - name: one\n    key: key-one-1\n  - name: two\n"
                          "    key: key-two-2\n  - name: gone\n    key: key-gone-3\n", NULL);
    struct cfg *b = parse("http:\n  listen: \":8080\"\nhls:\n  segment_seconds: 4\n"
                          "streams:\n  - name: one\n    key: key-one-1\n  - name: two\n"
                          "    key: key-two-changed\n  - name: new\n    key: key-new-4\n",
                          NULL);
    struct bytes out = {0};
    const char *t;

    CHECK(a && b);
    if (!a || !b)
        goto out;
    CHECK_EQ_INT(cfg_diff(a, a, collect, &out), 0);
    CHECK_EQ_INT(cfg_diff(a, b, collect, &out), 5);
    bytes_append(&out, "", 1);
    t = (const char *)out.data;
    CHECK(strstr(t, "http.listen 127.0.0.1:8080 -> :8080\n") != NULL);
    CHECK(strstr(t, "hls.segment_seconds 2s -> 4s\n") != NULL);
    CHECK(strstr(t, "stream two key changed (") != NULL);
    CHECK(strstr(t, "stream gone removed\n") != NULL);
    CHECK(strstr(t, "stream new added (key ") != NULL);
    CHECK(strstr(t, "key-") == NULL); /* never a key */
    fprintf(stderr, "%s", t);
out:
    bytes_reset(&out);
    cfg_unref(a);
    cfg_unref(b);
}

static void test_live(void)
{
    struct cfg *a = cfg_new(), *b = parse("log:\n  level: warn\n", NULL);
    struct cfg_live *l;
    const struct cfg *got, *got2;

    CHECK(a && b);
    if (!a || !b)
        return;
    l = cfg_live_new(a);
    got = cfg_live_get(l);
    CHECK(got == a);
    cfg_live_set(l, b);
    got2 = cfg_live_get(l);
    CHECK(got2 == b);
    /* The old snapshot stays valid for whoever still holds it. */
    CHECK_EQ_STR(got->log_level, "info");
    CHECK_EQ_STR(got2->log_level, "warn");
    cfg_unref(got);
    cfg_unref(got2);
    cfg_live_free(l);
}

static void test_load_files(void)
{
    char path[] = "/tmp/onair-test-config-XXXXXX";
    struct cfg_errors e = {0};
    struct cfg *c = NULL;
    char want[600];
    FILE *f;
    int fd;

    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    f = fdopen(fd, "w");
    fputs("rtmp:\n  app: from-file\nhls:\n  window_segments: 1000\n", f);
    fclose(f);
    CHECK_EQ_INT(cfg_load(path, &c, &e), -EINVAL);
    snprintf(want, sizeof(want), "%s:4:20: hls.window_segments: must be from 3 to 100", path);
    CHECK(!strncmp(cfg_errors_str(&e), want, strlen(want)));
    cfg_errors_reset(&e);

    /* What the file names is checked by cfg_load (not by cfg_parse). */
    f = fopen(path, "w");
    fputs("http:\n  player_js: /nonexistent/hls.min.js\n  listen: \"no-such-host.invalid:80\"\n", f);
    fclose(f);
    CHECK_EQ_INT(cfg_load(path, &c, &e), -EINVAL);
    CHECK_EQ_INT(e.count, 2);
    snprintf(want, sizeof(want),
             "%s:2:14: http.player_js: cannot read '/nonexistent/hls.min.js': No such file", path);
    CHECK(strstr(cfg_errors_str(&e), want) != NULL);
    snprintf(want, sizeof(want), "%s:3:11: http.listen: cannot resolve 'no-such-host.invalid'",
             path);
    CHECK(strstr(cfg_errors_str(&e), want) != NULL);
    cfg_errors_reset(&e);
    CHECK_EQ_INT(cfg_parse("x", "http:\n  player_js: /nonexistent/hls.min.js\n", 39, &c, &e), 0);
    cfg_unref(c);
    c = NULL;

    f = fopen(path, "w");
    fputs("rtmp:\n  app: from-file\n", f);
    fclose(f);
    CHECK_EQ_INT(cfg_load(path, &c, &e), 0);
    CHECK(c && !strcmp(c->rtmp_app, "from-file"));
    cfg_unref(c);
    c = NULL;
    unlink(path);

    CHECK_EQ_INT(cfg_load("/nonexistent/dir/onair.yaml", &c, &e), -ENOENT);
    CHECK_EQ_STR(cfg_errors_str(&e),
                 "/nonexistent/dir/onair.yaml: cannot open: No such file or directory\n");
    cfg_errors_reset(&e);
    CHECK_EQ_INT(cfg_load("/tmp", &c, &e), -EISDIR);
    CHECK_EQ_STR(cfg_errors_str(&e), "/tmp: cannot read: Is a directory\n");
    cfg_errors_reset(&e);
    CHECK_EQ_INT(cfg_load("/nonexistent/onair.yaml", &c, NULL), -ENOENT);
    CHECK(c == NULL);
}

/* Every prefix of a valid document either parses or fails with positioned messages. */
static void test_every_prefix(void)
{
    struct cfg_errors e = {0};
    size_t n;

    for (n = 0; n <= strlen(full_doc); n++) {
        char *copy = malloc(n ? n : 1); /* not NUL-terminated: ASan checks we respect LEN */
        struct cfg *c = NULL;
        int r;
        memcpy(copy, full_doc, n);
        r = cfg_parse("t.yaml", copy, n, &c, &e);
        CHECK((r == 0 && c && e.count == 0) ||
              (r < 0 && !c && e.count > 0 && !strncmp(cfg_errors_str(&e), "t.yaml:", 7)));
        cfg_unref(c);
        cfg_errors_reset(&e);
        free(copy);
    }
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *text;
    long n;

    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    text = calloc(1, (size_t)n + 1);
    if (text && fread(text, 1, (size_t)n, f) != (size_t)n) {
        free(text);
        text = NULL;
    }
    fclose(f);
    return text;
}

/* The shipped example validates, equals the defaults and shows every key of the table. */
static void test_example_file(void)
{
    struct bytes md = {0};
    struct cfg_errors e = {0};
    struct cfg def, *c = NULL;
    char *text = slurp(example_path);
    const char *p;

    cfg_defaults(&def);
    CHECK_EQ_INT(cfg_load(example_path, &c, &e), 0);
    if (e.count)
        fprintf(stderr, "  %s", cfg_errors_str(&e));
    CHECK(c && cfg_same(c, &def));
    cfg_unref(c);
    cfg_errors_reset(&e);
    CHECK(text != NULL);
    if (!text)
        return;
    CHECK_EQ_INT(cfg_reference_markdown(&md), 0);
    CHECK_EQ_INT(bytes_append(&md, "", 1), 0);
    for (p = (const char *)md.data; (p = strstr(p, "\n| `")) != NULL; p++) {
        char key[64], section[80], leaf[80];
        const char *dot, *sec;

        if (sscanf(p, "\n| `%63[^`]`", key) != 1)
            continue;
        dot = strchr(key, '.');
        if (!dot) {
            snprintf(leaf, sizeof(leaf), "\n%s:", key); /* top level; may be commented out */
            if (!strstr(text, leaf)) {
                snprintf(leaf, sizeof(leaf), "\n# %s:", key);
                CHECK(strstr(text, leaf) != NULL);
            }
            continue;
        }
        snprintf(section, sizeof(section), "\n%.*s:\n", (int)(dot - key), key);
        snprintf(leaf, sizeof(leaf), "\n  %s:", dot + 1);
        sec = strstr(text, section);
        CHECK(sec != NULL);
        /* The key is written under its own section, before the next section starts. */
        if (sec) {
            const char *next = sec + 1, *at = strstr(sec, leaf);
            while ((next = strchr(next, '\n')) && next[1] && (next[1] == ' ' || next[1] == '#' ||
                                                              next[1] == '\n'))
                next++;
            CHECK(at != NULL && (!next || at < next));
            if (!at || (next && at > next))
                fprintf(stderr, "  example: %s not under %.*s:\n", key, (int)(dot - key), key);
        }
    }
    bytes_reset(&md);
    free(text);
}

/* The README's reference is the table's, byte for byte (regenerate: onair --config-reference). */
static void test_readme_reference(void)
{
    static const char begin[] = "<!-- config-reference: generated by `onair --config-reference`,"
                                " checked by unit-config -->\n";
    static const char end[] = "<!-- end config-reference -->";
    struct bytes md = {0};
    char *text = slurp(readme_path);
    const char *a, *b;

    CHECK(text != NULL);
    if (!text)
        return;
    CHECK_EQ_INT(cfg_reference_markdown(&md), 0);
    a = strstr(text, begin);
    b = a ? strstr(a, end) : NULL;
    CHECK(a && b);
    if (a && b) {
        a += strlen(begin);
        CHECK((size_t)(b - a) == md.len && !memcmp(a, md.data, md.len));
        if ((size_t)(b - a) != md.len || memcmp(a, md.data, md.len))
            fprintf(stderr, "  README.md's config reference differs from the table; run\n"
                            "  build/onair --config-reference and paste it between the "
                            "markers\n");
    }
    bytes_reset(&md);
    free(text);
}

/* record.*: booleans, 64-bit sizes, day/hour units, per-stream overrides (issue 9). */
static void test_record_keys(void)
{
    struct cfg_errors e = {0};
    struct cfg *c = NULL;
    static const char doc[] = "record:\n  enabled: yes\n  max_bytes: 50GiB\n  max_age: 7d\n"
                              "streams:\n  - name: a\n    key: abcdefgh1\n    record: false\n"
                              "  - name: b\n    key: abcdefgh2\n";

    CHECK_EQ_INT(cfg_parse("t.yaml", doc, sizeof(doc) - 1, &c, &e), 0);
    if (!c)
        return;
    CHECK(c->record_enabled);
    CHECK(c->record_max_bytes == 50LL * 1073741824LL);
    CHECK(c->record_max_age_s == 7 * 86400.0);
    CHECK_EQ_STR(c->record_path, "./recordings");
    CHECK(!cfg_records(c, "a")); /* its entry says no */
    CHECK(cfg_records(c, "b"));  /* record.enabled */
    CHECK(cfg_records(c, "unlisted"));
    cfg_unref(c);
    cfg_errors_reset(&e);
}

static void test_split_listen(void)
{
    static const struct {
        const char *in;
        int rc;
        const char *host;
        int port;
    } cases[] = {
        {"127.0.0.1:1935", 0, "127.0.0.1", 1935},
        {"localhost:8080", 0, "localhost", 8080},
        {":1935", 0, "", 1935},
        {":0", 0, "", 0},
        {"[::1]:443", 0, "::1", 443},
        {"[::]:65535", 0, "::", 65535},
        {"[fe80::1%eth0]:80", 0, "fe80::1%eth0", 80},
        {"host:65536", -EINVAL, "", 0},
        {"host:", -EINVAL, "", 0},
        {"host", -EINVAL, "", 0},
        {"1935", -EINVAL, "", 0},
        {"", -EINVAL, "", 0},
        {"::1:80", -EINVAL, "", 0},
        {"[::1]80", -EINVAL, "", 0},
        {"[::1]", -EINVAL, "", 0},
        {"[]:80", -EINVAL, "", 0},
        {"[1.2.3.4]:80", -EINVAL, "", 0},
        {"host:-1", -EINVAL, "", 0},
        {"host:+80", -EINVAL, "", 0},
        {"host:8 0", -EINVAL, "", 0},
        {"ho st:80", -EINVAL, "", 0},
        {"host:000080", -EINVAL, "", 0},
    };
    char host[64];
    size_t i;
    int port;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        port = -1;
        CHECK_EQ_INT(cfg_split_listen(cases[i].in, host, sizeof(host), &port), cases[i].rc);
        CHECK_EQ_STR(host, cases[i].host);
        if (cases[i].rc == 0)
            CHECK_EQ_INT(port, cases[i].port);
    }
    CHECK_EQ_INT(cfg_split_listen("example.org:80", host, 11, &port), -EINVAL);
    CHECK_EQ_INT(cfg_split_listen("example.org:80", host, 12, &port), 0);
    CHECK_EQ_STR(host, "example.org");
    CHECK_EQ_INT(cfg_split_listen(NULL, host, sizeof(host), &port), -EINVAL);
}

/* Listen hosts resolve to passive TCP addresses on the requested port. */
static void test_resolve_listen(void)
{
    struct addrinfo *ai = NULL;
    const char *why = NULL;

    CHECK_EQ_INT(cfg_resolve_listen("127.0.0.1", 1935, &ai, &why), 0);
    CHECK(ai && ai->ai_family == AF_INET && ai->ai_socktype == SOCK_STREAM);
    if (ai && ai->ai_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ai->ai_addr;

        CHECK_EQ_INT(ntohs(in->sin_port), 1935);
        CHECK_EQ_INT(ntohl(in->sin_addr.s_addr), 0x7f000001);
    }
    freeaddrinfo(ai);
    ai = NULL;
    CHECK_EQ_INT(cfg_resolve_listen("::1", 0, &ai, &why), 0);
    CHECK(ai && ai->ai_family == AF_INET6);
    freeaddrinfo(ai);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        example_path = argv[1];
    if (argc > 2)
        readme_path = argv[2];
    RUN(test_defaults);
    RUN(test_empty_means_defaults);
    RUN(test_defaults_round_trip);
    RUN(test_full_document);
    RUN(test_partial_over_defaults);
    RUN(test_value_forms);
    RUN(test_bad_units);
    RUN(test_syntax_errors);
    RUN(test_unknown_names);
    RUN(test_wrong_types);
    RUN(test_out_of_range);
    RUN(test_bad_enum_and_listen);
    RUN(test_structure_errors);
    RUN(test_streams);
    RUN(test_five_mistakes);
    RUN(test_diff);
    RUN(test_live);
    RUN(test_load_files);
    RUN(test_every_prefix);
    RUN(test_record_keys);
    RUN(test_split_listen);
    RUN(test_resolve_listen);
    RUN(test_example_file);
    RUN(test_readme_reference);
    return harness_done();
}
