/*
 * Recordings over HTTP (vod.c): /vod/ routes and the live-rewind playlist,
 * with what they borrow from http.c.
 */
#ifndef ONAIR_VOD_INTERNAL_H
#define ONAIR_VOD_INTERNAL_H

#include <microhttpd.h>

#include "signed_internal.h"

struct http_server;
struct recorder;

/* From http.c: the common headers, queue, log and destroy R (NULL = out of memory). */
enum MHD_Result http_reply(struct http_server *srv, struct MHD_Connection *conn,
                           const char *method, const char *url, unsigned status,
                           struct MHD_Response *r);
enum MHD_Result http_send_error(struct http_server *srv, struct MHD_Connection *conn,
                                const char *method, const char *url, unsigned status);
/* 0, or 403 (see check_signed in http.c); *SQ = the query to carry on, NULL if public. */
unsigned http_check_signed(struct http_server *srv, struct MHD_Connection *conn,
                           const char *stream, char sigq[SIGN_QUERY_MAX], const char **sq);
struct recorder *http_recorder(struct http_server *srv);
void http_add_header(struct MHD_Response *r, const char *name, const char *value);

/* GET/HEAD /vod/REST (REST: what follows "/vod/", already path-checked). */
enum MHD_Result http_vod_route(struct http_server *srv, struct MHD_Connection *conn,
                               const char *method, const char *url, const char *rest);

/*
 * /live/STREAM/index.m3u8?dvr=1: the EVENT playlist of STREAM's recording in
 * progress. Returns false (nothing queued) when STREAM is not being recorded:
 * the caller serves the live playlist. SQ: see http_check_signed.
 */
bool http_vod_dvr(struct http_server *srv, struct MHD_Connection *conn, const char *method,
                  const char *url, const char *stream, const char *sq, enum MHD_Result *ret);

#endif
