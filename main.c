/*
 * onair — RTMP in, low-latency HLS out.
 *
 * Threads: main runs the libevent loop that owns every RTMP connection and
 * drives the segmenter; libmicrohttpd runs its own pool that only reads the
 * store.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <event2/event.h>

#include "common/common.h"
#include "config/config.h"
#include "http/http.h"
#include "ingest/ingest.h"
#include "metrics/metrics.h"
#include "record/record.h"
#include "segmenter/segmenter.h"
#include "store/store.h"
#include "thumb/thumb.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: onair [--config FILE]\n"
            "       onair --check-config FILE\n"
            "       onair --reload --config FILE\n"
            "       onair --config FILE sign NAME [--ttl 2h]\n"
            "       onair --version | --help\n"
            "\n"
            "Receives RTMP (OBS, ffmpeg, GStreamer) and serves it as HLS.\n"
            "Without --config the built-in defaults are used (see config/onair.example.yaml).\n"
            "\n"
            "  -c, --config FILE        read the YAML configuration FILE\n"
            "      --check-config FILE  validate FILE, print every error, exit (0 valid, 1 invalid)\n"
            "      --config-reference   print the configuration reference (Markdown) and exit\n"
            "      --reload             validate --config FILE, then make the instance whose\n"
            "                           pid is in its process.pid_file reload it (SIGHUP)\n"
            "      sign NAME [--ttl T]  print a signed playback link for stream NAME valid for T\n"
            "                           (90s, 30m, 2h, 7d; default 2h), from --config's\n"
            "                           http.signing_secret\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n");
}

struct app {
    struct event_base *base;
    struct store *store;
    const struct cfg *cfg; /* the running snapshot (our reference) */
    const char *config_path;
    struct rtmp_server *rtmp;
    struct http_server *http;
    struct recorder *rec;  /* recordings: writer and remux threads */
    struct admin_server *admin; /* NULL when admin.listen is empty */
    pthread_t retiring;    /* stops an HTTP server a reload replaced */
    bool retiring_started;
};

#define HTTP_RETIRE_WAIT_MS 2000

static void log_errors(const struct cfg_errors *errs);
static int size_connection_budgets(struct cfg *cfg);
static int write_pid_file(const char *path);
static void remove_pid_file(const char *path);
static void reconfigure_observing(struct app *app, const struct cfg *next);

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct app *app = arg;

    log_info("onair", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopexit(app->base, NULL);
}

static void *retire_http(void *arg)
{
    http_server_retire(arg, HTTP_RETIRE_WAIT_MS);
    return NULL;
}

/* Hands OLD to a thread that quiesces and stops it; the loop never waits on HTTP. */
static void retire_http_server(struct app *app, struct http_server *old)
{
    if (app->retiring_started)
        pthread_join(app->retiring, NULL); /* the previous one: long done, in practice */
    app->retiring_started = pthread_create(&app->retiring, NULL, retire_http, old) == 0;
    if (!app->retiring_started)
        http_server_free(old); /* no thread: stop it here */
}

static void collect_change(void *arg, const char *line)
{
    bytes_printf(arg, "%s\n", line);
}

/* Logs each line of TEXT (LEN bytes) with PREFIX. */
static void log_lines(const char *prefix, const char *text, size_t len)
{
    while (len > 0) {
        size_t n = 0;

        while (n < len && text[n] != '\n')
            n++;
        log_info("onair", "%s%.*s", prefix, (int)n, text);
        text += n + (n < len);
        len -= n + (n < len);
    }
}

/*
 * SIGHUP: re-reads the file and applies it whole, or not at all. Everything
 * that can fail (binding a new listen address) happens before anything
 * changes; then the servers take the new snapshot.
 */
static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct app *app = arg;
    struct cfg_errors errs = {0};
    struct http_server *nhttp = NULL;
    struct bytes changes = {0};
    struct cfg *next = NULL;
    const struct cfg *old = app->cfg;
    bool new_http;
    int n;

    if (!app->config_path) {
        log_info("onair", "SIGHUP: running on built-in defaults, nothing to reload");
        return;
    }
    log_info("onair", "SIGHUP: reloading %s", app->config_path);
    if (cfg_load(app->config_path, &next, &errs) < 0) {
        log_errors(&errs);
        log_error("onair", "SIGHUP: %d error%s in %s; keeping the running configuration",
                  errs.count, errs.count == 1 ? "" : "s", app->config_path);
        cfg_errors_reset(&errs);
        return;
    }
    /* Effective connection limits, as at start, so that they compare like for like. */
    if (size_connection_budgets(next) < 0)
        goto out;
    n = cfg_diff(old, next, collect_change, &changes);
    if (n == 0) {
        /* Renewed certificates keep their file names: read them again anyway. */
        log_info("onair", "SIGHUP: no changes to the configuration; reading the certificates "
                          "again");
        rtmp_server_reload_tls(app->rtmp);
        http_server_reload_tls(app->http, app->cfg);
        goto out;
    }
    /* HTTPS on or off is another kind of daemon: a new server, as for a new address. */
    new_http = strcmp(old->http_listen, next->http_listen) != 0 ||
               strcmp(old->http_redirect_listen, next->http_redirect_listen) != 0 ||
               !old->http_tls_cert[0] != !next->http_tls_cert[0];
    if (new_http && http_server_new(next, app->store, &nhttp) < 0) {
        log_error("onair", "SIGHUP: cannot listen on %s; keeping the running configuration",
                  next->http_listen);
        goto out;
    }
    if (nhttp)
        http_server_set_recorder(nhttp, app->rec);
    else if (http_server_reload_tls(app->http, next) < 0) {
        log_error("onair", "SIGHUP: cannot load the HTTPS certificate; keeping the running "
                           "configuration");
        goto out;
    }
    if (rtmp_server_reconfigure(app->rtmp, next) < 0) {
        log_error("onair", "SIGHUP: cannot apply the rtmp/rtmps settings (see above); keeping "
                           "the running configuration");
        http_server_free(nhttp);
        goto out;
    }
    if (new_http) {
        retire_http_server(app, app->http);
        app->http = nhttp;
    } else {
        http_server_reconfigure(app->http, next);
        if (next->http_threads != old->http_threads ||
            strcmp(next->http_player_js, old->http_player_js) != 0)
            log_warn("onair", "SIGHUP: http.threads and http.player_js apply with the next "
                              "http.listen change or a restart");
    }
    if (strcmp(next->process_pid_file, old->process_pid_file) != 0)
        log_warn("onair", "SIGHUP: process.pid_file applies at the next start");
    rec_reconfigure(app->rec, next);
    if (strcmp(next->record_path, old->record_path) != 0)
        log_warn("onair", "SIGHUP: record.path applies at the next start");
    if (strcmp(next->admin_listen, old->admin_listen) != 0)
        log_warn("onair", "SIGHUP: admin.listen applies at the next start (the admin port and "
                          "statistics stay as they are)");
    reconfigure_observing(app, next);
    log_lines("SIGHUP: ", (const char *)changes.data, changes.len);
    log_set_level(cfg_log_level(next));
    app->cfg = next;
    next = NULL;
    cfg_unref(old);
    log_info("onair", "SIGHUP: %d change%s applied", n, n == 1 ? "" : "s");
out:
    bytes_reset(&changes);
    cfg_unref(next);
}

/* Logs each "FILE:LINE:COL: message" line of ERRS as an error. */
static void log_errors(const struct cfg_errors *errs)
{
    const char *p = cfg_errors_str(errs);

    while (*p) {
        size_t n = strcspn(p, "\n");
        log_error("config", "%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    store_sweep(arg);
    log_limited_flush();
}

/*
 * Gives memory freed after a flood (connection pools, partial messages) back
 * to the system: glibc keeps freed heap memory in its arenas otherwise.
 * Measured after three floods of 4,000 HTTP + 800 RTMP connections: RSS
 * 27 MB at start, 93 MB 7 s after the last flood without trimming, 33 MB
 * with it; MALLOC_ARENA_MAX=2 alone: 115 MB.
 */
static void on_trim(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    malloc_trim(0);
}

/* Host to show in URLs: the listen host, or 127.0.0.1 when it is "any". */
static void url_host(const char *listen, char *host, size_t len)
{
    char h[CFG_STR_MAX];
    int port;

    if (cfg_split_listen(listen, h, sizeof(h), &port) < 0 || !h[0] ||
        strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0)
        snprintf(host, len, "127.0.0.1");
    else if (strchr(h, ':'))
        snprintf(host, len, "[%s]", h);
    else
        snprintf(host, len, "%s", h);
}

/*
 * Raises the open-file limit to its hard maximum: every RTMP publisher and
 * every HTTP viewer is a descriptor, and the usual soft limit of 1024 would
 * cap viewers long before the CPU does.
 */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == rl.rlim_max)
        return;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        log_warn("onair", "cannot raise the open-file limit: %s", strerror(errno));
}

#define MIN_OPEN_FILES 64
#define TRIM_EVERY_S 5
#define RESERVED_FDS 32 /* stdio, event loop, listeners, files, libav */

/*
 * Splits the open-file limit between RTMP and HTTP connections, writing the
 * effective limits into CFG. When the configured limits do not fit, RTMP keeps
 * at most a quarter of the free descriptors and HTTP gets the rest, so neither
 * falls off a cliff. Returns 0, or -EMFILE (logged) when the limit is too low
 * to run at all.
 */
static int size_connection_budgets(struct cfg *cfg)
{
    struct rlimit rl;
    long long fds = 65536 + RESERVED_FDS, avail, rtmp, http;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        fds = (long long)rl.rlim_cur;
    if (fds < MIN_OPEN_FILES) {
        log_error("onair", "the open-file limit is %lld; onair needs at least %d (ulimit -n)", fds,
                  MIN_OPEN_FILES);
        return -EMFILE;
    }
    avail = fds - RESERVED_FDS - 2LL * cfg->http_threads;
    rtmp = cfg->rtmp_max_connections;
    http = cfg->http_max_connections > 0 ? cfg->http_max_connections : 65536;
    if (rtmp + http > avail) {
        if (rtmp > avail / 4)
            rtmp = avail / 4;
        if (http > avail - rtmp)
            http = avail - rtmp;
        if (cfg->http_max_connections > 0 || rtmp < cfg->rtmp_max_connections)
            log_warn("onair",
                     "the open-file limit %lld leaves room for %lld connections: RTMP gets %lld "
                     "(rtmp.max_connections %d), HTTP %lld (ulimit -n raises it)",
                     fds, avail, rtmp, cfg->rtmp_max_connections, http);
    }
    cfg->rtmp_max_connections = (int)rtmp;
    cfg->http_max_connections = (int)http;
    if (cfg->rtmp_max_unauthenticated > cfg->rtmp_max_connections)
        cfg->rtmp_max_unauthenticated = cfg->rtmp_max_connections;
    log_info("onair", "open-file limit %lld: up to %d RTMP (%d not yet publishing) and %d HTTP "
             "connections", fds, cfg->rtmp_max_connections, cfg->rtmp_max_unauthenticated,
             cfg->http_max_connections);
    return 0;
}

/* Signals the process must survive or act on from the very first instruction. */
static void early_signals(void)
{
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return, not death */
    signal(SIGXFSZ, SIG_IGN); /* a file-size limit fails the write (EFBIG), recording stops */
    signal(SIGHUP, SIG_IGN);  /* until on_hup is installed: never die on a reload */
}

static void free_event(struct event **ev)
{
    if (*ev)
        event_free(*ev);
    *ev = NULL;
}

/*
 * Installs SIGINT/SIGTERM/SIGHUP handling and the store sweep on BASE before
 * any server starts, so a signal during start-up is handled, not fatal.
 */
static int add_events(struct app *app, struct event *ev[5])
{
    static const struct timeval sweep_every = {1, 0}, trim_every = {TRIM_EVERY_S, 0};

    ev[0] = evsignal_new(app->base, SIGINT, on_stop, app);
    ev[1] = evsignal_new(app->base, SIGTERM, on_stop, app);
    ev[2] = evsignal_new(app->base, SIGHUP, on_hup, app);
    ev[3] = event_new(app->base, -1, EV_PERSIST, on_sweep, app->store);
    ev[4] = event_new(app->base, -1, EV_PERSIST, on_trim, NULL);
    if (!ev[0] || !ev[1] || !ev[2] || !ev[3] || !ev[4] || evsignal_add(ev[0], NULL) < 0 ||
        evsignal_add(ev[1], NULL) < 0 || evsignal_add(ev[2], NULL) < 0 ||
        event_add(ev[3], &sweep_every) < 0 ||
        event_add(ev[4], &trim_every) < 0) {
        log_error("onair", "cannot install signal handlers: %s", strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * What to type where. With `publish: keys` the stream key is a secret from
 * the config, so the banner names the public streams and never a key.
 */
static void print_banner(const struct cfg *c, const char *rhost, int rport, const char *hhost,
                         int hport)
{
    const char *show = c->publish == CFG_PUBLISH_KEYS ? c->streams[0].name : "show";

    printf("\n  OBS:     Settings > Stream > Service: Custom\n"
           "           Server:     rtmp://%s:%d/%s\n",
           rhost, rport, c->rtmp_app);
    if (c->publish == CFG_PUBLISH_KEYS) {
        printf("           Stream Key: the stream's key from the config file (publish: keys)\n"
               "  ffmpeg:  ffmpeg -re -i input.mp4 -c copy -f flv rtmp://%s:%d/%s/STREAM_KEY\n",
               rhost, rport, c->rtmp_app);
        for (size_t i = 0; i < c->nstreams; i++)
            printf("  %s http://%s:%d/live/%s/\n", i ? "        " : "Viewers:", hhost, hport,
                   c->streams[i].name);
    } else {
        printf("           Stream Key: any name, e.g. show\n"
               "  ffmpeg:  ffmpeg -re -i input.mp4 -c copy -f flv rtmp://%s:%d/%s/show\n"
               "  Viewers: http://%s:%d/live/%s/          (player page)\n",
               rhost, rport, c->rtmp_app, hhost, hport, show);
    }
    printf("           http://%s:%d/live/%s/index.m3u8 (any HLS player)\n\n", hhost, hport, show);
}

/* The "ready" line (tests read it to learn the ports with port 0) and the banner. */
static void announce(const struct app *app)
{
    char rhost[CFG_STR_MAX + 2], hhost[CFG_STR_MAX + 2];
    int rport = rtmp_server_port(app->rtmp), hport = http_server_port(app->http);

    url_host(app->cfg->rtmp_listen, rhost, sizeof(rhost));
    url_host(app->cfg->http_listen, hhost, sizeof(hhost));
    if (rtmp_server_tls_port(app->rtmp) >= 0)
        log_info("onair", "onair %s ready: rtmp port %d, http port %d, rtmps port %d",
                 ONAIR_VERSION, rport, hport, rtmp_server_tls_port(app->rtmp));
    else
        log_info("onair", "onair %s ready: rtmp port %d, http port %d", ONAIR_VERSION, rport,
                 hport);
    print_banner(app->cfg, rhost, rport, hhost, hport);
    fflush(stdout);
}

/* admin_params.kick: on the admin thread; the RTMP loop does the work. */
static int kick_publisher(void *arg, const char *name)
{
    return rtmp_server_kick(((struct app *)arg)->rtmp, name);
}

/*
 * Statistics, thumbnails, the admin port and the access log. Statistics are
 * collected only when something can read them (admin.listen set).
 */
static int start_observing(struct app *app)
{
    const struct cfg *cfg = app->cfg;
    struct admin_params p = {
        .listen = cfg->admin_listen,
        .token = cfg->admin_token,
        .config_path = app->config_path,
        .kick = kick_publisher,
        .kick_arg = app,
    };
    int rc;

    mx_set_enabled(cfg->admin_listen[0] != '\0');
    http_set_access_log(strcmp(cfg->log_http_access, "on") == 0);
    rc = thumb_start((int)(cfg->thumbnails_interval * 1000));
    if (rc < 0) {
        log_error("onair", "cannot start the thumbnail thread: %s", strerror(-rc));
        return rc;
    }
    return admin_server_new(&p, app->store, &app->admin);
}

/* SIGHUP: the observation keys that apply at once (admin.listen needs a restart). */
static void reconfigure_observing(struct app *app, const struct cfg *next)
{
    log_set_json(strcmp(next->log_format, "json") == 0);
    http_set_access_log(strcmp(next->log_http_access, "on") == 0);
    thumb_set_interval((int)(next->thumbnails_interval * 1000));
    admin_server_set_token(app->admin, next->admin_token);
}

/* Starts everything, runs until SIGINT/SIGTERM, stops. Returns the exit status. */
static int run(struct app *app)
{
    struct event *ev[5] = {NULL};
    int rc = 1;

    raise_fd_limit();
    /* The snapshot is not shared yet: the effective limits are written into it. */
    if (size_connection_budgets((struct cfg *)app->cfg) < 0)
        goto out;
    seg_global_init();
    app->base = event_base_new();
    if (!app->base) {
        log_error("onair", "cannot create the event loop: %s", strerror(errno));
        goto out;
    }
    app->store = store_new();
    if (!app->store) {
        log_error("onair", "out of memory");
        goto out;
    }
    if (add_events(app, ev) < 0)
        goto out;
    if (rec_new(app->cfg, &app->rec) < 0)
        goto out;
    if (rtmp_server_new(app->base, app->cfg, app->store, &app->rtmp) < 0)
        goto out;
    rtmp_server_set_recorder(app->rtmp, app->rec);
    if (http_server_new(app->cfg, app->store, &app->http) < 0)
        goto out;
    http_server_set_recorder(app->http, app->rec);
    if (start_observing(app) < 0) {
        log_error("onair", "start-up failed; exiting");
        goto out;
    }
    if (write_pid_file(app->cfg->process_pid_file) < 0)
        goto out;
    announce(app);
    if (event_base_dispatch(app->base) < 0) {
        log_error("onair", "event loop failed: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc && !app->http)
        log_error("onair", "start-up failed; exiting");
    remove_pid_file(app->cfg->process_pid_file);
    for (size_t i = 0; i < ARRAY_SIZE(ev); i++)
        free_event(&ev[i]);
    admin_server_free(app->admin); /* first: it calls into the RTMP server */
    rtmp_server_free(app->rtmp); /* ends every stream before the store goes */
    http_server_free(app->http);
    if (app->retiring_started)
        pthread_join(app->retiring, NULL); /* it reads the store too */
    thumb_stop(); /* after every caller: RTMP and HTTP */
    rec_free(app->rec); /* after the streams ended: their recordings are closed */
    store_free(app->store);
    mx_shutdown();
    if (app->base)
        event_base_free(app->base);
    return rc;
}

/* --check-config FILE: every error on stderr, a summary, exit 1; or "FILE: ok". */
static int check_config(const char *path)
{
    struct cfg_errors errs = {0};
    struct cfg *c = NULL;

    if (cfg_load(path, &c, &errs) < 0) {
        fputs(cfg_errors_str(&errs), stderr);
        fprintf(stderr, "%s: %d error%s\n", path, errs.count, errs.count == 1 ? "" : "s");
        cfg_errors_reset(&errs);
        return 1;
    }
    cfg_unref(c);
    printf("%s: ok\n", path);
    return 0;
}

/* Reads a pid from PATH; returns it, or -1 with the reason on stderr. */
static long read_pid(const char *path)
{
    char text[32] = "", *end;
    FILE *f = fopen(path, "r");
    long pid;

    if (!f) {
        fprintf(stderr, "onair: cannot read the pid file %s: %s (is onair running?)\n", path,
                strerror(errno));
        return -1;
    }
    if (!fgets(text, sizeof(text), f))
        text[0] = '\0';
    fclose(f);
    pid = strtol(text, &end, 10);
    if (pid <= 1 || (*end && *end != '\n')) {
        fprintf(stderr, "onair: %s does not hold a process id\n", path);
        return -1;
    }
    return pid;
}

/* --reload: validate the file, then SIGHUP the instance named by its pid file. */
static int reload_running(const char *path)
{
    struct cfg_errors errs = {0};
    struct cfg *c = NULL;
    long pid;
    int rc = 1;

    if (!path) {
        fprintf(stderr, "onair: --reload needs --config FILE (to validate it and find "
                        "process.pid_file)\n");
        return 2;
    }
    if (cfg_load(path, &c, &errs) < 0) {
        fputs(cfg_errors_str(&errs), stderr);
        fprintf(stderr, "%s: %d error%s; not reloading (the running configuration stays)\n",
                path, errs.count, errs.count == 1 ? "" : "s");
        cfg_errors_reset(&errs);
        return 1;
    }
    if (!c->process_pid_file[0]) {
        fprintf(stderr, "onair: %s sets no process.pid_file, so the running instance cannot be "
                        "found; set it, or send SIGHUP yourself\n", path);
        goto out;
    }
    pid = read_pid(c->process_pid_file);
    if (pid < 0)
        goto out;
    if (kill((pid_t)pid, SIGHUP) != 0) {
        fprintf(stderr, "onair: cannot signal pid %ld from %s: %s\n", pid, c->process_pid_file,
                strerror(errno));
        goto out;
    }
    printf("onair: %s is valid; pid %ld asked to reload it\n", path, pid);
    rc = 0;
out:
    cfg_unref(c);
    return rc;
}

/* Writes our pid to PATH (if set). Returns 0 or -errno (logged). */
static int write_pid_file(const char *path)
{
    FILE *f;

    if (!path[0])
        return 0;
    f = fopen(path, "w");
    if (!f || fprintf(f, "%ld\n", (long)getpid()) < 0 || fclose(f) != 0) {
        int err = errno;
        log_error("onair", "cannot write the pid file %s: %s", path, strerror(err));
        return -err;
    }
    return 0;
}

/* Removes PATH if it still names this process (a newer instance may own it). */
static void remove_pid_file(const char *path)
{
    FILE *f;
    long pid = 0;

    if (!path[0] || !(f = fopen(path, "r")))
        return;
    if (fscanf(f, "%ld", &pid) == 1 && pid == (long)getpid())
        unlink(path);
    fclose(f);
}

static int print_reference(void)
{
    struct bytes md = {0};
    int rc = cfg_reference_markdown(&md);

    if (rc == 0)
        fwrite(md.data, 1, md.len, stdout);
    bytes_reset(&md);
    return rc == 0 ? 0 : 1;
}

/* Seconds in "90", "90s", "30m", "2h", "7d", or -1. */
static long parse_ttl(const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (end == s || v <= 0 || v > 100L * 365 * 86400)
        return -1;
    if (!*end || !strcmp(end, "s"))
        return v;
    if (!strcmp(end, "m"))
        return v * 60;
    if (!strcmp(end, "h"))
        return v * 3600;
    if (!strcmp(end, "d"))
        return v * 86400;
    return -1;
}

/* `onair --config FILE sign NAME --ttl T`: prints the link path; exit status. */
static int sign_command(const char *path, const char *name, const char *ttl_text)
{
    struct cfg_errors errs = {0};
    const struct cfg_stream *st;
    struct cfg *c = NULL;
    long ttl = parse_ttl(ttl_text);
    char link[512], when[40];
    int64_t exp;

    if (ttl < 0) {
        fprintf(stderr, "onair sign: --ttl '%s' is not a duration (90s, 30m, 2h, 7d)\n", ttl_text);
        return 2;
    }
    if (!path) {
        fprintf(stderr, "onair sign: needs --config FILE (the file with http.signing_secret)\n");
        return 2;
    }
    if (cfg_load(path, &c, &errs) < 0) {
        fputs(cfg_errors_str(&errs), stderr);
        cfg_errors_reset(&errs);
        return 1;
    }
    if (!c->http_signing_secret[0]) {
        fprintf(stderr, "onair sign: %s sets no http.signing_secret\n", path);
        cfg_unref(c);
        return 1;
    }
    st = cfg_find_stream(c, name);
    if (!st || !st->signed_playback)
        fprintf(stderr, "onair sign: warning: stream %s is not listed with playback: signed; "
                        "it plays without a signature\n", name);
    exp = time_wall_ms() / 1000 + ttl;
    if (!stream_name_valid(name) ||
        http_sign_link(c->http_signing_secret, name, exp, link, sizeof(link)) < 0) {
        fprintf(stderr, "onair sign: '%s' is not a stream name\n", name);
        cfg_unref(c);
        return 2;
    }
    cfg_unref(c);
    time_iso8601(exp * 1000, when, sizeof(when));
    printf("%s\n", link);
    fprintf(stderr, "valid until %s; put your server's https://HOST:PORT in front\n", when);
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 'k'},
        {"config-reference", no_argument, NULL, 'R'},
        {"reload", no_argument, NULL, 'r'},
        {"ttl", required_argument, NULL, 't'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct app app = {0};
    const char *check = NULL;
    struct cfg_errors errs = {0};
    const char *ttl = "2h";
    bool reload = false;
    int c, rc;

    early_signals();
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            app.config_path = optarg;
            break;
        case 'k':
            check = optarg;
            break;
        case 'R':
            return print_reference();
        case 'r':
            reload = true;
            break;
        case 't':
            ttl = optarg;
            break;
        case 'V':
            printf("onair %s\n", ONAIR_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind + 2 == argc && !strcmp(argv[optind], "sign"))
        return sign_command(app.config_path, argv[optind + 1], ttl);
    if (optind < argc) {
        fprintf(stderr, "onair: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (check)
        return check_config(check);
    if (reload)
        return reload_running(app.config_path);
    if (!app.config_path) {
        app.cfg = cfg_new();
        if (!app.cfg) {
            fprintf(stderr, "onair: out of memory\n");
            return 1;
        }
    } else if (cfg_load(app.config_path, (struct cfg **)&app.cfg, &errs) < 0) {
        fputs(cfg_errors_str(&errs), stderr);
        fprintf(stderr, "%s: %d error%s; start-up failed\n", app.config_path, errs.count,
                errs.count == 1 ? "" : "s");
        cfg_errors_reset(&errs);
        return 1;
    }
    log_set_level(cfg_log_level(app.cfg));
    log_set_json(strcmp(app.cfg->log_format, "json") == 0);
    rc = run(&app);
    cfg_unref(app.cfg);
    return rc;
}
