/*
 * Fuzz target for the recording playlist readers (record/playlist.c): what
 * start-up recovery and the listings read back from disk. Invariants: a
 * closed playlist is a playlist that is ended, lists no more segments than
 * the input, and closing it again changes nothing.
 */
#include <errno.h>
#include <string.h>

#include "../../record/record_internal.h"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    struct rec_summary in, out;
    struct bytes closed = {0}, again = {0};
    int rc;

    if (rec_summarize_playlist(text, size, &in) < 0)
        return 0;
    rc = rec_close_playlist_text(text, size, &closed);
    FUZZ_CHECK(rc == 0 || rc == 1 || rc == -ENOMEM);
    if (rc == 0) {
        FUZZ_CHECK(rec_summarize_playlist((const char *)closed.data, closed.len, &out) == 0);
        FUZZ_CHECK(out.ended);
        FUZZ_CHECK(out.segments <= in.segments);
        FUZZ_CHECK(rec_close_playlist_text((const char *)closed.data, closed.len, &again) == 1);
    } else if (rc == 1) {
        FUZZ_CHECK(in.ended);
    }
    bytes_reset(&closed);
    bytes_reset(&again);
    return 0;
}
