/*
 * listen_addr.c - see listen_addr.h.
 */
#include "listen_addr.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool outboxd_listen_split(const char *listen, char *buf, size_t size, const char **host, const char **port,
                         char *why, size_t why_size) {
    if (!listen || strlen(listen) >= size) {
        snprintf(why, why_size, "expected HOST:PORT");
        return false;
    }
    snprintf(buf, size, "%s", listen);
    char *colon;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close || close[1] != ':') {
            snprintf(why, why_size, "expected [IPV6]:PORT");
            return false;
        }
        *close = '\0';
        *host = buf + 1;
        colon = close + 1;
    } else {
        colon = strrchr(buf, ':');
        if (!colon || strchr(buf, ':') != colon) {
            snprintf(why, why_size, "expected HOST:PORT (an IPv6 address in brackets: [::1]:9187)");
            return false;
        }
        *colon = '\0';
        *host = buf[0] ? buf : NULL;
    }
    *port = colon + 1;
    char *end;
    errno = 0;
    long p = strtol(*port, &end, 10);
    if (!**port || *end || errno || p < 1 || p > 65535) {
        snprintf(why, why_size, "the port must be a number from 1 to 65535, got \"%s\"", *port);
        return false;
    }
    if (*host && !**host) {
        snprintf(why, why_size, "an empty host in brackets");
        return false;
    }
    return true;
}
