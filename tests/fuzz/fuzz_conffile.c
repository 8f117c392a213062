/*
 * fuzz_conffile.c - libFuzzer target: outboxd's configuration loader
 * (libyaml, then our checks) on any bytes. Whatever the file holds, the
 * loader returns a configuration or an error message; it never crashes,
 * hangs or leaks, and the message is a NUL-terminated string.
 *
 * The file is written into a private, empty folder, so that relative
 * uri_file / {file:} paths in the input find nothing (tests/fuzz/run runs
 * the fuzzer with stdin from /dev/null, so /dev/stdin reads nothing too).
 */
#include "conffile.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char path[256];

static void make_dir(void) {
    char tmpl[] = "/tmp/fuzz_conffile.XXXXXX";
    const char *dir = mkdtemp(tmpl);
    if (!dir)
        abort();
    snprintf(path, sizeof path, "%s/outboxd.yaml", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!path[0])
        make_dir();
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    char errbuf[2048];
    errbuf[0] = 'x';
    outboxd_conf_t *conf = outboxd_conf_load(path, errbuf, sizeof errbuf);
    if (conf) {
        if (!conf->database || !conf->outbox || !conf->mongodb_uri)
            abort(); /* a loaded configuration has every required key */
        outboxd_conf_free(conf);
    } else if (!memchr(errbuf, '\0', sizeof errbuf)) {
        abort();
    }
    return 0;
}
