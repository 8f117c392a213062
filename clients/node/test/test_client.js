'use strict';
/*
 * test_client.js - the Node producer library against the table and the real
 * servers (issue 20): prints TAP.
 *   1. every case of tests/validation/cases.json gets liboutbox's verdict,
 *      at liboutbox's path (the C and Python runners read the same file);
 *   2. declarations outside the subset are refused at the keyword's path;
 *   3. loadTypes reads the types outboxctl init stored in N.schemas;
 *   4. events put by Node (headers, unicode keys and data, a batch) and by C
 *      (outboxctl put) are published by the real outboxd to a file sink
 *      alike and in log order;
 *   5. a transactional put into an outbox never created is refused naming
 *      what to run; withTransaction commits, or is skipped with the reason
 *      on a server without transactions.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, spawnSync } = require('child_process');
const { MongoClient, BSON } = require('mongodb');
const { Outbox, ValidationError, SchemaError, NotEnsuredError } = require('..');

const BUILD = process.env.OUTBOX_TEST_BUILDDIR || '.';
const SRC = process.env.OUTBOX_TEST_SRCDIR || path.join(__dirname, '..', '..', '..');
const DB = 'outbox_test';
const results = [];
const ok = (cond, name, why = '') => results.push([Boolean(cond), name, why]);
const skip = (name, why) => results.push([true, `${name} # SKIP ${why}`, '']);

function services() {
  const dir = process.env.OUTBOX_SERVICES_DIR || path.join(os.homedir(), '.cache', 'service-outbox');
  const env = {};
  for (const line of fs.readFileSync(path.join(dir, 'services.env'), 'utf8').split('\n')) {
    const t = line.trim();
    const eq = t.indexOf('=');
    if (t && !t.startsWith('#') && eq > 0) env[t.slice(0, eq)] = t.slice(eq + 1).replace(/^'|'$/g, '');
  }
  return env;
}

/* The table, its data read as Extended JSON ({"$numberLong": ...} is a
 * bigint, which the driver writes as a long), as the other runners read it. */
function table() {
  const text = fs.readFileSync(path.join(SRC, 'tests', 'validation', 'cases.json'), 'utf8');
  return BSON.EJSON.parse(text, { relaxed: true, useBigInt64: true });
}

function checkTable() {
  const t = table();
  const ob = new Outbox(new MongoClient('mongodb://127.0.0.1:1/'), 'd', 'n');
  for (const [name, schema] of Object.entries(t.schemas)) ob.declare(name, schema);
  let wrong = [];
  t.cases.forEach((c, i) => {
    let got = null;
    try {
      ob.envelope(0, c.schema, 'k', c.data);
    } catch (e) {
      if (!(e instanceof ValidationError)) throw e;
      got = e.path;
    }
    if (got !== c.path) wrong.push(`case ${i} (${c.schema}, ${BSON.EJSON.stringify(c.data)}): ${got}, the table says ${c.path}`);
  });
  ok(wrong.length === 0, `the validation table: ${t.cases.length} events, liboutbox's verdicts and paths`, wrong.join('\n'));
  wrong = [];
  t.declarations.forEach((c, i) => {
    let got = null;
    try {
      ob.declare('x', c.schema);
    } catch (e) {
      if (!(e instanceof SchemaError)) throw e;
      got = e.path;
    }
    if (got !== c.path) wrong.push(`declaration ${i} ${JSON.stringify(c.schema)}: ${got}, the table says ${c.path}`);
  });
  ok(wrong.length === 0, `the validation table: ${t.declarations.length} declarations refused at the keyword's path`, wrong.join('\n'));
}

const ctl = (uri, name, ...args) => spawnSync(path.join(BUILD, 'outboxctl', 'outboxctl'),
  ['--uri', uri, '--db', DB, '--outbox', name, ...args], { encoding: 'utf8' });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function publishesLikeC(uri, ob, name) {
  const data = { ordernr: 7, total: 19.95, customer: 'Zoë 日本', lines: [{ sku: 'ABC-42', qty: 2 }] };
  const headers = { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', tenant: 'ü' };
  const headerArgs = Object.entries(headers).flatMap(([k, v]) => ['--header', `${k}=${v}`]);
  const order = [];
  for (const key of ['order-7', 'ключ-7']) {
    const r = ctl(uri, name, '--schemas', path.join(SRC, 'examples', 'schemas'), 'put', 'order.created', key,
      JSON.stringify(data), ...headerArgs);
    ok(r.status === 0, `outboxctl put (C) key ${key}`, r.stderr);
    order.push(key);
    await ob.put('order.created', key, data, { headers });
    order.push(key);
  }
  const ids = await ob.putMany([{ type: 'order.shipped', key: null, data: { ordernr: 7, carrier: 'dhl' } },
    { type: 'order.shipped', key: 'x', data: { ordernr: 8, carrier: 'ups' }, headers: { a: 'b' } }]);
  order.push(null, 'x');
  ok(ids.length === 2, 'putMany: one ordered insert, the ids in order');

  const brokers = services().OUTBOX_TEST_KAFKA_BROKERS;
  const topic = `outbox.${name}`;
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'outbox-node-'));
  const out = path.join(tmp, 'all.jsonl');
  const config = path.join(tmp, 'outboxd.yaml');
  const plugins = path.join(tmp, 'plugins');
  fs.mkdirSync(plugins, { mode: 0o755 });
  for (const plugin of ['file', 'kafka']) {
    const so = path.join(BUILD, 'sinks', plugin, '.libs', `${plugin}.so`);
    if (fs.existsSync(so)) fs.copyFileSync(so, path.join(plugins, `${plugin}.so`));
  }
  const withKafka = Boolean(brokers) && fs.existsSync(path.join(plugins, 'kafka.so'));
  let yaml = `mongodb:\n  uri: "${uri}"\n  database: ${DB}\noutbox: ${name}\n`
    + `sinks:\n  - name: file\n    plugin: file\n    route: "${out}"\n`;
  if (withKafka) yaml += `  - name: kafka\n    plugin: kafka\n    route: "${topic}"\n    options:\n      bootstrap.servers: "${brokers}"\n`;
  fs.writeFileSync(config, yaml, { mode: 0o600 });
  const log = fs.openSync(path.join(tmp, 'outboxd.log'), 'w');
  const proc = spawn(path.join(BUILD, 'outboxd', 'outboxd'), ['--config', config, '--plugin-dir', plugins],
    { stdio: ['ignore', 'ignore', log] });
  const exited = new Promise((resolve) => proc.on('exit', (code) => resolve(code === null ? 128 : code)));
  let lines = [];
  let msgs = [];
  for (let i = 0; i < 600; i++) {
    if (fs.existsSync(out)) lines = fs.readFileSync(out, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    if (withKafka && msgs.length < order.length) {
      const r = spawnSync('kcat', ['-C', '-b', brokers, '-t', topic, '-e', '-q', '-J', '-o', 'beginning'], { encoding: 'utf8' });
      msgs = (r.stdout || '').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
    }
    if (lines.length >= order.length && (!withKafka || msgs.length >= order.length)) break;
    await sleep(100);
  }
  proc.kill('SIGTERM');
  const rc = await exited;
  const text = fs.readFileSync(path.join(tmp, 'outboxd.log'), 'utf8');
  fs.rmSync(tmp, { recursive: true, force: true });
  ok(rc === 0 && lines.length === order.length, `outboxd published ${lines.length} of ${order.length} events to the file, exit ${rc}`, text.slice(-2000));
  if (lines.length === order.length) {
    const keys = lines.map((l) => (l.key === undefined ? null : l.key));
    ok(JSON.stringify(keys) === JSON.stringify(order), `the file has the events in log order: ${JSON.stringify(keys)}`);
    const why = [];
    for (let i = 0; i < 4; i += 2) {
      for (const field of ['type', 'key', 'data', 'headers']) {
        if (JSON.stringify(lines[i][field]) !== JSON.stringify(lines[i + 1][field])) {
          why.push(`event ${i}: ${field}: C ${JSON.stringify(lines[i][field])}, Node ${JSON.stringify(lines[i + 1][field])}`);
        }
      }
    }
    ok(why.length === 0, 'each Node event is written to the file exactly as its C twin (type, key, data, headers)', why.join('\n'));
  }
  if (!withKafka) {
    skip('Kafka: each Node event as its C twin', 'no Kafka broker or kafka.so');
    return;
  }
  ok(msgs.length === order.length, `kcat reads ${msgs.length} of ${order.length} messages from ${topic}`);
  // Kafka orders a topic per partition, and a key's events share one.
  const comparable = (m) => {
    const h = m.headers || [];
    const headers = {};
    for (let j = 0; j < h.length; j += 2) if (h[j] !== 'outbox-id' && h[j] !== 'outbox-created') headers[h[j]] = h[j + 1];
    return JSON.stringify([m.key, JSON.parse(m.payload), Object.keys(headers).sort().map((k) => [k, headers[k]])]);
  };
  const why = [];
  for (const key of ['order-7', 'ключ-7']) {
    const twins = msgs.filter((m) => m.key === key);
    if (twins.length !== 2 || comparable(twins[0]) !== comparable(twins[1])) why.push(`key ${key}: ${twins.map(comparable).join(' / ')}`);
  }
  ok(why.length === 0, "Kafka (kcat): each Node event's message is its C twin's, in the key's partition (key, value, headers but its own id and time)", why.join('\n'));
}

async function transactional(client, name) {
  const never = new Outbox(client, DB, `${name}_never`);
  never.declare('order.shipped', { bsonType: 'object' });
  const s = client.startSession();
  s.startTransaction();
  try {
    await never.put('order.shipped', 'k', { ordernr: 1 }, { session: s });
    ok(false, 'a transactional put into an outbox never created', 'accepted');
  } catch (e) {
    const names = (await client.db(DB).listCollections({ name: `${name}_never.pending` }).toArray()).length;
    ok(e instanceof NotEnsuredError && e.message.includes('outboxctl init') && names === 0,
      `a transactional put into an outbox never created: ${e.message}`);
  } finally {
    try { await s.abortTransaction(); } catch (e) { /* never started on the server */ }
    await s.endSession();
  }
  const hello = await client.db('admin').command({ hello: 1 });
  let build = {};
  try { build = await client.db('admin').command({ buildInfo: 1 }); } catch (e) { /* none */ }
  if (!hello.setName || Object.keys(build).some((k) => k.toLowerCase().startsWith('ferretdb'))) {
    skip("withTransaction commits the caller's write and its event", 'the test server has no transactions; run against a mongod replica set');
    return;
  }
  const ob = new Outbox(client, DB, name);
  await ob.loadTypes();
  await client.db(DB).collection('orders').insertOne({ setup: true });
  const session = client.startSession();
  try {
    await ob.withTransaction(session, async (sess) => {
      await client.db(DB).collection('orders').insertOne({ ordernr: 9 }, { session: sess });
      await ob.put('order.shipped', 'order-9', { ordernr: 9, carrier: 'dhl' }, { session: sess });
    });
  } finally {
    await session.endSession();
  }
  ok(await client.db(DB).collection(`${name}.pending`).countDocuments({ 'data.ordernr': 9 }) === 1,
    "withTransaction commits the caller's write and its event into N.pending");
  const uri = services().OUTBOX_TEST_MONGODB_URI;
  const r = ctl(uri, name, 'promote');
  ok(r.status === 0 && await client.db(DB).collection(name).countDocuments({ 'data.ordernr': 9 }) === 1,
    'the committed event is in the log after outboxctl promote', r.stderr);
  const aborted = client.startSession();
  try {
    aborted.startTransaction();
    await ob.put('order.shipped', 'order-10', { ordernr: 10, carrier: 'dhl' }, { session: aborted });
    await aborted.abortTransaction();
  } finally {
    await aborted.endSession();
  }
  ctl(uri, name, 'promote');
  ok(await client.db(DB).collection(`${name}.pending`).countDocuments({ 'data.ordernr': 10 }) === 0
    && await client.db(DB).collection(name).countDocuments({ 'data.ordernr': 10 }) === 0,
  "an aborted transaction's event never appears");
}

async function checkServer(uri) {
  const client = new MongoClient(uri, { serverSelectionTimeoutMS: 10000 });
  const name = `node_${process.pid}`;
  try {
    const r = ctl(uri, name, '--schemas', path.join(SRC, 'examples', 'schemas'), 'init');
    if (r.status !== 0) {
      ok(false, 'outboxctl init', r.stderr);
      return;
    }
    const ob = new Outbox(client, DB, name);
    const n = await ob.loadTypes();
    ok(n === 2, `loadTypes: the ${n} types outboxctl init stored in N.schemas`);
    try {
      await ob.put('order.shipped', 'k', { ordernr: 1, carrier: 'pigeon' });
      ok(false, 'a put the stored schema refuses', 'accepted');
    } catch (e) {
      ok(e instanceof ValidationError && e.path === 'data.carrier'
        && (await client.db(DB).collection(name).countDocuments({})) === 0, `a put the stored schema refuses writes nothing: ${e.message}`);
    }
    await publishesLikeC(uri, ob, name);
    await transactional(client, name);
  } finally {
    for (const suffix of ['', '.pending', '.checkpoints', '.schemas', '.leases', '.quarantine', '_never']) {
      await client.db(DB).collection(name + suffix).drop().catch(() => {});
    }
    await client.close();
  }
}

async function main() {
  checkTable();
  let uri = null;
  try {
    uri = services().OUTBOX_TEST_MONGODB_URI || null;
  } catch (e) { /* no services */ }
  if (uri) await checkServer(uri);
  else skip('the real server', 'no test servers: run tests/services/services.sh up');
  console.log(`1..${results.length}`);
  let failed = 0;
  results.forEach(([good, name, why], i) => {
    console.log(`${good ? 'ok' : 'not ok'} ${i + 1} - ${name}`);
    if (!good) {
      failed += 1;
      for (const line of String(why).split('\n')) console.log(`# ${line}`);
    }
  });
  return failed ? 1 : 0;
}

main().then((code) => { process.exitCode = code; }, (e) => {
  console.log('1..1');
  console.log(`not ok 1 - the Node client's test died: ${e && e.stack ? e.stack.split('\n').join(' | ') : e}`);
  process.exitCode = 1;
});
