'use strict';
/*
 * An outbox producer on the official MongoDB driver: events validated
 * against their type's schema, written into the capped log N, or into
 * N.pending inside the caller's transaction (MongoDB refuses capped writes
 * in transactions; outboxd's promoter moves them once committed). The
 * envelope is docs/envelope.md's, the same liboutbox writes.
 */
const fs = require('fs');
const path = require('path');
const { BSON, ObjectId } = require('mongodb');
const { Schema, SchemaError } = require('./schema');

const ENVELOPE_VERSION = 1;
const MAX_DEPTH = 100; // the envelope's levels, data's included (liboutbox's OUTBOX_MAX_DEPTH)
const EVENT_MAX_SIZE = 8 * 1024 * 1024; // an envelope's BSON bytes (OUTBOX_EVENT_MAX_SIZE)

class OutboxError extends Error {
  constructor(message) {
    super(message);
    this.name = this.constructor.name;
  }
}
class UnknownTypeError extends OutboxError {}
class NotEnsuredError extends OutboxError {}
/* An event refused before anything was written: .index in its batch,
 * .type, .path the failing field. */
class ValidationError extends OutboxError {
  constructor(index, type, where, message) {
    super(`event ${index} (${type}): ${where}: ${message}`);
    Object.assign(this, { index, type, path: where });
  }
}
class LimitError extends ValidationError {}

function depth(v, level) {
  if (v !== null && typeof v === 'object' && !v._bsontype && !(v instanceof Date) && !(v instanceof Uint8Array)) {
    let most = level;
    for (const x of Object.values(v)) most = Math.max(most, depth(x, level + 1));
    return most;
  }
  return level - 1;
}

class Outbox {
  /* new Outbox(client, 'shop', 'events'); await outbox.loadTypes() (or
   * declare); await outbox.put('order.created', 'order-1', {...}, {session}). */
  constructor(client, database, outbox) {
    this.client = client;
    this.db = client.db(database);
    this.name = outbox;
    this.types = new Map();
    this.pendingChecked = false;
  }

  /* Declares type with its schema (an object, or JSON text); throws
   * SchemaError naming the keyword for a schema outside the subset. */
  declare(type, schema) {
    this.types.set(type, new Schema(typeof schema === 'string' ? JSON.parse(schema) : schema));
  }

  /* Every TYPE.json of dir, as outboxctl --schemas reads them. */
  declareDir(dir) {
    for (const name of fs.readdirSync(dir).sort()) {
      if (!name.endsWith('.json')) continue;
      const file = path.join(dir, name);
      try {
        this.declare(name.slice(0, -5), fs.readFileSync(file, 'utf8'));
      } catch (e) {
        throw new SchemaError(file, e.message);
      }
    }
  }

  /* Declares every type the outbox keeps in N.schemas that is not declared
   * here already (docs/schemas.md); resolves to how many. */
  async loadTypes() {
    let n = 0;
    for await (const doc of this.db.collection(`${this.name}.schemas`).find({}).sort({ _id: 1 })) {
      if (!this.types.has(doc._id)) {
        this.types.set(doc._id, new Schema(doc.schema));
        n += 1;
      }
    }
    return n;
  }

  /* The validated envelope of one event (what put writes). */
  envelope(index, type, key, data, headers) {
    const schema = this.types.get(type);
    if (!schema) throw new UnknownTypeError(`event ${index}: type "${type}" is not declared for outbox ${this.db.databaseName}.${this.name}`);
    if (key !== null && key !== undefined && typeof key !== 'string') throw new ValidationError(index, type, 'key', 'expected string or null');
    if (data === null || typeof data !== 'object' || Array.isArray(data)) throw new ValidationError(index, type, 'data', 'expected an object');
    if (depth(data, 2) > MAX_DEPTH) throw new LimitError(index, type, 'data', `nested deeper than ${MAX_DEPTH - 1} levels of documents and arrays`);
    const failure = schema.firstFailure(data);
    if (failure) throw new ValidationError(index, type, failure.path, failure.message);
    for (const [name, value] of Object.entries(headers || {})) {
      if (typeof value !== 'string') throw new ValidationError(index, type, `headers.${name}`, 'expected string');
    }
    const doc = { _id: new ObjectId(), type, key: key === undefined ? null : key, data, created: new Date() };
    if (headers && Object.keys(headers).length) doc.headers = { ...headers };
    doc.v = ENVELOPE_VERSION;
    const size = BSON.calculateObjectSize(doc);
    if (size > EVENT_MAX_SIZE) throw new LimitError(index, type, 'data', `the envelope has ${size} bytes of BSON, more than ${EVENT_MAX_SIZE}`);
    return doc;
  }

  /* Validates and writes one event; resolves to its id. */
  async put(type, key, data, { session, headers } = {}) {
    const [id] = await this.putMany([{ type, key, data, headers }], { session });
    return id;
  }

  /* events: [{type, key, data, headers}], all validated before any is
   * written, then written in one ordered insert: into N, or inside
   * session's transaction into N.pending. Resolves to their ids. */
  async putMany(events, { session } = {}) {
    const docs = events.map((e, i) => this.envelope(i, e.type, e.key, e.data, e.headers));
    if (docs.length === 0) return [];
    const inTxn = Boolean(session && session.inTransaction());
    if (inTxn && !this.pendingChecked) {
      // Outside the transaction: MongoDB 4.2 creates no collection in one,
      // 4.4+ creates it bare (docs/transactions.md).
      const names = await this.db.listCollections({ name: `${this.name}.pending` }, { nameOnly: true }).toArray();
      if (names.length === 0) {
        throw new NotEnsuredError(`${this.db.databaseName}.${this.name}.pending does not exist: run outboxctl init for outbox ${this.name} before transactional puts`);
      }
      this.pendingChecked = true;
    }
    const target = this.db.collection(inTxn ? `${this.name}.pending` : this.name);
    await target.insertMany(docs, { ordered: true, session });
    return docs.map((d) => d._id);
  }

  /* Runs fn(session) in a transaction and commits it, retried as the
   * drivers' rules say (the driver's withTransaction: the whole transaction
   * again on TransientTransactionError, the commit again on
   * UnknownTransactionCommitResult, for up to 120 s), with majority writes,
   * snapshot reads, on the primary. fn may run several times: build its
   * events inside it. */
  async withTransaction(session, fn) {
    return session.withTransaction(fn, {
      readConcern: { level: 'snapshot' },
      writeConcern: { w: 'majority' },
      readPreference: 'primary',
    });
  }
}

module.exports = { Outbox, OutboxError, UnknownTypeError, NotEnsuredError, ValidationError, LimitError };
