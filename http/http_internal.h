/*
 * http internals shared between http.c and the generated player page source.
 */
#ifndef ONAIR_HTTP_INTERNAL_H
#define ONAIR_HTTP_INTERNAL_H

#include <stddef.h>

/*
 * http/player.html, compiled in by http/embed.py (see http/meson.build):
 * http_player_html_len bytes plus a trailing NUL.
 */
extern const unsigned char http_player_html[];
extern const size_t http_player_html_len;

#endif
