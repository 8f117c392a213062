/*
 * ejson_dump.c - the C half of the JSON round trip test
 * (outboxd/test_ejson_roundtrip.sh): reads BSON documents one after the
 * other on stdin and writes each as one line of outboxd's JSON
 * (outboxd_ejson_encode). With --libbson, each is followed by a line of
 * libbson's relaxed Extended JSON (or the word NULL when libbson gives up),
 * which the test reads for the same values. Exits 1 if a document is not
 * well-formed BSON or the writer fails.
 */
#include "ejson.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
    bool with_libbson = argc > 1 && strcmp(argv[1], "--libbson") == 0;
    bson_reader_t *reader = bson_reader_new_from_fd(0, false);
    const bson_t *doc;
    bool eof = false;
    int status = 0;
    long n = 0;
    while ((doc = bson_reader_read(reader, &eof))) {
        n++;
        size_t len;
        char *json = outboxd_ejson_encode(doc, &len);
        if (!json || strlen(json) != len) {
            fprintf(stderr, "ejson_dump: document %ld: %s\n", n, json ? "length differs from strlen" : "NULL");
            free(json);
            status = 1;
            break;
        }
        fwrite(json, 1, len, stdout);
        putchar('\n');
        free(json);
        if (with_libbson) {
            char *theirs = bson_as_relaxed_extended_json(doc, NULL);
            puts(theirs ? theirs : "NULL");
            bson_free(theirs);
        }
    }
    if (!status && !eof) {
        fprintf(stderr, "ejson_dump: document %ld: not well-formed BSON\n", n + 1);
        status = 1;
    }
    bson_reader_destroy(reader);
    if (fflush(stdout) != 0)
        status = 1;
    return status;
}
