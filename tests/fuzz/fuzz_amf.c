/*
 * Fuzz target for the AMF0 decoder: decodes values back to back as in a
 * command message, checks the tree stays within its caps, exercises the
 * lookups, and round-trips scalars through the encoders.
 */
#include <errno.h>
#include <string.h>

#include "../../ingest/rtmp_internal.h"
#include "fuzz_common.h"

/* Counts values and checks the depth cap; returns the number of nodes. */
static size_t walk(const struct amf_value *v, int depth)
{
    size_t n = 1;

    FUZZ_CHECK(depth <= AMF_MAX_DEPTH);
    if (v->type == AMF_STRING || v->type == AMF_LONG_STRING) {
        FUZZ_CHECK(v->str != NULL);
        FUZZ_CHECK(v->str[v->str_len] == '\0');
    }
    for (size_t i = 0; i < v->nprops; i++) {
        FUZZ_CHECK(v->props[i].key != NULL);
        FUZZ_CHECK(amf_get(v, v->props[i].key) != NULL);
        n += walk(&v->props[i].value, depth + 1);
    }
    for (size_t i = 0; i < v->nitems; i++)
        n += walk(&v->items[i], depth + 1);
    return n;
}

static void roundtrip_scalar(const struct amf_value *v)
{
    struct bytes out = {0};
    struct amf_value back;
    size_t used = 0;
    int rc;

    if (v->type == AMF_NUMBER)
        rc = amf_put_number(&out, v->number);
    else if (v->type == AMF_BOOLEAN)
        rc = amf_put_bool(&out, v->boolean);
    else if (v->type == AMF_STRING && strlen(v->str) == v->str_len)
        rc = amf_put_string(&out, v->str);
    else
        return;
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(amf_decode(out.data, out.len, &back, &used) == 0);
    FUZZ_CHECK(used == out.len);
    FUZZ_CHECK(back.type == v->type);
    if (v->type == AMF_NUMBER)
        FUZZ_CHECK(memcmp(&back.number, &v->number, sizeof(double)) == 0);
    else if (v->type == AMF_BOOLEAN)
        FUZZ_CHECK(back.boolean == v->boolean);
    else
        FUZZ_CHECK(back.str_len == v->str_len && memcmp(back.str, v->str, v->str_len) == 0);
    amf_value_reset(&back);
    bytes_reset(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;

    while (pos < size) {
        struct amf_value v;
        size_t used = 0;
        int rc = amf_decode(data + pos, size - pos, &v, &used);

        if (rc < 0) {
            FUZZ_CHECK(rc == -EINVAL || rc == -E2BIG);
            FUZZ_CHECK(v.type == 0 && !v.str && !v.props && !v.items);
            break;
        }
        FUZZ_CHECK(used >= 1 && used <= size - pos);
        FUZZ_CHECK(walk(&v, 0) <= AMF_MAX_NODES);
        (void)amf_str(amf_get(&v, "app"));
        (void)amf_num(amf_get(&v, "duration"), 0);
        roundtrip_scalar(&v);
        amf_value_reset(&v);
        pos += used;
    }
    return 0;
}
