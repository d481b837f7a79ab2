/*
 * JSON log lines (log.format: json), one object per line for journald or
 * Loki: {"ts", "level", "module", "stream", "msg", fields...}. The fields come
 * from the module string the callers already write ("rtmp[12] 10.0.0.5:51234
 * live/show", "seg live/show", "health show"): conn, peer, app and stream.
 */
#include <ctype.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Adds module, conn, peer, app and stream parsed from MODULE to O. */
static void add_module_fields(json_t *o, const char *module)
{
    char buf[512], *save = NULL, *tok, *br;
    bool first = true;

    snprintf(buf, sizeof(buf), "%s", module);
    for (tok = strtok_r(buf, " ", &save); tok; tok = strtok_r(NULL, " ", &save), first = false) {
        char *slash = strchr(tok, '/');

        if (first) {
            br = strchr(tok, '[');
            if (br) {
                *br = '\0';
                json_object_set_new(o, "conn", json_integer(strtoll(br + 1, NULL, 10)));
            }
            json_object_set_new(o, "module", json_string(tok));
        } else if (slash && !strchr(tok, ':')) {
            *slash = '\0';
            json_object_set_new(o, "app", json_string(tok));
            json_object_set_new(o, "stream", json_string(slash + 1));
        } else if (strchr(tok, ':') || isdigit((unsigned char)tok[0])) {
            json_object_set_new(o, "peer", json_string(tok));
        } else {
            json_object_set_new(o, "stream", json_string(tok));
        }
    }
}

/* A JSON string of S; bytes that are not valid UTF-8 become '?'. */
static json_t *safe_string(char *s)
{
    json_t *j = json_string(s);

    if (j)
        return j;
    for (char *p = s; *p; p++)
        if ((unsigned char)*p >= 0x80 || (unsigned char)*p < 0x20)
            *p = '?';
    return json_string(s);
}

void log_json_v(enum log_level level, const char *module, const char *fmt, va_list ap)
{
    char msg[1024], ts[32];
    json_t *o = json_object();
    char *line;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    time_iso8601(time_wall_ms(), ts, sizeof(ts));
    if (!o)
        return;
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[level]));
    add_module_fields(o, module);
    if (!json_object_get(o, "stream"))
        json_object_set_new(o, "stream", json_null());
    json_object_set_new(o, "msg", safe_string(msg));
    line = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!line)
        return;
    fprintf(stderr, "%s\n", line); /* one write per line keeps lines whole across threads */
    free(line);
}
