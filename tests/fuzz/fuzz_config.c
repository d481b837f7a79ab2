/*
 * Fuzz target for the config loader: any bytes either give a snapshot and no
 * messages, or no snapshot and at least one "fuzz.yaml:..." message per line;
 * a snapshot's values stay inside the table's limits and diff against the
 * defaults without trouble.
 */
#include <string.h>

#include "../../config/config.h"
#include "fuzz_common.h"

static void count_line(void *arg, const char *line)
{
    FUZZ_CHECK(line[0] != '\0');
    ++*(int *)arg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct cfg_errors errs = {0};
    struct cfg *c = NULL, *def = cfg_new();
    int rc = cfg_parse("fuzz.yaml", (const char *)data, size, &c, &errs);

    FUZZ_CHECK(def != NULL);
    if (rc == 0) {
        int n = 0;

        FUZZ_CHECK(c != NULL && errs.count == 0);
        FUZZ_CHECK(c->rtmp_chunk_size >= 128 && c->rtmp_chunk_size <= 65536);
        FUZZ_CHECK(c->hls_segment_seconds >= 0.5 && c->hls_segment_seconds <= 30);
        FUZZ_CHECK(c->hls_part_seconds == 0 ||
                   (c->hls_part_seconds >= 0.1 && c->hls_part_seconds <= 2.0));
        FUZZ_CHECK(c->publish != CFG_PUBLISH_KEYS || c->nstreams > 0);
        for (size_t i = 0; i < c->nstreams; i++) {
            FUZZ_CHECK(strlen(c->streams[i].name) > 0);
            FUZZ_CHECK(cfg_find_key(c, "", 0) == NULL);
        }
        FUZZ_CHECK(cfg_diff(def, c, count_line, &n) == n);
        cfg_unref(c);
    } else {
        const char *t = cfg_errors_str(&errs);

        FUZZ_CHECK(c == NULL && errs.count > 0);
        /* Every message line names the document. */
        for (const char *p = t; *p; p = strchr(p, '\n') + 1) {
            FUZZ_CHECK(strncmp(p, "fuzz.yaml:", 10) == 0);
            FUZZ_CHECK(strchr(p, '\n') != NULL);
        }
    }
    cfg_errors_reset(&errs);
    cfg_unref(def);
    return 0;
}
