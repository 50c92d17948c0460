// Evaluates flags for subjects with Eppo's official Node SDK pointed at an
// Allot server, for the compatibility test (compat/compat_test.go).
//
// Usage: node assign.js request.json results.jsonl
// request.json: {"baseUrl": "http://127.0.0.1:PORT/api", "apiKey": "...",
//   "flags": [{"key": "...", "type": "STRING|INTEGER|NUMERIC|BOOLEAN|JSON", "default": ...}],
//   "subjects": [{"key": "...", "attributes": {...}}]}
// Writes to results.jsonl (stdout carries the SDK's own log lines) JSON lines: {"flag", "subject", "value"} for every flag and subject,
// then {"event": {...}} for every assignment event the SDK logged.
'use strict';

const fs = require('fs');
const { init } = require('@eppo/node-server-sdk');

// Eppo's Node SDK (through js-client-sdk-common 4.x) spreads a split's
// extraLogging into the top level of the event rather than nesting it, so
// every key that is not one of the event's own is gathered back here.
const eventKeys = new Set(['allocation', 'experiment', 'featureFlag', 'format', 'variation', 'subject',
  'timestamp', 'subjectAttributes', 'metaData', 'evaluationDetails', 'entityId', 'extraLogging']);
function extraLogging(e) {
  const out = Object.assign({}, e.extraLogging || {});
  for (const [k, v] of Object.entries(e)) {
    if (!eventKeys.has(k)) out[k] = v;
  }
  return out;
}

async function main() {
  const req = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const events = [];
  const client = await init({
    apiKey: req.apiKey,
    baseUrl: req.baseUrl,
    assignmentLogger: { logAssignment: (e) => events.push(e) },
    pollingIntervalMs: 3600 * 1000,
    numInitialRequestRetries: 0,
  });
  const getters = {
    STRING: (f, s, a, d) => client.getStringAssignment(f, s, a, d),
    INTEGER: (f, s, a, d) => client.getIntegerAssignment(f, s, a, d),
    NUMERIC: (f, s, a, d) => client.getNumericAssignment(f, s, a, d),
    BOOLEAN: (f, s, a, d) => client.getBooleanAssignment(f, s, a, d),
    JSON: (f, s, a, d) => client.getJSONAssignment(f, s, a, d),
  };
  const out = [];
  for (const subject of req.subjects) {
    for (const flag of req.flags) {
      const value = getters[flag.type](flag.key, subject.key, subject.attributes || {}, flag.default);
      out.push(JSON.stringify({ flag: flag.key, subject: subject.key, value }));
    }
  }
  for (const e of events) {
    out.push(JSON.stringify({ event: {
      featureFlag: e.featureFlag, allocation: e.allocation, experiment: e.experiment,
      variation: e.variation, subject: e.subject, extraLogging: extraLogging(e),
    } }));
  }
  fs.writeFileSync(process.argv[3], out.join('\n') + '\n');
}

main().then(() => process.exit(0), (err) => {
  console.error('compat/node: ' + (err && err.stack || err));
  process.exit(1);
});
