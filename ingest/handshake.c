/*
 * RTMP handshake, server side (RTMP spec 5.2, plus the Flash Player 9
 * "complex" digest handshake that Adobe never documented).
 *
 *   client                                          server
 *     |  C0 (1 byte: version 3)                       |
 *     |  C1 (1536 bytes)                              |
 *     | --------------------------------------------> |  rtmp_hs_feed: state C0C1
 *     |                       S0 (1 byte: version 3)  |
 *     |                       S1 (1536 bytes)         |
 *     |                       S2 (1536 bytes)         |
 *     | <-------------------------------------------- |  written to REPLY in one go
 *     |  C2 (1536 bytes, not checked)                 |
 *     | --------------------------------------------> |  state C2 -> DONE
 *     |  chunk stream ...                             |  (left unconsumed)
 *
 * Plain handshake (spec 5.2.3, 5.2.4):
 *
 *   S1 = time (4, we send 0) | zero (4) | random (1528)
 *   S2 = echo of C1
 *
 * Digest handshake: C1 carries an HMAC-SHA256 digest of itself at a position
 * that depends on four of its own bytes. Two layouts ("schemas") exist:
 *
 *   0      4        8                                          1536
 *   +------+--------+--------------------------------------------+
 *   | time | version|  ...random...  [digest 32] ...random...     |
 *   +------+--------+--------------------------------------------+
 *          base = 8 (schema 0) or 772 (schema 1):
 *          offset = (C1[base] + C1[base+1] + C1[base+2] + C1[base+3]) % 728
 *                   + base + 4
 *          digest = HMAC-SHA256(key = "Genuine Adobe Flash Player 001" (30),
 *                               C1 without the 32 digest bytes)
 *
 * If the client digest is valid at either schema, the server answers with
 *
 *   S1 = time | version 0d 0e 0a 0d | random, with a digest at the same schema
 *        keyed by "Genuine Adobe Flash Media Server 001" (first 36 bytes)
 *   S2 = random (1504) | HMAC-SHA256(key = HMAC-SHA256(full 68-byte FMS key,
 *                                                      client digest),
 *                                    S2[0..1504))
 *
 * Otherwise it falls back to the plain handshake. C0 = 6 (RTMPE, encrypted)
 * and any other version are refused.
 */
#include <errno.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include "rtmp_internal.h"

#define DIGEST_LEN 32
#define PLAYER_KEY_TEXT_LEN 30 /* "Genuine Adobe Flash Player 001" */
#define SERVER_KEY_TEXT_LEN 36 /* "Genuine Adobe Flash Media Server 001" */
#define S2_SIGNED_LEN (RTMP_HS_SIZE - DIGEST_LEN)

/* Text part of each key followed by the same well-known 32 bytes. */
static const uint8_t player_key[PLAYER_KEY_TEXT_LEN + 32] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ', 'F',
    'l', 'a', 's', 'h', ' ', 'P', 'l', 'a', 'y', 'e', 'r', ' ', '0', '0', '1',
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
    0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
    0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

static const uint8_t server_key[SERVER_KEY_TEXT_LEN + 32] = {
    'G', 'e', 'n', 'u', 'i', 'n', 'e', ' ', 'A', 'd', 'o', 'b', 'e', ' ', 'F', 'l', 'a', 's',
    'h', ' ', 'M', 'e', 'd', 'i', 'a', ' ', 'S', 'e', 'r', 'v', 'e', 'r', ' ', '0', '0', '1',
    0xF0, 0xEE, 0xC2, 0x4A, 0x80, 0x68, 0xBE, 0xE8, 0x2E, 0x00, 0xD0, 0xD1,
    0x02, 0x9E, 0x7E, 0x57, 0x6E, 0xEC, 0x5D, 0x2D, 0x29, 0x80, 0x6F, 0xAB,
    0x93, 0xB8, 0xE6, 0x36, 0xCF, 0xEB, 0x31, 0xAE,
};

/* Offsets of the four bytes that place the digest, one per schema. */
static const size_t schema_base[2] = {8, 772};

/* Version we put in S1 bytes 4..7 when answering a digest handshake. */
static const uint8_t server_version[4] = {0x0d, 0x0e, 0x0a, 0x0d};

/* Flash Player 10-ish version for the test client's C1. */
static const uint8_t client_version[4] = {0x0a, 0x00, 0x2d, 0x02};

/* HMAC-SHA256 of DATA into OUT (32 bytes). Returns 0 or -EINVAL. */
static int hmac_sha256(const uint8_t *key, size_t key_len, const uint8_t *data, size_t len,
                       uint8_t out[DIGEST_LEN])
{
    unsigned int out_len = 0;

    if (!HMAC(EVP_sha256(), key, (int)key_len, data, len, out, &out_len) ||
        out_len != DIGEST_LEN)
        return -EINVAL;
    return 0;
}

/* Where the digest sits in a 1536-byte block under SCHEMA (0 or 1). */
static size_t digest_offset(const uint8_t block[RTMP_HS_SIZE], int schema)
{
    size_t base = schema_base[schema];
    unsigned sum = (unsigned)block[base] + block[base + 1] + block[base + 2] + block[base + 3];

    return sum % 728 + base + 4;
}

/* HMAC of BLOCK with the 32 bytes at OFF left out. Returns 0 or -EINVAL. */
static int block_digest(const uint8_t block[RTMP_HS_SIZE], size_t off, const uint8_t *key,
                        size_t key_len, uint8_t out[DIGEST_LEN])
{
    uint8_t msg[RTMP_HS_SIZE - DIGEST_LEN];

    memcpy(msg, block, off);
    memcpy(msg + off, block + off + DIGEST_LEN, RTMP_HS_SIZE - off - DIGEST_LEN);
    return hmac_sha256(key, key_len, msg, sizeof(msg), out);
}

/*
 * Looks for a valid digest keyed by KEY in BLOCK at either schema. Returns
 * the schema (0 or 1) and its offset in *OFF, or -1 if neither matches.
 */
static int find_digest(const uint8_t block[RTMP_HS_SIZE], const uint8_t *key, size_t key_len,
                       size_t *off)
{
    for (int schema = 0; schema < 2; schema++) {
        uint8_t d[DIGEST_LEN];
        size_t o = digest_offset(block, schema);

        if (block_digest(block, o, key, key_len, d) != 0)
            continue;
        if (CRYPTO_memcmp(d, block + o, DIGEST_LEN) == 0) {
            *off = o;
            return schema;
        }
    }
    return -1;
}

/* Writes a digest keyed by KEY into BLOCK at SCHEMA. Returns 0 or -EINVAL. */
static int imprint_digest(uint8_t block[RTMP_HS_SIZE], int schema, const uint8_t *key,
                          size_t key_len)
{
    size_t off = digest_offset(block, schema);
    uint8_t d[DIGEST_LEN];

    if (block_digest(block, off, key, key_len, d) != 0)
        return -EINVAL;
    memcpy(block + off, d, DIGEST_LEN);
    return 0;
}

/* Signature closing a digest-handshake S2/C2 that answers PEER_DIGEST. */
static int s2_signature(const uint8_t peer_digest[DIGEST_LEN], const uint8_t *s2,
                        uint8_t out[DIGEST_LEN])
{
    uint8_t key[DIGEST_LEN];

    if (hmac_sha256(server_key, sizeof(server_key), peer_digest, DIGEST_LEN, key) != 0)
        return -EINVAL;
    return hmac_sha256(key, sizeof(key), s2, S2_SIGNED_LEN, out);
}

static int fill_random(uint8_t *p, size_t len)
{
    return RAND_bytes(p, (int)len) == 1 ? 0 : -EIO;
}

/*
 * Builds S0+S1+S2 answering C1 into REPLY. Sets hs->digest. Returns 0, or
 * -EIO if randomness or HMAC failed.
 */
static int build_reply(struct rtmp_hs *hs, const uint8_t c1[RTMP_HS_SIZE],
                       uint8_t reply[RTMP_HS_REPLY_SIZE])
{
    uint8_t *s1 = reply + 1, *s2 = reply + 1 + RTMP_HS_SIZE;
    size_t c1_off = 0;
    int schema = find_digest(c1, player_key, PLAYER_KEY_TEXT_LEN, &c1_off);

    reply[0] = 3;
    /* Time 0 is allowed by the spec and keeps the reply free of clocks. */
    memset(s1, 0, 8);
    if (fill_random(s1 + 8, RTMP_HS_SIZE - 8) != 0)
        goto fail;

    hs->digest = schema >= 0;
    if (!hs->digest) {
        memcpy(s2, c1, RTMP_HS_SIZE);
        return 0;
    }

    memcpy(s1 + 4, server_version, sizeof(server_version));
    if (imprint_digest(s1, schema, server_key, SERVER_KEY_TEXT_LEN) != 0)
        goto fail;
    if (fill_random(s2, S2_SIGNED_LEN) != 0)
        goto fail;
    if (s2_signature(c1 + c1_off, s2, s2 + S2_SIGNED_LEN) != 0)
        goto fail;
    return 0;

fail:
    hs->error = "handshake: random generator or HMAC failed";
    return -EIO;
}

void rtmp_hs_init(struct rtmp_hs *hs)
{
    memset(hs, 0, sizeof(*hs));
    hs->state = RTMP_HS_C0C1;
}

/* Takes up to WANT - hs->have bytes into the block (or just counts them). */
static size_t take(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t want, bool keep)
{
    size_t n = want - hs->have;

    if (n > len)
        n = len;
    if (keep)
        memcpy(hs->block + hs->have, in, n);
    hs->have += n;
    return n;
}

int rtmp_hs_feed(struct rtmp_hs *hs, const uint8_t *in, size_t len, size_t *consumed,
                 uint8_t reply[RTMP_HS_REPLY_SIZE], size_t *reply_len)
{
    size_t pos = 0;

    *consumed = 0;
    *reply_len = 0;

    if (hs->state == RTMP_HS_FAILED)
        return RTMP_ERROR;
    if (hs->state == RTMP_HS_DONE)
        return RTMP_OK;

    if (hs->state == RTMP_HS_C0C1) {
        /* Refuse a wrong C0 as soon as it arrives, before waiting for C1. */
        if (hs->have == 0 && len > 0 && in[0] != 3) {
            hs->error = in[0] == 6      ? "handshake: C0 is 6 (RTMPE, encrypted): not supported"
                        : in[0] == 0x16 ? "handshake: a TLS ClientHello (an rtmps:// client on "
                                          "the plain RTMP port?)"
                                        : "handshake: C0 is not 3: unsupported RTMP version";
            hs->state = RTMP_HS_FAILED;
            return RTMP_ERROR;
        }
        pos += take(hs, in, len, 1 + RTMP_HS_SIZE, true);
        if (hs->have < 1 + RTMP_HS_SIZE) {
            *consumed = pos;
            return RTMP_NEED_MORE;
        }
        if (build_reply(hs, hs->block + 1, reply) != 0) {
            hs->state = RTMP_HS_FAILED;
            *consumed = pos;
            return RTMP_ERROR;
        }
        *reply_len = RTMP_HS_REPLY_SIZE;
        hs->state = RTMP_HS_C2;
        hs->have = 0;
    }

    /* C2 is not checked: clients disagree too much on what it holds. */
    pos += take(hs, in + pos, len - pos, RTMP_HS_SIZE, false);
    *consumed = pos;
    if (hs->have < RTMP_HS_SIZE)
        return RTMP_NEED_MORE;
    hs->state = RTMP_HS_DONE;
    return RTMP_OK;
}

const char *rtmp_hs_state_str(enum rtmp_hs_state s)
{
    switch (s) {
    case RTMP_HS_C0C1:
        return "c0c1";
    case RTMP_HS_C2:
        return "c2";
    case RTMP_HS_DONE:
        return "done";
    case RTMP_HS_FAILED:
        return "failed";
    }
    return "?";
}

void rtmp_hs_client_c1(uint8_t c1[RTMP_HS_SIZE], bool digest)
{
    memset(c1, 0, 8);
    if (fill_random(c1 + 8, RTMP_HS_SIZE - 8) != 0)
        memset(c1 + 8, 0x5a, RTMP_HS_SIZE - 8); /* tests only: any content works */
    if (!digest)
        return;
    memcpy(c1 + 4, client_version, sizeof(client_version));
    imprint_digest(c1, 0, player_key, PLAYER_KEY_TEXT_LEN);
}

int rtmp_hs_client_verify(const uint8_t c1[RTMP_HS_SIZE], const uint8_t s1[RTMP_HS_SIZE],
                          const uint8_t s2[RTMP_HS_SIZE])
{
    uint8_t sig[DIGEST_LEN];
    size_t c1_off = 0, s1_off = 0;

    if (find_digest(c1, player_key, PLAYER_KEY_TEXT_LEN, &c1_off) < 0) {
        /* Plain: S1 carries a zero field, S2 echoes C1. */
        if (memcmp(s1 + 4, "\0\0\0\0", 4) != 0 || memcmp(s2, c1, RTMP_HS_SIZE) != 0)
            return -EINVAL;
        return 0;
    }
    if (find_digest(s1, server_key, SERVER_KEY_TEXT_LEN, &s1_off) < 0)
        return -EINVAL;
    if (s2_signature(c1 + c1_off, s2, sig) != 0)
        return -EINVAL;
    if (CRYPTO_memcmp(sig, s2 + S2_SIGNED_LEN, DIGEST_LEN) != 0)
        return -EINVAL;
    return 0;
}
