// A third-party Confluent client, unchanged, against sluice-registry: registers Avro and
// Protobuf schemas, fetches them, encodes and decodes records through the registry.
// Usage: REGISTRY_URL=http://127.0.0.1:PORT DEFAULTS_DIR=schema/defaults node test.js
'use strict';
const assert = require('assert');
const fs = require('fs');
const path = require('path');
const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');

const host = process.env.REGISTRY_URL;
const defaults = process.env.DEFAULTS_DIR;
let passed = 0;
function ok(what) {
  passed++;
  console.log(`ok ${passed} - ${what}`);
}
function client() {
  // a fresh client has an empty cache: every schema is fetched from the registry again
  return new SchemaRegistry({ host, retry: { retries: 0 } });
}

async function avro() {
  const text = fs.readFileSync(path.join(defaults, 'page_view.avsc'), 'utf8');
  const subject = 'page_view-value';
  const reg = client();
  const { id } = await reg.register({ type: SchemaType.AVRO, schema: text }, { subject });
  assert.ok(Number.isInteger(id) && id > 0);
  ok(`register page_view.avsc: id ${id}`);
  const again = await reg.register({ type: SchemaType.AVRO, schema: text }, { subject });
  assert.strictEqual(again.id, id);
  ok('registering it again returns the same id');
  assert.strictEqual(await reg.getRegistryIdBySchema(subject, { type: SchemaType.AVRO, schema: text }), id);
  ok('getRegistryIdBySchema (POST /subjects/{s})');
  assert.strictEqual(await reg.getLatestSchemaId(subject), id);
  assert.strictEqual(await reg.getRegistryId(subject, 1), id);
  ok('getLatestSchemaId / getRegistryId');

  const event = {
    event_id: '9b2f3a4e-6c1d-4e8a-9f00-2b7c5d1e0a11', event_type: 'page_view', ts: 1763999999000,
    user_id: 'u-123', session_id: 's-9', page_id: 42,
    properties: { url: '/pricing', referrer: null, title: 'Pricing', latency_ms: 87 },
  };
  const buf = await reg.encode(id, event);
  assert.strictEqual(buf[0], 0);
  assert.strictEqual(buf.readInt32BE(1), id);
  ok(`encode: ${buf.length} bytes, Confluent framing with id ${id}`);
  const decoded = await client().decode(buf);
  assert.deepStrictEqual(JSON.parse(JSON.stringify(decoded)), event);
  ok('decode with a fresh client (GET /schemas/ids/{id}) gives the record back');
  const fetched = await client().getSchema(id);
  assert.strictEqual(fetched.name, 'sluice.events.PageView');
  ok('getSchema');

  // evolution: a new optional field is BACKWARD compatible; a new required one is not
  const v1 = JSON.parse(text);
  const v2 = JSON.parse(text);
  v2.fields.push({ name: 'experiment', type: ['null', 'string'], default: null });
  const r2 = await reg.register({ type: SchemaType.AVRO, schema: JSON.stringify(v2) }, { subject });
  assert.notStrictEqual(r2.id, id);
  ok(`compatible v2 registered: id ${r2.id}`);
  const decodedV2 = await client().decode(buf, { [SchemaType.AVRO]: { readerSchema: v2 } });
  assert.strictEqual(decodedV2.experiment, null);
  assert.strictEqual(decodedV2.user_id, 'u-123');
  ok('v1 data decoded with the v2 reader schema');
  const v3 = JSON.parse(text);
  v3.fields.push({ name: 'required_new', type: 'string' });
  await assert.rejects(
    reg.register({ type: SchemaType.AVRO, schema: JSON.stringify(v3) }, { subject }),
    (err) => /incompatible/i.test(err.message));
  ok('incompatible v3 (required field without default) is refused');
  assert.deepStrictEqual(v1.name, 'PageView');
}

async function protobuf() {
  const proto = [
    'syntax = "proto3";',
    'package sluice.compat;',
    'message Click {',
    '  string event_id = 1;',
    '  string element = 2;',
    '  int32 x = 3;',
    '  int32 y = 4;',
    '}',
    '',
  ].join('\n');
  const subject = 'click-proto-value';
  const reg = client();
  const { id } = await reg.register({ type: SchemaType.PROTOBUF, schema: proto }, { subject });
  ok(`register a Protobuf schema: id ${id}`);
  const again = await reg.register({ type: SchemaType.PROTOBUF, schema: proto }, { subject });
  assert.strictEqual(again.id, id);
  ok('registering it again returns the same id');
  const msg = { eventId: 'e-1', element: 'buy-button', x: 10, y: 20 };
  const buf = await reg.encode(id, msg);
  assert.strictEqual(buf.readInt32BE(1), id);
  const decoded = await client().decode(buf);
  assert.deepStrictEqual(JSON.parse(JSON.stringify(decoded)), msg);
  ok('Protobuf encode, then decode with a fresh client');
  const changed = proto.replace('int32 x = 3;', 'string x = 3;');
  await assert.rejects(
    reg.register({ type: SchemaType.PROTOBUF, schema: changed }, { subject }),
    (err) => /incompatible/i.test(err.message));
  ok('a field number reused with another type is refused');
}

(async () => {
  await avro();
  await protobuf();
  console.log(`registry-npm: ${passed} passed, 0 failed`);
})().catch((err) => {
  console.error('FAIL:', err && err.stack ? err.stack : err);
  process.exit(1);
});
