/*
 * Signed playback links (http/signed.c): the HMAC against a value computed
 * independently (python hmac), every way a link can be wrong, and the
 * playlist rewrite on every kind of URI our playlists carry.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../http/http.h"
#include "../../http/signed_internal.h"
#include "harness.h"

static const char secret[] = "0123456789abcdef-secret";
/* python3 -c "import hmac,hashlib; print(hmac.new(b'0123456789abcdef-secret',
 *             b'show\n2000000000', hashlib.sha256).hexdigest())" */
static const char want[] = "a28bb1f16884b1ce6e75b3563799104546c12b3c99833701a8b39f68eb6e1f74";

static void test_compute(void)
{
    char sig[SIGN_HEX_LEN + 1], link[256];

    sign_compute(secret, "show", "2000000000", sig);
    CHECK_EQ_STR(sig, want);
    CHECK_EQ_INT(http_sign_link(secret, "show", 2000000000, link, sizeof(link)), 0);
    CHECK_EQ_STR(link, "/live/show/?exp=2000000000&sig=" "a28bb1f16884b1ce6e75b3563799104546c12b3c99833701a8b39f68eb6e1f74");
    CHECK_EQ_INT(http_sign_link(secret, "show", 2000000000, link, 20), -ENOSPC);
}

static void test_check(void)
{
    char q[SIGN_QUERY_MAX], bad[SIGN_HEX_LEN + 1], upper[SIGN_HEX_LEN + 1];
    const char *why = NULL;
    int64_t now = 1999999000;

    CHECK_EQ_INT(sign_check(secret, "show", "2000000000", want, now, q, &why), 0);
    CHECK_EQ_STR(q, "exp=2000000000&sig=a28bb1f16884b1ce6e75b3563799104546c12b3c99833701a8b39f68eb6e1f74");
    /* upper-case hex is the same signature */
    for (size_t i = 0; i <= SIGN_HEX_LEN; i++)
        upper[i] = (char)(want[i] >= 'a' && want[i] <= 'f' ? want[i] - 32 : want[i]);
    CHECK_EQ_INT(sign_check(secret, "show", "2000000000", upper, now, q, &why), 0);

    /* expired */
    CHECK_EQ_INT(sign_check(secret, "show", "2000000000", want, 2000000001, q, &why), -EACCES);
    CHECK_EQ_STR(why, "expired link");
    /* tampered: signature, exp, another stream, another secret */
    memcpy(bad, want, sizeof(bad));
    bad[10] = bad[10] == '0' ? '1' : '0';
    CHECK_EQ_INT(sign_check(secret, "show", "2000000000", bad, now, q, &why), -EACCES);
    CHECK_EQ_STR(why, "bad signature");
    CHECK_EQ_INT(sign_check(secret, "show", "2000000001", want, now, q, &why), -EACCES);
    CHECK_EQ_INT(sign_check(secret, "other", "2000000000", want, now, q, &why), -EACCES);
    CHECK_EQ_INT(sign_check("another-secret-16", "show", "2000000000", want, now, q, &why),
                 -EACCES);
    /* missing or malformed */
    CHECK_EQ_INT(sign_check(secret, "show", NULL, want, now, q, &why), -EACCES);
    CHECK_EQ_STR(why, "no signature");
    CHECK_EQ_INT(sign_check(secret, "show", "2000000000", NULL, now, q, &why), -EACCES);
    CHECK_EQ_INT(sign_check(secret, "show", "", want, now, q, &why), -EACCES);
    CHECK_EQ_INT(sign_check(secret, "show", "-5", want, now, q, &why), -EACCES);
    CHECK_EQ_INT(sign_check(secret, "show", "2e9", want, now, q, &why), -EACCES);
    CHECK_EQ_INT(sign_check(secret, "show", "99999999999999999999999", want, now, q, &why),
                 -EACCES);
    CHECK_EQ_INT(sign_check(secret, "show", "2000000000", "abc", now, q, &why), -EACCES);
    CHECK_EQ_STR(why, "malformed sig");
    memcpy(bad, want, sizeof(bad));
    bad[63] = 'g';
    CHECK_EQ_INT(sign_check(secret, "show", "2000000000", bad, now, q, &why), -EACCES);
    CHECK_EQ_STR(why, "malformed sig");
    /* the shared hex helpers (common/) the check uses */
    {
        uint8_t out[2] = {0};

        CHECK(hex_decode("aF0", 2, out) && out[0] == 0xaf);
        CHECK(!hex_decode("aF0", 3, out));
        CHECK(!hex_decode("a", 2, out)); /* stops at the terminating NUL */
        CHECK(hex_digit('G') == -1 && hex_digit('f') == 15 && hex_digit('9') == 9);
    }
}

static void check_rewrite(const char *in, const char *out)
{
    struct bytes b = {0};

    CHECK_EQ_INT(sign_playlist((const uint8_t *)in, strlen(in), "exp=1&sig=ab", &b), 0);
    CHECK_EQ_INT(bytes_append(&b, "", 1), 0);
    CHECK_EQ_STR((const char *)b.data, out);
    bytes_reset(&b);
}

static void test_rewrite(void)
{
    check_rewrite("#EXTM3U\n"
                  "#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS=\"avc1.64001e\"\n"
                  "media.m3u8\n",
                  "#EXTM3U\n"
                  "#EXT-X-STREAM-INF:BANDWIDTH=1000,CODECS=\"avc1.64001e\"\n"
                  "media.m3u8?exp=1&sig=ab\n");
    check_rewrite("#EXTM3U\n"
                  "#EXT-X-MAP:URI=\"init-7.mp4\"\n"
                  "#EXT-X-PART:DURATION=0.333,URI=\"part-7-3-0.m4s\",INDEPENDENT=YES\n"
                  "#EXTINF:2.000,\n"
                  "seg-7-3.m4s\n"
                  "\n"
                  "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-7-4-0.m4s\"\n"
                  "#EXT-X-RENDITION-REPORT:URI=\"x.m3u8?a=1\",LAST-MSN=3\n"
                  "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"
                  "#EXTINF:2.000,\r\n"
                  "seg-7-4.m4s?x=1\r\n"
                  "seg-7-5.m4s",
                  "#EXTM3U\n"
                  "#EXT-X-MAP:URI=\"init-7.mp4?exp=1&sig=ab\"\n"
                  "#EXT-X-PART:DURATION=0.333,URI=\"part-7-3-0.m4s?exp=1&sig=ab\",INDEPENDENT=YES\n"
                  "#EXTINF:2.000,\n"
                  "seg-7-3.m4s?exp=1&sig=ab\n"
                  "\n"
                  "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part-7-4-0.m4s?exp=1&sig=ab\"\n"
                  "#EXT-X-RENDITION-REPORT:URI=\"x.m3u8?a=1&exp=1&sig=ab\",LAST-MSN=3\n"
                  "#EXT-X-SKIP:SKIPPED-SEGMENTS=3\n"
                  "#EXTINF:2.000,\r\n"
                  "seg-7-4.m4s?x=1&exp=1&sig=ab\r\n"
                  "seg-7-5.m4s?exp=1&sig=ab");
    /* An unterminated attribute is copied as it is. */
    check_rewrite("#EXT-X-MAP:URI=\"init.mp4\n", "#EXT-X-MAP:URI=\"init.mp4\n");
    check_rewrite("", "");
}

int main(void)
{
    RUN(test_compute);
    RUN(test_check);
    RUN(test_rewrite);
    return harness_done();
}
