/*
 * replay.mp4: a finished recording's init and media segments remuxed with
 * libavformat into one progressive MP4, moov first (movflags faststart), so
 * that a browser or a download starts playing before it has the whole file.
 *
 *   index.m3u8 ──► runs: one per init segment (a reconnect or codec change
 *   │              starts a new one after EXT-X-DISCONTINUITY)
 *   └─► per run: init-K.mp4 + its seg-N.m4s read back to back through a
 *       custom AVIOContext ──► mov demuxer ──► packets (time shifted so that
 *       each run follows the previous one) ──► mp4 muxer ──► .replay.mp4.tmp
 *       ──► rename ──► replay.mp4
 *
 * Stream copy only: no decode, no encode. The streams of the output are the
 * first run's; later runs map onto them by media type.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avformat.h>
#include <libavutil/mathematics.h>
#include <libavutil/opt.h>

#include "../common/common.h"
#include "record_disk.h"
#include "record_internal.h"

#define IO_BUFSIZE 65536
#define PLAYLIST_MAX (16u << 20)
#define MAX_STREAMS 4

/* The files of one run: its init segment, then its media segments. */
struct run {
    char **files;
    int n, cap;
};

struct reader {
    int dirfd;
    const struct run *run;
    int next;  /* next file to open */
    int fd;    /* current file, -1 between files */
};

static int reader_read(void *opaque, uint8_t *buf, int size)
{
    struct reader *r = opaque;

    for (;;) {
        ssize_t n;

        if (r->fd < 0) {
            if (r->next >= r->run->n)
                return AVERROR_EOF;
            r->fd = openat(r->dirfd, r->run->files[r->next++], O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            if (r->fd < 0)
                return AVERROR(errno);
        }
        n = read(r->fd, buf, (size_t)size);
        if (n > 0)
            return (int)n;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return AVERROR(errno);
        close(r->fd);
        r->fd = -1;
    }
}

static void runs_free(struct run *runs, int nruns)
{
    for (int i = 0; i < nruns; i++) {
        for (int j = 0; j < runs[i].n; j++)
            free(runs[i].files[j]);
        free(runs[i].files);
    }
    free(runs);
}

static int run_add(struct run *r, const char *name, size_t len)
{
    char *s;

    if (r->n == r->cap) {
        int cap = r->cap ? r->cap * 2 : 64;
        char **p = realloc(r->files, (size_t)cap * sizeof(*p));

        if (!p)
            return -ENOMEM;
        r->files = p;
        r->cap = cap;
    }
    s = strndup(name, len);
    if (!s)
        return -ENOMEM;
    r->files[r->n++] = s;
    return 0;
}

/* A file name a playlist of ours may list: no path, nothing hidden. */
static bool plain_name(const char *s, size_t len)
{
    if (len == 0 || len > 64 || s[0] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
              s[i] == '.' || s[i] == '_'))
            return false;
    return true;
}

/* Splits playlist TEXT into runs (a new one at every EXT-X-MAP). Returns the count or -errno. */
static int parse_runs(const char *text, size_t len, struct run **out)
{
    struct run *runs = NULL;
    int nruns = 0, err = 0;
    size_t pos = 0;

    while (pos < len && err == 0) {
        const char *line = text + pos, *nl = memchr(line, '\n', len - pos);
        size_t llen = nl ? (size_t)(nl - line) : len - pos;

        pos += llen + 1;
        if (llen > 16 && !strncmp(line, "#EXT-X-MAP:URI=\"", 16)) {
            const char *q = memchr(line + 16, '"', llen - 16);
            struct run *p;

            if (!q || !plain_name(line + 16, (size_t)(q - line - 16))) {
                err = -EINVAL;
                break;
            }
            p = realloc(runs, (size_t)(nruns + 1) * sizeof(*p));
            if (!p) {
                err = -ENOMEM;
                break;
            }
            runs = p;
            memset(&runs[nruns], 0, sizeof(runs[nruns]));
            err = run_add(&runs[nruns++], line + 16, (size_t)(q - line - 16));
        } else if (llen && line[0] != '#') {
            if (!nruns || !plain_name(line, llen))
                err = -EINVAL;
            else
                err = run_add(&runs[nruns - 1], line, llen);
        }
    }
    if (err < 0) {
        runs_free(runs, nruns);
        return err;
    }
    *out = runs;
    return nruns;
}

static int read_playlist(int dirfd, struct bytes *out)
{
    char chunk[16384];
    int fd = openat(dirfd, "index.m3u8", O_RDONLY | O_NOFOLLOW | O_CLOEXEC), err = 0;

    if (fd < 0)
        return -errno;
    for (;;) {
        ssize_t n = read(fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            err = n < 0 ? -errno : 0;
            break;
        }
        if (out->len + (size_t)n > PLAYLIST_MAX || bytes_append(out, chunk, (size_t)n) < 0) {
            err = -EFBIG;
            break;
        }
    }
    close(fd);
    return err;
}

struct remux {
    const char *logname;
    AVFormatContext *out;
    int out_index[MAX_STREAMS * 2]; /* by media type: AVMEDIA_TYPE_VIDEO, _AUDIO */
    int64_t last_dts[MAX_STREAMS];  /* output time base; INT64_MIN = none yet */
    int64_t end_us;                 /* end of everything written so far */
    AVPacket *pkt;
};

/* Creates the output streams from the first run's input IN. */
static int add_streams(struct remux *m, AVFormatContext *in)
{
    for (unsigned i = 0; i < in->nb_streams; i++) {
        AVCodecParameters *par = in->streams[i]->codecpar;
        AVStream *os;
        int type = par->codec_type;

        if ((type != AVMEDIA_TYPE_VIDEO && type != AVMEDIA_TYPE_AUDIO) ||
            m->out_index[type] >= 0 || m->out->nb_streams >= MAX_STREAMS)
            continue;
        os = avformat_new_stream(m->out, NULL);
        if (!os || avcodec_parameters_copy(os->codecpar, par) < 0)
            return -ENOMEM;
        os->codecpar->codec_tag = 0;
        if (os->codecpar->codec_id == AV_CODEC_ID_AAC && os->codecpar->frame_size <= 0)
            os->codecpar->frame_size = 1024; /* what FLV carries: AAC-LC frames */
        os->time_base = in->streams[i]->time_base;
        m->out_index[type] = os->index;
    }
    return m->out->nb_streams ? 0 : -EINVAL;
}

/* Copies every packet of one run, shifted to start where the previous run ended. */
static int copy_run(struct remux *m, int dirfd, const struct run *run, bool first)
{
    struct reader rd = {.dirfd = dirfd, .run = run, .fd = -1};
    const AVInputFormat *mp4 = av_find_input_format("mp4");
    AVFormatContext *in = avformat_alloc_context();
    uint8_t *iobuf = av_malloc(IO_BUFSIZE);
    AVIOContext *pb = NULL;
    int64_t shift_us = 0;
    bool have_shift = first;
    int err;

    if (!in || !iobuf || !mp4) {
        av_free(iobuf);
        avformat_free_context(in);
        return -ENOMEM;
    }
    pb = avio_alloc_context(iobuf, IO_BUFSIZE, 0, &rd, reader_read, NULL, NULL);
    if (!pb) {
        av_free(iobuf);
        avformat_free_context(in);
        return -ENOMEM;
    }
    pb->seekable = 0;
    in->pb = pb;
    in->flags |= AVFMT_FLAG_CUSTOM_IO;
    err = avformat_open_input(&in, NULL, mp4, NULL); /* frees IN on failure */
    if (err < 0) {
        log_warn(m->logname, "no MP4: cannot read %s: %s", run->files[0], av_err2str(err));
        in = NULL;
        err = -EINVAL;
        goto out;
    }
    if (first && (err = add_streams(m, in)) < 0)
        goto out;
    if (first) {
        err = avformat_write_header(m->out, NULL);
        if (err < 0) {
            log_warn(m->logname, "no MP4: the muxer refused the streams: %s", av_err2str(err));
            err = -EINVAL;
            goto out;
        }
    }
    while ((err = av_read_frame(in, m->pkt)) >= 0) {
        AVStream *is = in->streams[m->pkt->stream_index];
        int type = is->codecpar->codec_type;
        int oi = type == AVMEDIA_TYPE_VIDEO || type == AVMEDIA_TYPE_AUDIO ? m->out_index[type] : -1;
        AVStream *os;
        int64_t shift;

        if (oi < 0 || m->pkt->dts == AV_NOPTS_VALUE) {
            av_packet_unref(m->pkt);
            continue;
        }
        os = m->out->streams[oi];
        if (!have_shift) { /* this run starts where everything so far ended */
            shift_us = m->end_us - av_rescale_q(m->pkt->dts, is->time_base, AV_TIME_BASE_Q);
            have_shift = true;
        }
        av_packet_rescale_ts(m->pkt, is->time_base, os->time_base);
        shift = av_rescale_q(shift_us, AV_TIME_BASE_Q, os->time_base);
        m->pkt->dts += shift;
        if (m->pkt->pts != AV_NOPTS_VALUE)
            m->pkt->pts += shift;
        if (m->last_dts[oi] != INT64_MIN && m->pkt->dts <= m->last_dts[oi])
            m->pkt->dts = m->last_dts[oi] + 1; /* the seam of two runs */
        if (m->pkt->pts != AV_NOPTS_VALUE && m->pkt->pts < m->pkt->dts)
            m->pkt->pts = m->pkt->dts;
        m->last_dts[oi] = m->pkt->dts;
        {
            int64_t end = av_rescale_q(m->pkt->dts + (m->pkt->duration > 0 ? m->pkt->duration : 0),
                                       os->time_base, AV_TIME_BASE_Q);

            if (end > m->end_us)
                m->end_us = end;
        }
        m->pkt->stream_index = oi;
        m->pkt->pos = -1;
        err = av_interleaved_write_frame(m->out, m->pkt); /* takes the packet's data */
        if (err < 0) {
            log_warn(m->logname, "no MP4: writing failed: %s", av_err2str(err));
            err = AVERROR(EIO) == err ? -EIO : -EINVAL;
            goto out;
        }
    }
    err = err == AVERROR_EOF ? 0 : -EINVAL;
    if (err < 0)
        log_warn(m->logname, "MP4: reading the segments of %s stopped early", run->files[0]);
    err = 0; /* what was read is kept: a damaged tail does not lose the rest */
out:
    if (rd.fd >= 0)
        close(rd.fd);
    avformat_close_input(&in); /* custom I/O: PB stays ours */
    av_freep(&pb->buffer);     /* not IOBUF: avio may have swapped it */
    avio_context_free(&pb);
    return err;
}

int rec_remux_dir(int dirfd, const char *logname)
{
    struct remux m = {.logname = logname};
    struct bytes text = {0};
    struct run *runs = NULL;
    char path[64];
    int nruns, err;

    for (size_t i = 0; i < ARRAY_SIZE(m.out_index); i++)
        m.out_index[i] = -1;
    for (size_t i = 0; i < ARRAY_SIZE(m.last_dts); i++)
        m.last_dts[i] = INT64_MIN;
    err = read_playlist(dirfd, &text);
    nruns = err < 0 ? err : parse_runs((const char *)text.data, text.len, &runs);
    bytes_reset(&text);
    if (nruns <= 0) {
        log_warn(logname, "no MP4: unreadable playlist (%s)", nruns < 0 ? strerror(-nruns) : "empty");
        return nruns < 0 ? nruns : -EINVAL;
    }
    /* The muxer opens (twice, for faststart) a path: the directory's own, via /proc. */
    snprintf(path, sizeof(path), "/proc/self/fd/%d/.replay.mp4.tmp", dirfd);
    m.pkt = av_packet_alloc();
    if (!m.pkt || avformat_alloc_output_context2(&m.out, NULL, "mp4", path) < 0 || !m.out) {
        err = -ENOMEM;
        goto out;
    }
    m.out->avoid_negative_ts = AVFMT_AVOID_NEG_TS_MAKE_ZERO;
    err = avio_open(&m.out->pb, path, AVIO_FLAG_WRITE);
    if (err < 0) {
        log_warn(logname, "no MP4: cannot create it: %s", av_err2str(err));
        err = -EIO;
        goto out;
    }
    av_opt_set(m.out->priv_data, "movflags", "+faststart", 0);
    for (int i = 0; i < nruns && err == 0; i++)
        err = copy_run(&m, dirfd, &runs[i], i == 0);
    if (err == 0 && (err = av_write_trailer(m.out)) < 0) {
        log_warn(logname, "no MP4: finishing it failed: %s", av_err2str(err));
        err = -EIO;
    }
    if (avio_closep(&m.out->pb) < 0 && err == 0)
        err = -EIO;
    if (err == 0 && renameat(dirfd, ".replay.mp4.tmp", dirfd, "replay.mp4") < 0)
        err = -errno;
out:
    if (err < 0)
        unlinkat(dirfd, ".replay.mp4.tmp", 0);
    if (m.out) {
        if (m.out->pb)
            avio_closep(&m.out->pb);
        avformat_free_context(m.out);
    }
    av_packet_free(&m.pkt);
    runs_free(runs, nruns);
    return err;
}
