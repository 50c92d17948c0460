// Asks Allot for each subject's precomputed assignments with the precomputed
// client of Eppo's browser SDK core (@eppo/js-client-sdk-common), for the
// compatibility test (compat/precomputed_test.go).
//
// Usage: node precomputed.js request.json results.jsonl
// request.json: {"baseUrl": "http://127.0.0.1:PORT", "apiKey": "...",
//   "flags": [{"key": "...", "type": "STRING|INTEGER|NUMERIC|BOOLEAN|JSON", "default": ...}],
//   "subjects": [{"key": "...", "attributes": {...}}]}
// Writes JSON lines {"flag", "subject", "value"} for every flag and subject.
'use strict';

const fs = require('fs');
const { EppoPrecomputedClient, MemoryOnlyConfigurationStore } = require('@eppo/js-client-sdk-common');

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const out = [];
  for (const s of req.subjects) {
    const client = new EppoPrecomputedClient({
      precomputedFlagStore: new MemoryOnlyConfigurationStore(),
      subject: { subjectKey: s.key, subjectAttributes: s.attributes || {} },
      requestParameters: {
        apiKey: req.apiKey,
        baseUrl: req.baseUrl,
        sdkName: 'js-client-sdk',
        sdkVersion: '4.14.4',
        numInitialRequestRetries: 0,
        pollAfterSuccessfulInitialization: false,
        throwOnFailedInitialization: true,
      },
    });
    await client.fetchPrecomputedFlags();
    for (const f of req.flags) {
      let value;
      switch (f.type) {
        case 'STRING': value = client.getStringAssignment(f.key, f.default); break;
        case 'INTEGER': value = client.getIntegerAssignment(f.key, f.default); break;
        case 'NUMERIC': value = client.getNumericAssignment(f.key, f.default); break;
        case 'BOOLEAN': value = client.getBooleanAssignment(f.key, f.default); break;
        case 'JSON': value = client.getJSONAssignment(f.key, f.default); break;
      }
      out.push(JSON.stringify({ flag: f.key, subject: s.key, value }));
    }
    client.stopPolling();
  }
  fs.writeFileSync(process.argv[3], out.join('\n') + '\n');
}

main().catch((e) => { console.error(e); process.exit(1); });
