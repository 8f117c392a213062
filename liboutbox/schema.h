/*
 * schema.h - event schemas: a subset of MongoDB $jsonSchema, compiled once
 * and checked against every event's data before anything is written.
 *
 * The subset (docs/schemas.md): bsonType, type, required, properties,
 * additionalProperties, enum, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, minLength, maxLength, pattern, items, minItems,
 * maxItems, plus the annotations title and description. Every keyword
 * means what it means to MongoDB's validator, so the same schema can be
 * installed on the server unchanged.
 */
#ifndef OUTBOX_CORE_SCHEMA_H
#define OUTBOX_CORE_SCHEMA_H

#include "outbox/outbox.h"

#include <bson/bson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct outbox_schema outbox_schema_t;

/* Compiles a schema from its JSON text. On failure returns NULL and writes
 * "<where>: <what>" into errbuf, where is the keyword's path inside the
 * schema ("properties.qty.minimum"). */
outbox_schema_t *outbox__schema_compile(const char *json, char *errbuf, size_t errbuf_size);
void outbox__schema_destroy(outbox_schema_t *schema);

/* The schema as a BSON document, as it was written (borrowed). */
const bson_t *outbox__schema_document(const outbox_schema_t *schema);

/* Checks data against schema. On a mismatch returns false and writes
 * "<path>: <what>" into errbuf, path starting at root_name
 * ("data.lines[2].qty: expected int, got string"). Stops at the first
 * mismatch, in document order. */
bool outbox__schema_validate(const outbox_schema_t *schema, const bson_t *data,
                             const char *root_name, char *errbuf, size_t errbuf_size);

/* As outbox__schema_validate, telling a mismatch (OUTBOX_ERR_VALIDATION)
 * from a pattern that hit its match or depth limit (OUTBOX_ERR_LIMIT: the
 * data was neither accepted nor refused). */
outbox_code_t outbox__schema_check(const outbox_schema_t *schema, const bson_t *data,
                                   const char *root_name, char *errbuf, size_t errbuf_size);

/* The name MongoDB uses for a BSON type ("int", "objectId", ...). */
const char *outbox__bson_type_name(bson_type_t type);

#endif
