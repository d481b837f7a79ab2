/*
 * Unit tests for config/: defaults, a full document, every error kind with its
 * exact "name:LINE:COL:" position, listen address splitting, cfg_load on real
 * files, and the shipped example config (path in argv[1]) equalling defaults.
 */
#include <errno.h>
#include <stdbool.h>
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

static int parse(const char *yaml, struct cfg *c, char *err, size_t errlen)
{
    return cfg_parse("t.yaml", yaml, strlen(yaml), c, err, errlen);
}

/* True if YAML fails with -EINVAL, the message starts with WHERE and contains WORDS. */
static bool fails_with(const char *yaml, const char *where, const char *words)
{
    struct cfg c;
    char err[512];
    int r = parse(yaml, &c, err, sizeof(err));

    if (r == -EINVAL && !strncmp(err, where, strlen(where)) && strstr(err, words))
        return true;
    fprintf(stderr, "  input: \"%s\"\n  rc %d, err \"%s\"\n  want \"%s...%s\"\n", yaml, r, err,
            where, words);
    return false;
}

#define CHECK_FAILS(yaml, where, words) CHECK(fails_with(yaml, where, words))

static bool cfg_same(const struct cfg *a, const struct cfg *b)
{
    return !strcmp(a->rtmp_listen, b->rtmp_listen) && !strcmp(a->rtmp_app, b->rtmp_app) &&
           a->rtmp_chunk_size == b->rtmp_chunk_size &&
           a->rtmp_max_message_bytes == b->rtmp_max_message_bytes &&
           a->rtmp_max_connections == b->rtmp_max_connections &&
           a->http_max_connections == b->http_max_connections &&
           !strcmp(a->http_listen, b->http_listen) && a->http_threads == b->http_threads &&
           !strcmp(a->http_cors_origin, b->http_cors_origin) &&
           a->http_playlist_max_age == b->http_playlist_max_age &&
           !strcmp(a->http_player_js, b->http_player_js) &&
           a->hls_segment_seconds == b->hls_segment_seconds &&
           a->hls_window_segments == b->hls_window_segments && !strcmp(a->log_level, b->log_level);
}

static void test_defaults(void)
{
    struct cfg c;

    memset(&c, 0x5a, sizeof(c));
    cfg_defaults(&c);
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
    CHECK_EQ_INT(c.hls_window_segments, 6);
    CHECK_EQ_STR(c.log_level, "info");
}

/* Empty input, comments, a bare "---" and empty sections all mean "defaults". */
static void test_empty_means_defaults(void)
{
    static const char *const docs[] = {
        "", "# nothing\n\n   # here\n", "---\n", "---\n...\n", "rtmp:\nhttp: ~\nlog:\n",
    };
    struct cfg def, c;
    char err[256];
    size_t i;

    cfg_defaults(&def);
    for (i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        memset(&c, 0, sizeof(c));
        CHECK_EQ_INT(parse(docs[i], &c, err, sizeof(err)), 0);
        CHECK_EQ_STR(err, "");
        CHECK(cfg_same(&c, &def));
    }
    CHECK_EQ_INT(cfg_parse("t.yaml", NULL, 0, &c, err, sizeof(err)), 0);
    CHECK(cfg_same(&c, &def));
}

static const char full_doc[] = "# every key, none at its default\n"
                               "rtmp:\n"
                               "  listen: \":1936\"\n"
                               "  app: 'studio'\n"
                               "  chunk_size: 128\n"
                               "  max_message_bytes: 67108864\n"
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
                               "  window_segments: 100\n"
                               "log: {level: debug}\n";

static void test_full_document(void)
{
    struct cfg c;
    char err[256];

    CHECK_EQ_INT(parse(full_doc, &c, err, sizeof(err)), 0);
    CHECK_EQ_STR(err, "");
    CHECK_EQ_STR(c.rtmp_listen, ":1936");
    CHECK_EQ_STR(c.rtmp_app, "studio");
    CHECK_EQ_INT(c.rtmp_chunk_size, 128);
    CHECK_EQ_INT(c.rtmp_max_message_bytes, 67108864);
    CHECK_EQ_INT(c.rtmp_max_connections, 42);
    CHECK_EQ_STR(c.http_listen, "[::1]:0");
    CHECK_EQ_INT(c.http_threads, 64);
    CHECK_EQ_STR(c.http_cors_origin, "https://example.org");
    CHECK_EQ_INT(c.http_playlist_max_age, 0);
    CHECK_EQ_STR(c.http_player_js, "/usr/share/hls.js/hls.min.js");
    CHECK(c.hls_segment_seconds == 4.0);
    CHECK_EQ_INT(c.hls_window_segments, 100);
    CHECK_EQ_STR(c.log_level, "debug");
}

/* A document is applied over the defaults, not over what C held before. */
static void test_partial_over_defaults(void)
{
    struct cfg def, c;
    char err[256];

    cfg_defaults(&def);
    CHECK_EQ_INT(parse(full_doc, &c, err, sizeof(err)), 0);
    CHECK_EQ_INT(parse("hls:\n  window_segments: 10\n", &c, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.hls_window_segments, 10);
    c.hls_window_segments = def.hls_window_segments;
    CHECK(cfg_same(&c, &def));
}

static void test_value_forms(void)
{
    struct cfg c;
    char err[256];

    CHECK_EQ_INT(parse("hls:\n  segment_seconds: .5\n", &c, err, sizeof(err)), 0);
    CHECK(c.hls_segment_seconds == 0.5);
    CHECK_EQ_INT(parse("hls:\n  segment_seconds: 3e1\n", &c, err, sizeof(err)), 0);
    CHECK(c.hls_segment_seconds == 30.0);
    CHECK_EQ_INT(parse("http:\n  cors_origin:\n", &c, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.http_cors_origin, "");
    CHECK_EQ_INT(parse("http:\n  cors_origin: ~\n", &c, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.http_cors_origin, "");
    CHECK_EQ_INT(parse("http:\n  cors_origin: \"null\"\n", &c, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.http_cors_origin, "null");
    CHECK_EQ_INT(parse("rtmp:\n  app: 123\n", &c, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.rtmp_app, "123");
    CHECK_EQ_INT(parse("rtmp: {listen: \":0\"}\n", &c, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.rtmp_listen, ":0");
    /* Aliases resolve to the anchored value. */
    CHECK_EQ_INT(parse("rtmp:\n  listen: &a \"[::]:1935\"\nhttp:\n  cors_origin: *a\n", &c, err,
                       sizeof(err)),
                 0);
    CHECK_EQ_STR(c.http_cors_origin, "[::]:1935");
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
    struct cfg c;
    char err[256];

    CHECK_FAILS("hls:\n  segmnt_seconds: 3\n", "t.yaml:2:3: ",
                "unknown key 'hls.segmnt_seconds' (did you mean 'hls.segment_seconds'?)");
    CHECK_FAILS("http:\n  threads: 2\n  segment_seconds: 3\n", "t.yaml:3:3: ",
                "unknown key 'http.segment_seconds' (did you mean 'hls.segment_seconds'?)");
    CHECK_FAILS("log:\n  zzzzzzzz: 1\n", "t.yaml:2:3: ", "unknown key 'log.zzzzzzzz'");
    CHECK(parse("log:\n  zzzzzzzz: 1\n", &c, err, sizeof(err)) == -EINVAL &&
          !strstr(err, "did you mean")); /* nothing close enough to suggest */
    CHECK_FAILS("\nrtp:\n  listen: \":1\"\n",
                "t.yaml:2:1: ", "unknown section 'rtp' (did you mean 'rtmp'?)");
    CHECK_FAILS("log:\n  level: info\nplayer: {}\n", "t.yaml:3:1: ", "unknown section 'player'");
    CHECK_FAILS("rtmp.app: live\n", "t.yaml:1:1: ", "unknown section 'rtmp.app' (write the key");
    CHECK_FAILS("rtmp:\n  ? [a, b]\n  : 1\n", "t.yaml:2:5: ", "expected a key name, got a list");
}

static void test_wrong_types(void)
{
    CHECK_FAILS("rtmp:\n  chunk_size: big\n",
                "t.yaml:2:15: ", "rtmp.chunk_size: expected an integer");
    CHECK_FAILS("hls:\n  window_segments: 2.5\n", "t.yaml:2:20: ",
                "hls.window_segments: expected an integer (a whole number), got '2.5'");
    CHECK_FAILS("http:\n  threads: \"4\"\n",
                "t.yaml:2:12: ", "expected an integer (a whole number), got the quoted string '4'");
    CHECK_FAILS("http:\n  threads: 0x10\n", "t.yaml:2:12: ", "expected an integer");
    CHECK_FAILS("http:\n  threads:\n", "t.yaml:2:11: ", "expected an integer");
    CHECK_FAILS("hls:\n  segment_seconds: fast\n",
                "t.yaml:2:20: ", "hls.segment_seconds: expected a number, got 'fast'");
    CHECK_FAILS("hls:\n  segment_seconds: nan\n", "t.yaml:2:20: ", "expected a number");
    CHECK_FAILS("hls:\n  segment_seconds: 1.5.2\n", "t.yaml:2:20: ", "expected a number");
    CHECK_FAILS("rtmp:\n  app: [a, b]\n",
                "t.yaml:2:8: ", "rtmp.app: expected a single value, got a list");
    CHECK_FAILS("rtmp: 5\n",
                "t.yaml:1:7: ", "section 'rtmp' must be a mapping of keys, got a scalar");
    CHECK_FAILS("rtmp:\n  app: \"a\\0b\"\n", "t.yaml:2:8: ", "rtmp.app: value contains a NUL byte");
}

static void test_out_of_range(void)
{
    char doc[600];

    CHECK_FAILS("hls:\n  window_segments: 101\n",
                "t.yaml:2:20: ", "hls.window_segments: must be between 2 and 100, got 101");
    CHECK_FAILS("hls:\n  window_segments: 1\n", "t.yaml:2:20: ", "must be between 2 and 100");
    CHECK_FAILS("rtmp:\n  max_message_bytes: 99999999999999999999999999\n",
                "t.yaml:2:22: ", "must be between 65536 and 67108864");
    CHECK_FAILS("http:\n  playlist_max_age: -1\n", "t.yaml:2:21: ", "must be between 0 and 60");
    CHECK_FAILS("hls:\n  segment_seconds: 0.4\n",
                "t.yaml:2:20: ", "must be between 0.5 and 30, got 0.4");
    CHECK_FAILS("hls:\n  segment_seconds: 1e999\n", "t.yaml:2:20: ", "must be between 0.5 and 30");
    snprintf(doc, sizeof(doc), "rtmp:\n  app: %0300d\n", 7);
    CHECK_FAILS(doc, "t.yaml:2:8: ", "rtmp.app: value is too long (300 bytes, at most 255)");
}

static void test_bad_enum_and_listen(void)
{
    CHECK_FAILS("log:\n  level: verbose\n", "t.yaml:2:10: ",
                "log.level: must be one of error, warn, info, debug, got 'verbose'");
    CHECK_FAILS("log:\n  level: INFO\n", "t.yaml:2:10: ", "must be one of");
    CHECK_FAILS("log:\n  level: \"\"\n", "t.yaml:2:10: ", "must be one of");
    CHECK_FAILS("rtmp:\n  listen: 1935\n",
                "t.yaml:2:11: ", "rtmp.listen: '1935' is not a listen address");
    CHECK_FAILS("http:\n  listen: \"localhost:65536\"\n",
                "t.yaml:2:11: ", "http.listen: 'localhost:65536' is not a listen address");
    CHECK_FAILS("http:\n  listen: \"::1:80\"\n", "t.yaml:2:11: ", "is not a listen address");
}

static void test_structure_errors(void)
{
    CHECK_FAILS("- rtmp\n- http\n", "t.yaml:1:1: ",
                "the top level must be a mapping of sections (rtmp, http, hls, log), got a list");
    CHECK_FAILS("# c\nhello\n", "t.yaml:2:1: ", "the top level must be a mapping");
    CHECK_FAILS("rtmp:\n  app: a\n  chunk_size: 128\n  app: b\n",
                "t.yaml:4:3: ", "duplicate key 'rtmp.app' (first set at line 2)");
    CHECK_FAILS("log:\n  level: info\nhls: {}\nlog:\n  level: debug\n",
                "t.yaml:4:1: ", "duplicate section 'log' (first at line 1)");
    CHECK_FAILS("rtmp:\n  app: a\n---\nhls:\n  window_segments: 3\n",
                "t.yaml:4:1: ", "expected a single YAML document");
    CHECK_FAILS("rtmp:\n  app: a\n---\n[\n", "t.yaml:5:1: ", "YAML syntax error");
}

/* A failed parse leaves the caller's struct alone (a bad reload keeps the old config). */
static void test_failure_keeps_struct(void)
{
    struct cfg c, before;
    char err[256];

    cfg_defaults(&c);
    c.http_threads = 7;
    before = c;
    CHECK_EQ_INT(parse("http:\n  threads: 9\n  bogus: 1\n", &c, err, sizeof(err)), -EINVAL);
    CHECK(cfg_same(&c, &before));
}

static void test_small_error_buffers(void)
{
    struct cfg c;
    char err[12];

    memset(err, 'x', sizeof(err));
    CHECK_EQ_INT(parse("log:\n  level: loud\n", &c, err, 10), -EINVAL);
    CHECK_EQ_STR(err, "t.yaml:2:");
    CHECK_EQ_INT(err[11], 'x');
    CHECK_EQ_INT(parse("log:\n  level: loud\n", &c, NULL, 0), -EINVAL);
    CHECK_EQ_INT(cfg_load("/nonexistent/onair.yaml", &c, NULL, 0), -ENOENT);
}

/* Every prefix of a valid document either parses or fails with a positioned message. */
static void test_every_prefix(void)
{
    struct cfg c;
    char err[512];
    size_t n;

    for (n = 0; n <= strlen(full_doc); n++) {
        char *copy = malloc(n ? n : 1); /* not NUL-terminated: ASan checks we respect LEN */
        int r;
        memcpy(copy, full_doc, n);
        r = cfg_parse("t.yaml", copy, n, &c, err, sizeof(err));
        CHECK(r == 0 || (r == -EINVAL && !strncmp(err, "t.yaml:", 7)));
        free(copy);
    }
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

static void test_load_files(void)
{
    char path[] = "/tmp/onair-test-config-XXXXXX";
    char err[512], want[600];
    struct cfg c;
    FILE *f;
    int fd;

    fd = mkstemp(path);
    CHECK(fd >= 0);
    if (fd < 0)
        return;
    f = fdopen(fd, "w");
    fputs("rtmp:\n  app: from-file\nhls:\n  window_segments: 1000\n", f);
    fclose(f);
    CHECK_EQ_INT(cfg_load(path, &c, err, sizeof(err)), -EINVAL);
    snprintf(want, sizeof(want), "%s:4:20: hls.window_segments: must be between 2 and 100", path);
    CHECK(!strncmp(err, want, strlen(want)));

    f = fopen(path, "w");
    fputs("rtmp:\n  app: from-file\n", f);
    fclose(f);
    CHECK_EQ_INT(cfg_load(path, &c, err, sizeof(err)), 0);
    CHECK_EQ_STR(c.rtmp_app, "from-file");
    unlink(path);

    CHECK_EQ_INT(cfg_load("/nonexistent/dir/onair.yaml", &c, err, sizeof(err)), -ENOENT);
    CHECK_EQ_STR(err, "/nonexistent/dir/onair.yaml: cannot open: No such file or directory");
    CHECK_EQ_INT(cfg_load("/tmp", &c, err, sizeof(err)), -EISDIR);
    CHECK_EQ_STR(err, "/tmp: cannot read: Is a directory");
}

/* The shipped example documents every key and sets each to its default. */
static void test_example_file(void)
{
    static const char *const sections[] = {"rtmp:", "http:", "hls:", "log:"};
    static const char *const leaves[] = {
        "  listen:",          "  app:",
        "  chunk_size:",      "  max_message_bytes:",
        "  max_connections:", "  threads:",
        "  cors_origin:",     "  playlist_max_age:",
        "  player_js:",       "  segment_seconds:",
        "  window_segments:", "  level:",
    };
    struct cfg def, c;
    char err[512], text[8192];
    size_t i, n;
    FILE *f;

    cfg_defaults(&def);
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(cfg_load(example_path, &c, err, sizeof(err)), 0);
    if (err[0])
        fprintf(stderr, "  %s\n", err);
    CHECK(cfg_same(&c, &def));

    f = fopen(example_path, "r");
    CHECK(f != NULL);
    if (!f)
        return;
    n = fread(text, 1, sizeof(text) - 1, f);
    text[n] = '\0';
    fclose(f);
    for (i = 0; i < sizeof(sections) / sizeof(sections[0]); i++)
        CHECK(strstr(text, sections[i]) != NULL);
    for (i = 0; i < sizeof(leaves) / sizeof(leaves[0]); i++)
        CHECK(strstr(text, leaves[i]) != NULL);
    /* Both listen keys are present, not just one of them. */
    CHECK(strstr(strstr(text, "  listen:") + 1, "  listen:") != NULL);
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
    RUN(test_defaults);
    RUN(test_empty_means_defaults);
    RUN(test_full_document);
    RUN(test_partial_over_defaults);
    RUN(test_value_forms);
    RUN(test_syntax_errors);
    RUN(test_unknown_names);
    RUN(test_wrong_types);
    RUN(test_out_of_range);
    RUN(test_bad_enum_and_listen);
    RUN(test_structure_errors);
    RUN(test_failure_keeps_struct);
    RUN(test_small_error_buffers);
    RUN(test_every_prefix);
    RUN(test_split_listen);
    RUN(test_resolve_listen);
    RUN(test_load_files);
    RUN(test_example_file);
    return harness_done();
}
