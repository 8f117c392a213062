'use strict';
/*
 * Event schemas: the subset of MongoDB's $jsonSchema that liboutbox accepts
 * (docs/schemas.md), checked when a type is declared and applied to each
 * event's data before it is written.
 *
 * Validation is Ajv's draft-04 validator (MongoDB's $jsonSchema is draft 4)
 * with the keyword bsonType added. The table of tests/validation/cases.json
 * holds every verdict to liboutbox's: the same events are accepted or
 * refused, at the same path.
 */
const Ajv = require('ajv-draft-04');

const KEYWORDS = new Set(['bsonType', 'type', 'required', 'properties', 'additionalProperties', 'enum', 'minimum',
  'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'items', 'minItems',
  'maxItems', 'title', 'description']);
const BSON_TYPES = new Set(['double', 'string', 'object', 'array', 'binData', 'objectId', 'bool', 'date', 'null',
  'regex', 'javascript', 'int', 'timestamp', 'long', 'decimal', 'minKey', 'maxKey', 'number']);
const JSON_TYPES = new Set(['object', 'array', 'number', 'boolean', 'string', 'null']);
const NUMBER = new Set(['int', 'long', 'double', 'decimal']);

class SchemaError extends Error {
  /* A schema outside the subset; .path names the keyword. */
  constructor(path, what) {
    super(`${path}: ${what}`);
    this.name = 'SchemaError';
    this.path = path;
  }
}

/* The BSON type the driver writes a value as: the name bsonType uses. A
 * number is int when it is an integer that fits 32 bits and double
 * otherwise (the driver writes it so); a bigint or a Long is long. */
function bsonType(v) {
  if (v === null) return 'null';
  switch (typeof v) {
    case 'boolean': return 'bool';
    case 'number': return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? 'int' : 'double';
    case 'bigint': return 'long';
    case 'string': return 'string';
    case 'undefined': return 'undefined';
    default: break;
  }
  if (Array.isArray(v)) return 'array';
  if (v instanceof Date) return 'date';
  if (v instanceof RegExp) return 'regex';
  if (v instanceof Uint8Array) return 'binData';
  switch (v._bsontype) {
    case 'Long': return 'long';
    case 'Int32': return 'int';
    case 'Double': return 'double';
    case 'Decimal128': return 'decimal';
    case 'ObjectId': case 'ObjectID': return 'objectId';
    case 'Binary': return 'binData';
    case 'BSONRegExp': return 'regex';
    case 'Code': return 'javascript';
    case 'Timestamp': return 'timestamp';
    case 'MinKey': return 'minKey';
    case 'MaxKey': return 'maxKey';
    default: return 'object';
  }
}

const join = (path, key) => (path ? `${path}.${key}` : key);
const isPlainNumber = (v) => typeof v === 'number' && Number.isFinite(v);
const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/* Throws SchemaError, naming the keyword's path, for a schema outside the
 * subset (the same paths liboutbox names). */
function checkSchema(schema, path = '') {
  if (!isObject(schema)) throw new SchemaError(path || '(schema root)', 'a schema must be an object');
  for (const [kw, v] of Object.entries(schema)) {
    const p = join(path, kw);
    if (!KEYWORDS.has(kw)) throw new SchemaError(p, 'keyword not supported');
    switch (kw) {
      case 'bsonType':
        for (const name of Array.isArray(v) ? v : [v]) {
          if (typeof name !== 'string' || !BSON_TYPES.has(name)) throw new SchemaError(p, `unknown BSON type ${JSON.stringify(name)}`);
        }
        break;
      case 'type':
        for (const name of Array.isArray(v) ? v : [v]) {
          if (name === 'integer') throw new SchemaError(p, 'type "integer" is refused, as MongoDB refuses it: use bsonType "int"');
          if (typeof name !== 'string' || !JSON_TYPES.has(name)) throw new SchemaError(p, `unknown JSON type ${JSON.stringify(name)}`);
        }
        break;
      case 'required':
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new SchemaError(p, 'expected an array of property names');
        break;
      case 'properties':
        if (!isObject(v)) throw new SchemaError(p, 'expected an object of schemas');
        for (const [name, sub] of Object.entries(v)) checkSchema(sub, join(p, name));
        break;
      case 'additionalProperties':
        if (typeof v !== 'boolean') checkSchema(v, p);
        break;
      case 'enum':
        if (!Array.isArray(v)) throw new SchemaError(p, 'expected an array');
        break;
      case 'minimum': case 'maximum':
        if (!isPlainNumber(v)) throw new SchemaError(p, 'expected a number');
        break;
      case 'exclusiveMinimum': case 'exclusiveMaximum':
        if (typeof v !== 'boolean') throw new SchemaError(p, 'expected a boolean (draft 4, as MongoDB)');
        break;
      case 'minLength': case 'maxLength': case 'minItems': case 'maxItems':
        if (!Number.isInteger(v) || v < 0) throw new SchemaError(p, 'expected a non-negative integer');
        break;
      case 'pattern':
        if (typeof v !== 'string') throw new SchemaError(p, 'expected a string');
        try {
          new RegExp(v, 'u'); // eslint-disable-line no-new
        } catch (e) {
          throw new SchemaError(p, `not a valid regular expression: ${e.message}`);
        }
        break;
      case 'items':
        if (Array.isArray(v)) throw new SchemaError(p, 'the tuple form (an array of schemas) is not supported');
        checkSchema(v, p);
        break;
      default: // title, description
        break;
    }
  }
}

const ajv = new Ajv({ allErrors: false, strict: false });
ajv.addKeyword({
  keyword: 'bsonType',
  errors: true,
  validate: function bsonTypeKeyword(wanted, data) {
    const names = Array.isArray(wanted) ? wanted : [wanted];
    const have = bsonType(data);
    if (names.includes(have) || (names.includes('number') && NUMBER.has(have))) return true;
    bsonTypeKeyword.errors = [{ keyword: 'bsonType', message: `expected ${names.join(' or ')}, got ${have}`, params: {} }];
    return false;
  },
});

/* liboutbox's path of a failure: root.key[index]..., naming the missing
 * property of required and the refused one of additionalProperties. */
function pathOf(root, data, error) {
  let out = root;
  let at = data;
  for (const raw of error.instancePath.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += Array.isArray(at) ? `[${part}]` : `.${part}`;
    at = at == null ? undefined : at[part];
  }
  if (error.keyword === 'required') out += `.${error.params.missingProperty}`;
  else if (error.keyword === 'additionalProperties') out += `.${error.params.additionalProperty}`;
  return out;
}

class Schema {
  /* A declared type's schema, checked once; firstFailure() per event. */
  constructor(schema) {
    checkSchema(schema);
    this.document = schema;
    this.validate = ajv.compile(schema);
  }

  /* null, or {path, message} of the first failure. */
  firstFailure(data, root = 'data') {
    if (this.validate(data)) return null;
    const e = this.validate.errors[0];
    return { path: pathOf(root, data, e), message: e.message };
  }
}

module.exports = { Schema, SchemaError, bsonType, checkSchema };
