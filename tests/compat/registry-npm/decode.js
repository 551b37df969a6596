// Decodes Kafka values (Confluent wire format: 0x00, 4-byte schema id, Avro or Protobuf) by
// their schema id with @kafkajs/confluent-schema-registry against a registry, and prints one
// JSON line per file: {"schema_id": N, "value": {...}}. Longs are printed as numbers.
// Usage: node decode.js REGISTRY_URL FILE...   (needs `npm ci` in this folder first)
'use strict';
const fs = require('fs');
const path = require('path');
const { SchemaRegistry } = require(path.join(__dirname, 'node_modules', '@kafkajs', 'confluent-schema-registry'));

async function main() {
  const [url, ...files] = process.argv.slice(2);
  if (!url || files.length === 0) {
    console.error('usage: node decode.js REGISTRY_URL FILE...');
    process.exit(2);
  }
  const registry = new SchemaRegistry({ host: url });
  for (const f of files) {
    const buf = fs.readFileSync(f);
    if (buf.length < 5 || buf[0] !== 0) throw new Error(`${f}: not Confluent-framed (${buf.length} bytes)`);
    const value = await registry.decode(buf);
    const out = JSON.stringify({ schema_id: buf.readUInt32BE(1), value },
      (k, v) => (typeof v === 'bigint' ? Number(v) : v));
    console.log(out);
  }
}
main().catch((e) => { console.error(`decode: ${e.message}`); process.exit(1); });
