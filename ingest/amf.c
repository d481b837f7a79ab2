/*
 * AMF0 (Action Message Format 0, Adobe AMF0 spec section 2): decoder into a
 * small tree, lookups, and the encoders the RTMP command replies need.
 *
 *   marker  type           payload
 *   0x00    number         8-byte IEEE 754 double, big endian
 *   0x01    boolean        1 byte
 *   0x02    string         u16 length | UTF-8 bytes
 *   0x03    object         { u16 key length | key | value }* 00 00 09
 *   0x05    null
 *   0x06    undefined
 *   0x08    ECMA array     u32 count (a hint only) | same body as object
 *   0x0a    strict array   u32 count | count values
 *   0x0b    date           double ms | s16 time zone (ignored)
 *   0x0c    long string    u32 length | bytes
 *
 * Not supported (-EINVAL): movieclip 0x04, reference 0x07, object end 0x09
 * outside an object, unsupported 0x0d, recordset 0x0e, XML 0x0f, typed object
 * 0x10, AMF3 switch 0x11.
 *
 * The decoder is driven by untrusted input: nesting is capped at
 * AMF_MAX_DEPTH, the tree at AMF_MAX_NODES values (counted before each value
 * is allocated), and every length is checked against the bytes left before it
 * becomes an allocation.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rtmp_internal.h"

#define AMF_OBJECT_END 0x09

/* Decoder cursor plus the budgets shared by the whole tree. */
struct dec {
    const uint8_t *p, *end;
    size_t nodes;
};

static size_t left(const struct dec *d)
{
    return (size_t)(d->end - d->p);
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static double rd_double(const uint8_t *p)
{
    uint64_t u = (uint64_t)rd32(p) << 32 | rd32(p + 4);
    double v;

    memcpy(&v, &u, sizeof(v));
    return v;
}

/* Copies LEN bytes at the cursor into a new NUL-terminated string. */
static int take_str(struct dec *d, size_t len, char **out)
{
    char *s;

    if (len > left(d))
        return -EINVAL;
    s = malloc(len + 1);
    if (!s)
        return -ENOMEM;
    memcpy(s, d->p, len);
    s[len] = '\0';
    d->p += len;
    *out = s;
    return 0;
}

static int decode_value(struct dec *d, struct amf_value *v, int depth);

/* Object / ECMA array body: properties up to and including 00 00 09. */
static int decode_props(struct dec *d, struct amf_value *v, int depth)
{
    size_t cap = 0;
    int rc;

    for (;;) {
        struct amf_prop *p;
        size_t klen;

        if (left(d) < 2)
            return -EINVAL;
        klen = rd16(d->p);
        d->p += 2;
        if (klen == 0) {
            /* Only the end marker may follow an empty key. */
            if (left(d) < 1 || *d->p != AMF_OBJECT_END)
                return -EINVAL;
            d->p++;
            return 0;
        }
        if (klen > left(d))
            return -EINVAL;
        /* The value will be a node: refuse before allocating its key. */
        if (d->nodes >= AMF_MAX_NODES)
            return -E2BIG;
        if (v->nprops == cap) {
            size_t ncap = cap ? cap * 2 : 8;

            p = realloc(v->props, ncap * sizeof(*p));
            if (!p)
                return -ENOMEM;
            v->props = p;
            cap = ncap;
        }
        p = &v->props[v->nprops];
        memset(p, 0, sizeof(*p));
        rc = take_str(d, klen, &p->key);
        if (rc < 0)
            return rc;
        v->nprops++; /* owned by V from here on, even if its value fails */
        rc = decode_value(d, &p->value, depth + 1);
        if (rc < 0)
            return rc;
    }
}

static int decode_strict_array(struct dec *d, struct amf_value *v, int depth)
{
    uint32_t count;
    int rc;

    if (left(d) < 4)
        return -EINVAL;
    count = rd32(d->p);
    d->p += 4;
    /* Every value takes at least one byte: a bigger count is a lie. */
    if (count > left(d))
        return -EINVAL;
    if (count > AMF_MAX_NODES - d->nodes)
        return -E2BIG;
    if (count == 0)
        return 0;
    v->items = calloc(count, sizeof(*v->items));
    if (!v->items)
        return -ENOMEM;
    for (uint32_t i = 0; i < count; i++) {
        rc = decode_value(d, &v->items[i], depth + 1);
        v->nitems = i + 1; /* reset frees every item decoded or half-decoded */
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Decodes one value into V (zeroed by the caller); on error V is partial. */
static int decode_value(struct dec *d, struct amf_value *v, int depth)
{
    uint8_t marker;

    if (left(d) < 1)
        return -EINVAL;
    if (d->nodes >= AMF_MAX_NODES)
        return -E2BIG;
    d->nodes++;
    marker = *d->p++;
    v->type = (enum amf_type)marker;

    switch (marker) {
    case AMF_NUMBER:
        if (left(d) < 8)
            return -EINVAL;
        v->number = rd_double(d->p);
        d->p += 8;
        return 0;
    case AMF_BOOLEAN:
        if (left(d) < 1)
            return -EINVAL;
        v->boolean = *d->p++ != 0;
        return 0;
    case AMF_STRING:
        if (left(d) < 2)
            return -EINVAL;
        v->str_len = rd16(d->p);
        d->p += 2;
        return take_str(d, v->str_len, &v->str);
    case AMF_LONG_STRING:
        if (left(d) < 4)
            return -EINVAL;
        v->str_len = rd32(d->p);
        d->p += 4;
        return take_str(d, v->str_len, &v->str);
    case AMF_NULL:
    case AMF_UNDEFINED:
        return 0;
    case AMF_DATE:
        if (left(d) < 10)
            return -EINVAL;
        v->number = rd_double(d->p);
        d->p += 10;
        return 0;
    case AMF_OBJECT:
    case AMF_ECMA_ARRAY:
    case AMF_STRICT_ARRAY:
        if (depth >= AMF_MAX_DEPTH)
            return -E2BIG;
        if (marker == AMF_STRICT_ARRAY)
            return decode_strict_array(d, v, depth);
        if (marker == AMF_ECMA_ARRAY) {
            /* The count is a hint that encoders get wrong: read to the end marker. */
            if (left(d) < 4)
                return -EINVAL;
            d->p += 4;
        }
        return decode_props(d, v, depth);
    default:
        return -EINVAL;
    }
}

int amf_decode(const uint8_t *in, size_t len, struct amf_value *out, size_t *consumed)
{
    struct dec d = {.p = in, .end = in + len, .nodes = 0};
    int rc;

    memset(out, 0, sizeof(*out));
    *consumed = 0;
    if (!in)
        return -EINVAL;
    rc = decode_value(&d, out, 0);
    if (rc < 0)
        goto fail;
    *consumed = (size_t)(d.p - in);
    return 0;

fail:
    amf_value_reset(out);
    return rc;
}

void amf_value_reset(struct amf_value *v)
{
    if (!v)
        return;
    free(v->str);
    for (size_t i = 0; i < v->nprops; i++) {
        free(v->props[i].key);
        amf_value_reset(&v->props[i].value);
    }
    free(v->props);
    for (size_t i = 0; i < v->nitems; i++)
        amf_value_reset(&v->items[i]);
    free(v->items);
    memset(v, 0, sizeof(*v));
}

const struct amf_value *amf_get(const struct amf_value *obj, const char *key)
{
    if (!obj || !key || (obj->type != AMF_OBJECT && obj->type != AMF_ECMA_ARRAY))
        return NULL;
    for (size_t i = 0; i < obj->nprops; i++)
        if (strcmp(obj->props[i].key, key) == 0)
            return &obj->props[i].value;
    return NULL;
}

const char *amf_str(const struct amf_value *v)
{
    if (!v || (v->type != AMF_STRING && v->type != AMF_LONG_STRING))
        return NULL;
    return v->str;
}

double amf_num(const struct amf_value *v, double def)
{
    if (!v || v->type != AMF_NUMBER)
        return def;
    return v->number;
}

/* ---- encoders ------------------------------------------------------------ */

/* Appends header H then LEN bytes of DATA; on failure OUT is left as it was. */
static int put_prefixed(struct bytes *out, const uint8_t *h, size_t hl, const void *data,
                        size_t len)
{
    size_t start = out->len;
    int rc = bytes_append(out, h, hl);

    if (rc == 0)
        rc = bytes_append(out, data, len);
    if (rc < 0)
        out->len = start;
    return rc;
}

static int put_u8(struct bytes *out, uint8_t b)
{
    return bytes_append(out, &b, 1);
}

int amf_put_number(struct bytes *out, double v)
{
    uint8_t b[9];
    uint64_t u;

    memcpy(&u, &v, sizeof(u));
    b[0] = AMF_NUMBER;
    for (int i = 0; i < 8; i++)
        b[1 + i] = (uint8_t)(u >> (56 - 8 * i));
    return bytes_append(out, b, sizeof(b));
}

int amf_put_bool(struct bytes *out, bool v)
{
    uint8_t b[2] = {AMF_BOOLEAN, v ? 1 : 0};

    return bytes_append(out, b, sizeof(b));
}

/* Strings longer than 65535 bytes become AMF0 long strings. */
int amf_put_string(struct bytes *out, const char *s)
{
    size_t len = strlen(s);
    uint8_t h[5];
    size_t hl;

    if (len <= 0xFFFF) {
        h[0] = AMF_STRING;
        h[1] = (uint8_t)(len >> 8);
        h[2] = (uint8_t)len;
        hl = 3;
    } else if (len <= 0xFFFFFFFF) {
        h[0] = AMF_LONG_STRING;
        h[1] = (uint8_t)(len >> 24);
        h[2] = (uint8_t)(len >> 16);
        h[3] = (uint8_t)(len >> 8);
        h[4] = (uint8_t)len;
        hl = 5;
    } else {
        return -EINVAL;
    }
    return put_prefixed(out, h, hl, s, len);
}

int amf_put_null(struct bytes *out)
{
    return put_u8(out, AMF_NULL);
}

int amf_put_undefined(struct bytes *out)
{
    return put_u8(out, AMF_UNDEFINED);
}

int amf_put_object_begin(struct bytes *out)
{
    return put_u8(out, AMF_OBJECT);
}

/* Returns -EINVAL for an empty key (it would read as the end marker) or one over 65535 bytes. */
int amf_put_key(struct bytes *out, const char *key)
{
    size_t len = strlen(key);
    uint8_t h[2];

    if (len == 0 || len > 0xFFFF)
        return -EINVAL;
    h[0] = (uint8_t)(len >> 8);
    h[1] = (uint8_t)len;
    return put_prefixed(out, h, 2, key, len);
}

int amf_put_object_end(struct bytes *out)
{
    static const uint8_t end[3] = {0, 0, AMF_OBJECT_END};

    return bytes_append(out, end, sizeof(end));
}
