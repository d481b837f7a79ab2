/*
 * Codec configuration records: H.264 AVCDecoderConfigurationRecord with its
 * SPS (for the picture size the mp4 muxer needs and the RFC 6381 codec string)
 * and AAC AudioSpecificConfig. Pure parsers over untrusted bytes.
 *
 * AVCDecoderConfigurationRecord (ISO/IEC 14496-15 5.3.3.1):
 *   u8 version=1 | u8 profile | u8 compat | u8 level | 6b 1s + 2b lengthSizeMinusOne
 *   3b 1s + 5b numSPS | { u16 len, SPS NAL }... | u8 numPPS | { u16 len, PPS }...
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "segmenter_internal.h"

#define SPS_MAX 1024

/* Bit reader over an RBSP (emulation prevention bytes already removed). */
struct bits {
    const uint8_t *p;
    size_t len, pos; /* in bits */
    bool overrun;
};

static unsigned read_bit(struct bits *b)
{
    unsigned v;

    if (b->pos >= b->len * 8) {
        b->overrun = true;
        return 0;
    }
    v = (b->p[b->pos / 8] >> (7 - b->pos % 8)) & 1;
    b->pos++;
    return v;
}

static uint32_t read_bits(struct bits *b, int n)
{
    uint32_t v = 0;

    while (n--)
        v = (v << 1) | read_bit(b);
    return v;
}

/* Exp-Golomb ue(v), capped at 31 leading zeros. */
static uint32_t read_ue(struct bits *b)
{
    int zeros = 0;

    while (!read_bit(b)) {
        if (b->overrun || ++zeros > 31) {
            b->overrun = true;
            return 0;
        }
    }
    return (uint32_t)((1ull << zeros) - 1 + read_bits(b, zeros));
}

static int32_t read_se(struct bits *b)
{
    uint32_t k = read_ue(b);

    return (k & 1) ? (int32_t)((k + 1) / 2) : -(int32_t)(k / 2);
}

static void skip_scaling_list(struct bits *b, int size)
{
    int last = 8, next = 8;

    for (int j = 0; j < size && !b->overrun; j++) {
        if (next != 0) {
            int32_t delta = read_se(b);

            if (delta < -128 || delta > 127) { /* delta_scale's range (7.4.2.1.1.1) */
                b->overrun = true;
                return;
            }
            next = (last + delta + 256) % 256;
        }
        last = next == 0 ? last : next;
    }
}

/* Copies NAL payload (after the 1-byte header) into RBSP, dropping 0x000003's 03. */
static size_t nal_to_rbsp(const uint8_t *nal, size_t len, uint8_t *rbsp, size_t cap)
{
    size_t n = 0;
    int zeros = 0;

    for (size_t i = 1; i < len && n < cap; i++) {
        if (zeros >= 2 && nal[i] == 3) {
            zeros = 0;
            continue;
        }
        zeros = nal[i] == 0 ? zeros + 1 : 0;
        rbsp[n++] = nal[i];
    }
    return n;
}

static int parse_sps(const uint8_t *nal, size_t len, struct avc_info *out)
{
    uint8_t rbsp[SPS_MAX];
    struct bits b = {rbsp, 0, 0, false};
    uint32_t profile, chroma = 1, w_mbs, h_map, frame_mbs_only;
    uint32_t crop_l = 0, crop_r = 0, crop_t = 0, crop_b = 0;

    if (len < 4 || (nal[0] & 0x1f) != 7)
        return -EINVAL;
    b.len = nal_to_rbsp(nal, len, rbsp, sizeof(rbsp));
    profile = read_bits(&b, 8);
    read_bits(&b, 16); /* constraint flags, level */
    if (read_ue(&b) > 31)
        return -EINVAL;
    if (profile == 100 || profile == 110 || profile == 122 || profile == 244 || profile == 44 ||
        profile == 83 || profile == 86 || profile == 118 || profile == 128 || profile == 138 ||
        profile == 139 || profile == 134 || profile == 135) {
        chroma = read_ue(&b);
        if (chroma > 3)
            return -EINVAL;
        if (chroma == 3)
            read_bit(&b); /* separate_colour_plane_flag */
        read_ue(&b);      /* bit_depth_luma_minus8 */
        read_ue(&b);      /* bit_depth_chroma_minus8 */
        read_bit(&b);     /* qpprime_y_zero_transform_bypass_flag */
        if (read_bit(&b)) {
            for (int i = 0; i < (chroma == 3 ? 12 : 8); i++)
                if (read_bit(&b))
                    skip_scaling_list(&b, i < 6 ? 16 : 64);
        }
    }
    read_ue(&b); /* log2_max_frame_num_minus4 */
    switch (read_ue(&b)) {
    case 0:
        read_ue(&b); /* log2_max_pic_order_cnt_lsb_minus4 */
        break;
    case 1: {
        uint32_t n;

        read_bit(&b);
        read_se(&b);
        read_se(&b);
        n = read_ue(&b);
        if (n > 255)
            return -EINVAL;
        while (n-- && !b.overrun)
            read_se(&b);
        break;
    }
    default:
        break;
    }
    read_ue(&b);  /* max_num_ref_frames */
    read_bit(&b); /* gaps_in_frame_num_value_allowed_flag */
    w_mbs = read_ue(&b) + 1;
    h_map = read_ue(&b) + 1;
    frame_mbs_only = read_bit(&b);
    if (!frame_mbs_only)
        read_bit(&b); /* mb_adaptive_frame_field_flag */
    read_bit(&b);     /* direct_8x8_inference_flag */
    if (read_bit(&b)) {
        crop_l = read_ue(&b);
        crop_r = read_ue(&b);
        crop_t = read_ue(&b);
        crop_b = read_ue(&b);
    }
    if (b.overrun || w_mbs > 1024 || h_map > 1024)
        return -EINVAL;
    {
        uint32_t cx = chroma == 0 || chroma == 3 ? 1 : 2;
        uint32_t cy = (chroma == 1 ? 2 : 1) * (2 - frame_mbs_only);
        int64_t w = (int64_t)w_mbs * 16 - (int64_t)(crop_l + crop_r) * cx;
        int64_t h = (int64_t)h_map * 16 * (2 - frame_mbs_only) - (int64_t)(crop_t + crop_b) * cy;

        if (w <= 0 || h <= 0)
            return -EINVAL;
        out->width = (int)w;
        out->height = (int)h;
    }
    return 0;
}

int avc_parse_config(const uint8_t *avcc, size_t len, struct avc_info *out)
{
    size_t sps_len;

    memset(out, 0, sizeof(*out));
    if (len < 8 || avcc[0] != 1)
        return -EINVAL;
    out->profile_idc = avcc[1];
    out->constraint_flags = avcc[2];
    out->level_idc = avcc[3];
    out->nal_length_size = (avcc[4] & 3) + 1;
    if (out->nal_length_size == 3)
        return -EINVAL;
    if ((avcc[5] & 0x1f) < 1)
        return -EINVAL;
    sps_len = (size_t)avcc[6] << 8 | avcc[7];
    if (sps_len > len - 8)
        return -EINVAL;
    if (parse_sps(avcc + 8, sps_len, out) != 0)
        return -EINVAL;
    snprintf(out->codec, sizeof(out->codec), "avc1.%02x%02x%02x", out->profile_idc,
             out->constraint_flags, out->level_idc);
    return 0;
}

int aac_parse_config(const uint8_t *asc, size_t len, struct aac_info *out)
{
    static const int rates[13] = {96000, 88200, 64000, 48000, 44100, 32000, 24000,
                                  22050, 16000, 12000, 11025, 8000,  7350};
    struct bits b = {asc, len, 0, false};
    uint32_t aot, idx;

    memset(out, 0, sizeof(*out));
    aot = read_bits(&b, 5);
    if (aot == 31)
        aot = 32 + read_bits(&b, 6);
    idx = read_bits(&b, 4);
    if (idx == 15)
        out->sample_rate = (int)read_bits(&b, 24);
    else if (idx < 13)
        out->sample_rate = rates[idx];
    out->channels = (int)read_bits(&b, 4);
    if (b.overrun || aot == 0 || out->sample_rate <= 0 || out->channels > 7)
        return -EINVAL;
    if (out->channels == 7)
        out->channels = 8;
    out->object_type = (int)aot;
    snprintf(out->codec, sizeof(out->codec), "mp4a.40.%u", aot);
    return 0;
}
