/*
 * onair — RTMP in, low-latency HLS out.
 *
 * Threads: main runs the libevent loop that owns every RTMP connection and
 * drives the segmenter; libmicrohttpd runs its own pool that only reads the
 * store.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
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
#include "segmenter/segmenter.h"
#include "store/store.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: onair [--config FILE]\n"
            "       onair --check-config FILE\n"
            "       onair --version | --help\n"
            "\n"
            "Receives RTMP (OBS, ffmpeg, GStreamer) and serves it as HLS.\n"
            "Without --config the built-in defaults are used (see config/onair.example.yaml).\n"
            "\n"
            "  -c, --config FILE        read the YAML configuration FILE\n"
            "      --check-config FILE  validate FILE and exit (0 valid, 1 invalid)\n"
            "  -V, --version            print the version and exit\n"
            "  -h, --help               print this help and exit\n");
}

struct app {
    struct event_base *base;
    struct store *store;
    struct cfg cfg;
    const char *config_path;
};

static void on_stop(evutil_socket_t sig, short what, void *arg)
{
    struct app *app = arg;

    log_info("onair", "%s: shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    event_base_loopexit(app->base, NULL);
}

static void on_hup(evutil_socket_t sig, short what, void *arg)
{
    struct app *app = arg;
    struct cfg next;
    char err[512];

    if (!app->config_path) {
        log_info("onair", "SIGHUP: running on built-in defaults, nothing to reload");
        return;
    }
    cfg_defaults(&next);
    if (cfg_load(app->config_path, &next, err, sizeof(err)) < 0) {
        log_error("onair", "SIGHUP: keeping the running configuration: %s", err);
        return;
    }
    /* Live reload of every key lands with the full config issue; for now the
     * file is validated and the change is reported. */
    log_warn("onair", "SIGHUP: %s is valid; applying it needs a restart in this version",
             app->config_path);
}

static void on_sweep(evutil_socket_t fd, short what, void *arg)
{
    store_sweep(arg);
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
    log_info("onair", "open-file limit %lld: up to %d RTMP and %d HTTP connections", fds,
             cfg->rtmp_max_connections, cfg->http_max_connections);
    return 0;
}

/* Signals the process must survive or act on from the very first instruction. */
static void early_signals(void)
{
    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return, not death */
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
static int add_events(struct app *app, struct event *ev[4])
{
    static const struct timeval sweep_every = {1, 0};

    ev[0] = evsignal_new(app->base, SIGINT, on_stop, app);
    ev[1] = evsignal_new(app->base, SIGTERM, on_stop, app);
    ev[2] = evsignal_new(app->base, SIGHUP, on_hup, app);
    ev[3] = event_new(app->base, -1, EV_PERSIST, on_sweep, app->store);
    if (!ev[0] || !ev[1] || !ev[2] || !ev[3] || evsignal_add(ev[0], NULL) < 0 ||
        evsignal_add(ev[1], NULL) < 0 || evsignal_add(ev[2], NULL) < 0 ||
        event_add(ev[3], &sweep_every) < 0) {
        log_error("onair", "cannot install signal handlers: %s", strerror(errno));
        return -1;
    }
    return 0;
}

static void print_banner(const struct app *app, const struct rtmp_server *rtmp,
                         const struct http_server *http)
{
    char rhost[CFG_STR_MAX + 2], hhost[CFG_STR_MAX + 2];

    url_host(app->cfg.rtmp_listen, rhost, sizeof(rhost));
    url_host(app->cfg.http_listen, hhost, sizeof(hhost));
    /* Tests read this line to learn the ports when the config asks for port 0. */
    log_info("onair", "onair %s ready: rtmp port %d, http port %d", ONAIR_VERSION,
             rtmp_server_port(rtmp), http_server_port(http));
    printf("\n"
           "  OBS:     Settings > Stream > Service: Custom\n"
           "           Server:     rtmp://%s:%d/%s\n"
           "           Stream Key: any name, e.g. show\n"
           "  ffmpeg:  ffmpeg -re -i input.mp4 -c copy -f flv rtmp://%s:%d/%s/show\n"
           "  Viewers: http://%s:%d/live/show/          (player page)\n"
           "           http://%s:%d/live/show/index.m3u8 (any HLS player)\n\n",
           rhost, rtmp_server_port(rtmp), app->cfg.rtmp_app, rhost, rtmp_server_port(rtmp),
           app->cfg.rtmp_app, hhost, http_server_port(http), hhost, http_server_port(http));
    fflush(stdout);
}

/* Starts everything, runs until SIGINT/SIGTERM, stops. Returns the exit status. */
static int run(struct app *app)
{
    struct rtmp_server *rtmp = NULL;
    struct http_server *http = NULL;
    struct event *ev[4] = {NULL};
    int rc = 1;

    raise_fd_limit();
    if (size_connection_budgets(&app->cfg) < 0)
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
    if (rtmp_server_new(app->base, &app->cfg, app->store, &rtmp) < 0)
        goto out;
    if (http_server_new(&app->cfg, app->store, &http) < 0)
        goto out;
    print_banner(app, rtmp, http);
    if (event_base_dispatch(app->base) < 0) {
        log_error("onair", "event loop failed: %s", strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (rc && !http)
        log_error("onair", "start-up failed; exiting");
    for (size_t i = 0; i < ARRAY_SIZE(ev); i++)
        free_event(&ev[i]);
    rtmp_server_free(rtmp); /* ends every stream before the store goes */
    http_server_free(http);
    store_free(app->store);
    if (app->base)
        event_base_free(app->base);
    return rc;
}

static enum log_level level_from_name(const char *s)
{
    if (strcmp(s, "error") == 0)
        return LOG_ERROR;
    if (strcmp(s, "warn") == 0)
        return LOG_WARN;
    if (strcmp(s, "debug") == 0)
        return LOG_DEBUG;
    return LOG_INFO;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", required_argument, NULL, 'k'},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct app app = {0};
    const char *check = NULL;
    char err[512];
    int c;

    early_signals();
    while ((c = getopt_long(argc, argv, "c:Vh", opts, NULL)) != -1) {
        switch (c) {
        case 'c':
            app.config_path = optarg;
            break;
        case 'k':
            check = optarg;
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
    if (optind < argc) {
        fprintf(stderr, "onair: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    cfg_defaults(&app.cfg);
    if (check) {
        if (cfg_load(check, &app.cfg, err, sizeof(err)) < 0) {
            fprintf(stderr, "%s\n", err);
            return 1;
        }
        printf("%s: ok\n", check);
        return 0;
    }
    if (app.config_path && cfg_load(app.config_path, &app.cfg, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    log_set_level(level_from_name(app.cfg.log_level));
    return run(&app);
}
