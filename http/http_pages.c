/*
 * http pages — the front page (GET /) and the public listing of live streams
 * (GET /streams.json) it and the viewer page poll.
 *
 * The front page is http/index.html, compiled in by http/embed.py; its
 * {{PLACEHOLDERS}} are filled once at start-up from the config (HTML-escaped).
 * The listing is built per request with jansson from store_list(): it says
 * only what a viewer may know (name, since when, size, codecs, links), never
 * a key, an address or an encoder, and never a stream with signed playback.
 */
#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "../config/config.h"
#include "../store/store.h"
#include "../thumb/thumb.h"
#include "http_internal.h"

#define MOD "http"

/* ---- front page ---------------------------------------------------------- */

/* Appends S to OUT with &, <, >, " and ' escaped. Returns 0 or -ENOMEM. */
static int append_html(struct bytes *out, const char *s)
{
    for (; *s; s++) {
        const char *esc = NULL;
        int rc;

        switch (*s) {
        case '&': esc = "&amp;"; break;
        case '<': esc = "&lt;"; break;
        case '>': esc = "&gt;"; break;
        case '"': esc = "&quot;"; break;
        case '\'': esc = "&#39;"; break;
        }
        rc = esc ? bytes_append(out, esc, strlen(esc)) : bytes_append(out, s, 1);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int http_render_template(const char *tmpl, size_t len, const struct http_template_var *vars,
                         size_t nvars, struct bytes *out)
{
    const char *p = tmpl, *end = tmpl + len;

    while (p < end) {
        const char *open = memmem(p, (size_t)(end - p), "{{", 2);
        const char *close;
        size_t i;
        int rc;

        if (!open)
            return bytes_append(out, p, (size_t)(end - p));
        close = memmem(open + 2, (size_t)(end - open - 2), "}}", 2);
        if (!close)
            return -EINVAL;
        rc = bytes_append(out, p, (size_t)(open - p));
        if (rc < 0)
            return rc;
        for (i = 0; i < nvars; i++)
            if (strlen(vars[i].name) == (size_t)(close - open - 2) &&
                memcmp(vars[i].name, open + 2, (size_t)(close - open - 2)) == 0)
                break;
        if (i == nvars)
            return -EINVAL; /* a typo in the page must fail the build's tests, not ship */
        rc = append_html(out, vars[i].value);
        if (rc < 0)
            return rc;
        p = close + 2;
    }
    return 0;
}

struct buf *http_index_page_new(const struct cfg *cfg)
{
    char host[CFG_STR_MAX], port_text[16];
    int rtmp_port = 1935;
    struct bytes out = {0};
    struct buf *b = NULL;
    int rc;

    if (cfg_split_listen(cfg->rtmp_listen, host, sizeof(host), &rtmp_port) != 0)
        rtmp_port = 1935;
    snprintf(port_text, sizeof(port_text), "%d", rtmp_port);
    {
        const struct http_template_var vars[] = {
            {"VERSION", ONAIR_VERSION},
            {"RTMP_PORT", port_text},
            {"RTMP_APP", cfg->rtmp_app},
        };

        rc = http_render_template((const char *)http_index_html, http_index_html_len, vars,
                                  ARRAY_SIZE(vars), &out);
    }
    if (rc < 0)
        log_error(MOD, "front page template: %s", rc == -EINVAL ? "bad placeholder" : "no memory");
    else
        b = buf_new_copy(out.data, out.len);
    bytes_reset(&out);
    return b;
}

/* ---- GET /streams.json ---------------------------------------------------- */

struct listing {
    const struct cfg *cfg;
    struct listed_stream {
        char name[STORE_NAME_MAX];
        struct store_stream_info info;
    } *items;
    size_t n, cap;
    bool oom;
};

static void collect(void *arg, const char *name, const struct store_stream_info *info)
{
    struct listing *l = arg;
    const struct cfg_stream *cs = l->cfg ? cfg_find_stream(l->cfg, name) : NULL;

    if (cs && cs->signed_playback)
        return; /* private: only a signed link opens it */
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 8;
        struct listed_stream *p = realloc(l->items, cap * sizeof(*p));

        if (!p) {
            l->oom = true;
            return;
        }
        l->items = p;
        l->cap = cap;
    }
    snprintf(l->items[l->n].name, sizeof(l->items[l->n].name), "%s", name);
    l->items[l->n].info = *info;
    l->n++;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct listed_stream *)a)->name, ((const struct listed_stream *)b)->name);
}

/*
 * One stream's public object, or NULL on OOM. With thumbnails on, a stream
 * with video is wanted (a page lists it) and gets its thumb.jpg URL once one
 * is ready (the front page's card, the viewer's poster): a page is never
 * sent to the 503 of a thumbnail in the making, which Chromium logs as an error.
 */
static json_t *stream_json(const struct listed_stream *s, bool thumbs)
{
    char since[32], url[STORE_NAME_MAX + 8], playlist[STORE_NAME_MAX + 24];
    char thumb[STORE_NAME_MAX + 24];
    json_t *o;

    time_iso8601(s->info.live_since_ms, since, sizeof(since));
    snprintf(url, sizeof(url), "/live/%s/", s->name);
    snprintf(playlist, sizeof(playlist), "/live/%s/index.m3u8", s->name);
    o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", s->name, "url", url, "playlist", playlist,
                  "live_since", since, "codecs", s->info.codecs);
    if (o && s->info.width > 0 && s->info.height > 0 &&
        (json_object_set_new(o, "width", json_integer(s->info.width)) != 0 ||
         json_object_set_new(o, "height", json_integer(s->info.height)) != 0)) {
        json_decref(o);
        return NULL;
    }
    snprintf(thumb, sizeof(thumb), "/live/%s/thumb.jpg", s->name);
    if (o && thumbs && s->info.width > 0 && thumb_want(s->name, time_mono_ms()) &&
        json_object_set_new(o, "thumbnail", json_string(thumb)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* The listing as a JSON text (malloc'd, for free()), or NULL on OOM. */
static char *streams_text(struct store *st, const struct cfg *cfg)
{
    struct listing l = {.cfg = cfg};
    char now[32], *text = NULL;
    json_t *root = NULL, *arr;
    int thumb_s = thumb_interval_s();

    if (store_list(st, collect, &l) < 0 || l.oom)
        goto fail;
    if (l.n > 1)
        qsort(l.items, l.n, sizeof(*l.items), by_name);
    time_iso8601(time_wall_ms(), now, sizeof(now));
    root = json_pack("{s:s, s:[]}", "now", now, "streams");
    arr = root ? json_object_get(root, "streams") : NULL;
    if (!arr)
        goto fail;
    /* how often a thumbnail changes: the pages refresh theirs no more often */
    if (thumb_s > 0 && json_object_set_new(root, "thumbnail_interval_s", json_integer(thumb_s)))
        goto fail;
    for (size_t i = 0; i < l.n; i++)
        if (json_array_append_new(arr, stream_json(&l.items[i], thumb_s > 0)) != 0)
            goto fail;
    text = json_dumps(root, JSON_COMPACT);
fail:
    json_decref(root);
    free(l.items);
    return text;
}

struct MHD_Response *http_streams_response(struct store *st, const struct cfg *cfg)
{
    char *text = streams_text(st, cfg);
    size_t len;
    struct MHD_Response *r;

    if (!text)
        return NULL;
    len = strlen(text);
    text[len] = '\n'; /* replaces the NUL: MHD takes the length, not a C string */
    r = MHD_create_response_from_buffer_with_free_callback(len + 1, text, free);
    if (!r) {
        free(text);
        return NULL;
    }
    if (MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json") != MHD_YES ||
        MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache") != MHD_YES) {
        MHD_destroy_response(r);
        return NULL;
    }
    return r;
}
