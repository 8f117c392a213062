/*
 * redact.c - outbox_uri_redacted(): the one redaction function for every
 * connection string a program of service-outbox prints (outboxd, outboxctl,
 * and, through outboxd's log, the plugins' messages).
 */
#include "internal.h"

#include <string.h>

static const char mask[] = "*****";

/* Redacts one URL, uri[0..len), appending to out (which has room for
 * len + sizeof mask). The password is everything between the first ':'
 * of the userinfo and the last '@' before the path's end; a user name
 * cannot hold a raw '/', so a ':' after one is a port or later. */
static size_t redact_one(const char *uri, size_t len, char *out) {
    const char *end = uri + len;
    const char *scheme = NULL;
    for (const char *p = uri; p + 2 < end; p++) {
        if (p[0] == ':' && p[1] == '/' && p[2] == '/') {
            scheme = p;
            break;
        }
    }
    const char *start = scheme ? scheme + 3 : uri;
    const char *last_at = NULL;
    for (const char *p = start; p < end; p++)
        if (*p == '@')
            last_at = p;
    const char *colon = last_at ? memchr(start, ':', (size_t)(last_at - start)) : NULL;
    if (!colon || memchr(start, '/', (size_t)(colon - start))) {
        memcpy(out, uri, len);
        return len;
    }
    size_t head = (size_t)(colon + 1 - uri), tail = (size_t)(end - last_at);
    memcpy(out, uri, head);
    memcpy(out + head, mask, sizeof mask - 1);
    memcpy(out + head + sizeof mask - 1, last_at, tail);
    return head + sizeof mask - 1 + tail;
}

/* A list is split only where a new URL starts ("," then "scheme://"), so
 * that a ',' inside a password or in a MongoDB host list stays put. */
static const char *next_url(const char *p) {
    for (; *p; p++) {
        if (*p != ',')
            continue;
        const char *q = p + 1;
        while (*q == ' ')
            q++;
        const char *s = q;
        while ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
               *s == '+' || *s == '-' || *s == '.')
            s++;
        if (s > q && strncmp(s, "://", 3) == 0)
            return p;
    }
    return p;
}

char *outbox_uri_redacted(const char *uri) {
    if (!uri)
        return NULL;
    size_t len = strlen(uri), n_urls = 1;
    for (const char *p = next_url(uri); *p; p = next_url(p + 1))
        n_urls++;
    char *out = bson_malloc(len + n_urls * (sizeof mask - 1) + 1);
    size_t n = 0;
    const char *p = uri;
    for (;;) {
        const char *end = next_url(p);
        n += redact_one(p, (size_t)(end - p), out + n);
        if (!*end)
            break;
        out[n++] = ',';
        p = end + 1;
    }
    out[n] = '\0';
    return out;
}
