/*
 * fuzz_route.c - libFuzzer target: route expansion (outboxd's
 * outboxd_route_expand, the {type} and {key} placeholders every sink's
 * destination comes from). The input is a template, a NUL, a type, a NUL,
 * a key. Expansion either fits the buffer exactly, with every placeholder
 * replaced, or says it does not fit; it never writes past the buffer.
 */
#include "conffile.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Splits off the next NUL-terminated piece of the input (a copy). */
static char *piece(const uint8_t **p, const uint8_t *end) {
    const uint8_t *nul = memchr(*p, '\0', (size_t)(end - *p));
    size_t len = nul ? (size_t)(nul - *p) : (size_t)(end - *p);
    char *s = malloc(len + 1);
    memcpy(s, *p, len);
    s[len] = '\0';
    *p = nul ? nul + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *p = data, *end = data + size;
    char *route = piece(&p, end), *type = piece(&p, end), *key = piece(&p, end);
    /* The smallest buffers are where an off-by-one shows. */
    for (size_t out_size = 1; out_size <= 64; out_size *= 2) {
        char *out = malloc(out_size); /* exact size: ASan sees any overrun */
        long n = outboxd_route_expand(route, type, key, out, out_size);
        if (n >= 0 && ((size_t)n >= out_size || strlen(out) != (size_t)n))
            abort();
        free(out);
    }
    char big[8192];
    long n = outboxd_route_expand(route, type, key, big, sizeof big);
    if (n >= 0 && strlen(big) != (size_t)n)
        abort();
    free(route);
    free(type);
    free(key);
    return 0;
}
