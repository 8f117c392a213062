/*
 * fuzz_schema.c - libFuzzer target: the schema compiler and validator
 * (liboutbox/schema.c, with PCRE2 for "pattern"). The input is a schema in
 * JSON, a NUL byte, and an event's data in JSON. A schema compiles or is
 * refused with a message; data validates or is refused with a message
 * naming a path under "data"; nothing crashes, hangs (a pattern that
 * backtracks for ever must hit a limit and say so) or leaks.
 */
#include "schema.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, '\0', size);
    size_t schema_len = nul ? (size_t)(nul - data) : size;
    char *schema_json = malloc(schema_len + 1);
    memcpy(schema_json, data, schema_len);
    schema_json[schema_len] = '\0';

    char errbuf[512];
    outbox_schema_t *schema = outbox__schema_compile(schema_json, errbuf, sizeof errbuf);
    free(schema_json);
    if (!schema) {
        if (!memchr(errbuf, '\0', sizeof errbuf))
            abort();
        return 0;
    }
    if (nul) {
        bson_t doc;
        bson_error_t berr;
        const uint8_t *json = nul + 1;
        size_t json_len = size - schema_len - 1;
        if (bson_init_from_json(&doc, (const char *)json, (ssize_t)json_len, &berr)) {
            if (!outbox__schema_validate(schema, &doc, "data", errbuf, sizeof errbuf) &&
                strncmp(errbuf, "data", 4) != 0)
                abort(); /* every refusal names the path, from "data" on */
            bson_destroy(&doc);
        }
    }
    outbox__schema_destroy(schema);
    return 0;
}
