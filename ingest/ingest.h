/*
 * ingest — the RTMP server: accepts publishers on a libevent loop, runs the
 * handshake, chunk stream and AMF0 command protocol, turns FLV audio/video
 * tags into seg_frame calls on the segmenter.
 */
#ifndef ONAIR_INGEST_H
#define ONAIR_INGEST_H

struct event_base;
struct cfg;
struct store;
struct rtmp_server;

/*
 * Binds CFG->rtmp_listen (every address a host name resolves to) and starts
 * accepting on BASE. Takes a reference on CFG; ST is borrowed for the
 * server's lifetime. Returns 0 and the server in *OUT, or a negative errno
 * (logged).
 */
int rtmp_server_new(struct event_base *base, const struct cfg *cfg, struct store *st,
                    struct rtmp_server **out);

/*
 * Applies a live reload, on BASE's thread. A new rtmp.listen or rtmps.listen
 * is bound before the old listeners close (connections on them go on), and
 * the RTMPS certificate files are read again; if an address cannot be bound
 * or a certificate not loaded, nothing changes and a negative errno (logged)
 * is returned. Otherwise NEXT
 * (referenced) applies: session settings for new connections, HLS timing from
 * each live stream's next segment, and a publisher whose stream was removed or
 * whose key changed is disconnected (only that one). Returns 0.
 */
int rtmp_server_reconfigure(struct rtmp_server *srv, const struct cfg *next);

struct recorder;

/*
 * Streams published from now on are recorded by REC (record/record.h; NULL =
 * none), as the config says. REC is borrowed for the server's life.
 */
void rtmp_server_set_recorder(struct rtmp_server *srv, struct recorder *rec);

/*
 * Disconnects stream NAME's publisher. Any thread but the loop's: the loop
 * does it and this waits (at most 5 s) for the answer. Returns 0, -ENOENT
 * when NAME has no publisher, or -ETIMEDOUT/-ESHUTDOWN/-ENOMEM.
 */
int rtmp_server_kick(struct rtmp_server *srv, const char *name);

/*
 * Reads rtmps.cert / rtmps.key again (a SIGHUP with no config change: a
 * renewed certificate). New RTMPS connections get it; open ones keep theirs.
 * Returns 0 (also when RTMPS is off) or a negative errno (logged; the old
 * certificate stays).
 */
int rtmp_server_reload_tls(struct rtmp_server *srv);

/* Closes every connection (ending their streams) and the listener. Accepts NULL. */
void rtmp_server_free(struct rtmp_server *srv);

/* Port actually bound (useful with port 0). */
int rtmp_server_port(const struct rtmp_server *srv);

/* Port of the RTMPS listener, or -1 when rtmps.listen is off. */
int rtmp_server_tls_port(const struct rtmp_server *srv);

#endif
