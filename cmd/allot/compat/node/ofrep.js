// Evaluates flags for subjects with OpenFeature's Node server SDK and the
// official OFREP provider (@openfeature/ofrep-provider) pointed at an Allot
// server, for the OFREP compatibility test (compat/ofrep_test.go).
//
// Usage: node ofrep.js request.json results.jsonl
// request.json: {"baseUrl": "http://127.0.0.1:PORT", "apiKey": "...",
//   "flags": [{"key": "...", "type": "STRING|INTEGER|NUMERIC|BOOLEAN|JSON", "default": ...}],
//   "subjects": [{"key": "...", "attributes": {...}}]}
// Writes JSON lines {"flag", "subject", "value", "reason", "variant", "errorCode"}
// for every subject and flag, in order.
'use strict';

const fs = require('fs');
const { OpenFeature } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');

// How many subjects are evaluated at once: enough to keep the server busy
// without opening thousands of sockets.
const CONCURRENCY = 16;

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  await OpenFeature.setProviderAndWait(new OFREPProvider({
    baseUrl: req.baseUrl,
    headers: [['Authorization', 'Bearer ' + req.apiKey]],
  }));
  const client = OpenFeature.getClient();
  const getters = {
    STRING: (f, d, c) => client.getStringDetails(f, d, c),
    INTEGER: (f, d, c) => client.getNumberDetails(f, d, c),
    NUMERIC: (f, d, c) => client.getNumberDetails(f, d, c),
    BOOLEAN: (f, d, c) => client.getBooleanDetails(f, d, c),
    JSON: (f, d, c) => client.getObjectDetails(f, d, c),
  };
  const out = new Array(req.subjects.length);
  let next = 0;
  async function worker() {
    while (next < req.subjects.length) {
      const i = next++;
      const s = req.subjects[i];
      const context = Object.assign({}, s.attributes || {}, { targetingKey: s.key });
      const lines = [];
      for (const flag of req.flags) {
        const d = await getters[flag.type](flag.key, flag.default, context);
        lines.push(JSON.stringify({
          flag: flag.key, subject: s.key, value: d.value,
          reason: d.reason, variant: d.variant || '', errorCode: d.errorCode || '',
        }));
      }
      out[i] = lines.join('\n');
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  fs.writeFileSync(process.argv[3], out.join('\n') + '\n');
  await OpenFeature.close();
}

main().then(() => process.exit(0), (err) => {
  console.error('compat/node/ofrep: ' + (err && err.stack || err));
  process.exit(1);
});
