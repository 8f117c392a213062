'use strict';
/*
 * Event schemas: the subset of MongoDB's $jsonSchema that liboutbox accepts
 * (docs/schemas.md), checked when a type is declared and applied to each
 * event's data before it is written.
 *
 * Validation is Ajv's draft-04 validator (MongoDB's $jsonSchema is draft 4)
 * with the keyword bsonType added, and liboutbox's readings where Ajv's
 * built-in keywords go by JavaScript's types (forAjv): type as sets of BSON
 * types, bounds over longs and Decimal128s. The table of tests/validation/cases.json
 * holds every verdict to liboutbox's: the same events are accepted or
 * refused, at the same path.
 */
const Ajv = require('ajv-draft-04');

const KEYWORDS = new Set(['bsonType', 'type', 'required', 'properties', 'additionalProperties', 'enum', 'minimum',
  'maximum', 'exclusiveMinimum', 'exclusiveMaximum', 'minLength', 'maxLength', 'pattern', 'items', 'minItems',
  'maxItems', 'title', 'description']);
const BSON_TYPES = new Set(['double', 'string', 'object', 'array', 'binData', 'undefined', 'objectId', 'bool', 'date',
  'null', 'regex', 'dbPointer', 'javascript', 'symbol', 'javascriptWithScope', 'int', 'timestamp', 'long', 'decimal',
  'minKey', 'maxKey', 'number']);
/* JSON Schema's types as liboutbox reads them: sets of BSON types. */
const JSON_AS_BSON = {
  object: ['object'], array: ['array'], number: ['int', 'long', 'double', 'decimal'], boolean: ['bool'],
  string: ['string'], null: ['null'],
};
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

function checkNames(v, p, known, kind) {
  const names = Array.isArray(v) ? v : [v];
  if (Array.isArray(v) && v.length === 0) throw new SchemaError(p, 'needs at least one type');
  for (const name of names) {
    if (typeof name !== 'string') throw new SchemaError(p, 'expected a string or an array of strings');
    if (name === 'integer' && kind === 'JSON') throw new SchemaError(p, 'type "integer" is refused, as MongoDB refuses it: use bsonType "int"');
    if (!known.has(name)) throw new SchemaError(p, `unknown ${kind} type ${JSON.stringify(name)}`);
  }
}

/* Throws SchemaError, naming the keyword's path, for a schema outside the
 * subset: liboutbox's rules (schema.c), and its paths. */
function checkSchema(schema, path = '') {
  if (!isObject(schema)) throw new SchemaError(path || '(schema root)', 'a schema must be an object');
  for (const [kw, v] of Object.entries(schema)) {
    const p = join(path, kw);
    if (!KEYWORDS.has(kw)) throw new SchemaError(p, 'keyword not supported');
    switch (kw) {
      case 'bsonType':
        checkNames(v, p, BSON_TYPES, 'BSON');
        break;
      case 'type':
        checkNames(v, p, JSON_TYPES, 'JSON');
        break;
      case 'title': case 'description':
        if (typeof v !== 'string') throw new SchemaError(p, 'expected a string');
        break;
      case 'required':
        if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw new SchemaError(p, 'expected an array of property names');
        if (v.length === 0) throw new SchemaError(p, 'must name at least one property');
        break;
      case 'properties':
        if (!isObject(v)) throw new SchemaError(p, 'expected an object of schemas');
        for (const [name, sub] of Object.entries(v)) checkSchema(sub, join(p, name));
        break;
      case 'additionalProperties':
        if (typeof v !== 'boolean') checkSchema(v, p);
        break;
      case 'enum':
        if (!Array.isArray(v) || v.length === 0) throw new SchemaError(p, 'expected a non-empty array of values');
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

/* A value's number for the bounds, as liboutbox compares it (a long, a
 * Decimal128 as a double), or null for what is no number. */
function numberOf(v) {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (v === null || typeof v !== 'object') return null;
  switch (v._bsontype) {
    case 'Long': return v.toNumber();
    case 'Int32': case 'Double': return v.valueOf();
    case 'Decimal128': return Number.parseFloat(v.toString());
    default: return null;
  }
}

/* The schema Ajv compiles: liboutbox's readings where Ajv's built-in
 * keywords go by JavaScript's types: type as sets of BSON types (a Date is
 * no object, a Decimal128 is a number), bounds over every number kind. */
function forAjv(schema) {
  if (!isObject(schema)) return schema;
  const out = {};
  for (const [kw, v] of Object.entries(schema)) {
    if (kw === 'type') {
      out.bsonType = [...new Set((Array.isArray(v) ? v : [v]).flatMap((t) => JSON_AS_BSON[t]))];
      if (schema.bsonType) out['x-outbox-and-bsonType'] = schema.bsonType;
    } else if (kw === 'bsonType') {
      if (!schema.type) out.bsonType = v;
    } else if (kw === 'minimum' || kw === 'maximum') {
      const exclusive = schema[kw === 'minimum' ? 'exclusiveMinimum' : 'exclusiveMaximum'] === true;
      out[`x-outbox-${kw}`] = { bound: v, exclusive };
    } else if (kw === 'exclusiveMinimum' || kw === 'exclusiveMaximum') {
      // read with its bound above
    } else if (kw === 'properties') {
      out.properties = Object.fromEntries(Object.entries(v).map(([k, sub]) => [k, forAjv(sub)]));
    } else if (kw === 'additionalProperties' || kw === 'items') {
      out[kw] = forAjv(v);
    } else {
      out[kw] = v;
    }
  }
  return out;
}

const ajv = new Ajv({ allErrors: false, strict: false });
function typeKeyword(keyword) {
  return function check(wanted, data) {
    const names = Array.isArray(wanted) ? wanted : [wanted];
    const have = bsonType(data);
    if (names.includes(have) || (names.includes('number') && NUMBER.has(have))) return true;
    check.errors = [{ keyword, message: `expected ${names.join(' or ')}, got ${have}`, params: {} }];
    return false;
  };
}
ajv.addKeyword({ keyword: 'bsonType', errors: true, validate: typeKeyword('bsonType') });
ajv.addKeyword({ keyword: 'x-outbox-and-bsonType', errors: true, validate: typeKeyword('bsonType') });
for (const which of ['minimum', 'maximum']) {
  const isMin = which === 'minimum';
  ajv.addKeyword({
    keyword: `x-outbox-${which}`,
    errors: true,
    validate: function bound({ bound: b, exclusive }, data) {
      const v = numberOf(data);
      if (v === null) return true;
      // NaN passes no bound (it compares false with everything).
      const good = isMin ? (exclusive ? v > b : v >= b) : (exclusive ? v < b : v <= b);
      if (!good) {
        bound.errors = [{ keyword: which, message: `${v} is ${isMin ? 'below' : 'above'} ${exclusive ? 'exclusive ' : ''}${which} ${b}`, params: {} }];
      }
      return good;
    },
  });
}

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
    this.validate = ajv.compile(forAjv(schema));
  }

  /* null, or {path, message} of the first failure. */
  firstFailure(data, root = 'data') {
    if (this.validate(data)) return null;
    const e = this.validate.errors[0];
    return { path: pathOf(root, data, e), message: e.message };
  }
}

module.exports = { Schema, SchemaError, bsonType, checkSchema };
