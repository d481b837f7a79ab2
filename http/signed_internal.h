/*
 * Signed playback links (signed.c): pure functions, no I/O. A link to a
 * stream with `playback: signed` is /live/NAME/?exp=UNIX&sig=HEX with
 *
 *     sig = hex(HMAC-SHA256(http.signing_secret, NAME "\n" EXP))
 *
 * where EXP is the decimal expiry as written in the link. Playlists of such a
 * stream are rewritten per request so that every URI they list carries the
 * same exp and sig.
 */
#ifndef ONAIR_SIGNED_INTERNAL_H
#define ONAIR_SIGNED_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "../common/common.h"

#define SIGN_HEX_LEN 64
/* "exp=" up to 20 digits "&sig=" 64 hex digits, NUL */
#define SIGN_QUERY_MAX (4 + 20 + 5 + SIGN_HEX_LEN + 1)

/* Writes the lowercase hex signature of NAME and EXP (decimal text) into OUT. */
void sign_compute(const char *secret, const char *name, const char *exp,
                  char out[SIGN_HEX_LEN + 1]);

/*
 * Checks the raw exp and sig values of a request for stream NAME at NOW (Unix
 * seconds); NULL = absent. The signature is compared in constant time.
 * Returns 0 and the query to append to URIs in QUERY ("exp=..&sig=..", rebuilt
 * from the checked values), or -EACCES with the reason in *WHY (static).
 */
int sign_check(const char *secret, const char *name, const char *exp, const char *sig,
               int64_t now, char query[SIGN_QUERY_MAX], const char **why);

/*
 * Copies the playlist IN[0..LEN) into OUT with QUERY appended to every URI:
 * each line that is not a tag or empty, and every URI="..." attribute. A URI
 * that already has a query gets '&' + QUERY. Returns 0 or -ENOMEM.
 */
int sign_playlist(const uint8_t *in, size_t len, const char *query, struct bytes *out);

#endif
