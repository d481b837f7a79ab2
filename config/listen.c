/* Listen addresses: "host:port", ":port", "[v6]:port", and their resolution. */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "config.h"

static bool host_char(char ch, bool bracketed)
{
    return isalnum((unsigned char)ch) || ch == '.' || ch == '-' || ch == '_' ||
           (bracketed && (ch == ':' || ch == '%'));
}

int cfg_split_listen(const char *listen, char *host, size_t hostlen, int *port)
{
    const char *h, *colon, *p;
    size_t hlen, i;
    bool bracketed;
    long v = 0;

    if (host && hostlen)
        host[0] = '\0';
    if (!listen)
        return -EINVAL;
    bracketed = listen[0] == '[';
    if (bracketed) {
        const char *close = strchr(listen, ']');
        if (!close || close[1] != ':')
            return -EINVAL;
        h = listen + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
        if (!hlen || !memchr(h, ':', hlen))
            return -EINVAL;
    } else {
        colon = strrchr(listen, ':');
        if (!colon)
            return -EINVAL;
        h = listen;
        hlen = (size_t)(colon - h);
    }
    for (i = 0; i < hlen; i++)
        if (!host_char(h[i], bracketed))
            return -EINVAL; /* also rejects an unbracketed IPv6 address */
    p = colon + 1;
    if (!*p || strlen(p) > 5)
        return -EINVAL;
    for (; *p; p++) {
        if (!isdigit((unsigned char)*p))
            return -EINVAL;
        v = v * 10 + (*p - '0');
    }
    if (v > 65535)
        return -EINVAL;
    if (host) {
        if (hlen >= hostlen)
            return -EINVAL;
        memcpy(host, h, hlen);
        host[hlen] = '\0';
    }
    if (port)
        *port = (int)v;
    return 0;
}

int cfg_resolve_listen(const char *host, int port, struct addrinfo **out, const char **why)
{
    struct addrinfo hints = {0};
    char portstr[8];
    int rc;

    snprintf(portstr, sizeof(portstr), "%d", port);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rc = getaddrinfo(host, portstr, &hints, out);
    if (rc != 0) {
        *out = NULL;
        *why = gai_strerror(rc);
        return -EINVAL;
    }
    return 0;
}
