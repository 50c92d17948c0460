// The page's script for compat/import_browser_test.go: Eppo's browser SDK
// core against an Allot server holding the imported flags-v1.json, with a
// client key, from another origin. runFixtures evaluates the UFC fixture
// subjects on the obfuscated CLIENT document; runPrecomputed asks for each
// subject's precomputed assignments with the precomputed client and posts
// its assignment events to Allot.
import { EppoClient, EppoPrecomputedClient, MemoryOnlyConfigurationStore } from '@eppo/js-client-sdk-common';

const getters = {
  STRING: 'getStringAssignment', INTEGER: 'getIntegerAssignment', NUMERIC: 'getNumericAssignment',
  BOOLEAN: 'getBooleanAssignment', JSON: 'getJSONAssignment',
};

const requestParameters = (apiKey, baseUrl) => ({
  apiKey, baseUrl, sdkName: 'js-client-sdk', sdkVersion: '4.14.4',
  numInitialRequestRetries: 0, pollAfterSuccessfulInitialization: false, requestTimeoutMs: 5000,
});

window.runFixtures = async ({ baseUrl, apiKey, cases }) => {
  const client = new EppoClient({
    flagConfigurationStore: new MemoryOnlyConfigurationStore(),
    configurationRequestParameters: requestParameters(apiKey, baseUrl),
  });
  client.setAssignmentLogger({ logAssignment() {} });
  let fetchError = null;
  try {
    await client.fetchFlagConfigurations();
  } catch (e) {
    fetchError = String(e);
  }
  const values = [], expected = [];
  for (const c of cases) {
    for (const s of c.subjects) {
      expected.push(s.assignment);
      values.push(client[getters[c.variationType]](c.flag, s.subjectKey, s.subjectAttributes || {}, c.defaultValue));
    }
  }
  const passed = values.filter((v, i) => JSON.stringify(v) === JSON.stringify(expected[i])).length;
  document.getElementById('result').textContent =
    `${fetchError ? 'configuration refused: ' + fetchError : 'CLIENT document of the imported flags-v1.json read from ' + baseUrl} · ` +
    `${passed} of ${values.length} fixture checks pass`;
  return JSON.stringify({ fetchError, obfuscated: client.getConfiguration().isObfuscated(), values });
};

// postEvents sends assignment events to Allot in batches, with the client key.
async function postEvents(baseUrl, apiKey, events) {
  let accepted = 0, duplicates = 0, postError = null;
  for (let i = 0; i < events.length; i += 500) {
    const batch = events.slice(i, i + 500).map((e) => ({ ...e, eventId: crypto.randomUUID() }));
    try {
      const r = await fetch(baseUrl + '/api/v1/assignments', {
        method: 'POST',
        headers: { Authorization: 'Bearer ' + apiKey, 'Content-Type': 'application/json' },
        body: JSON.stringify(batch),
      });
      const j = await r.json();
      accepted += j.accepted; duplicates += j.duplicates;
    } catch (e) {
      postError = String(e);
    }
  }
  return { accepted, duplicates, postError };
}

window.runPrecomputed = async ({ baseUrl, apiKey, flags, subjects, parallel }) => {
  const events = [];
  const logger = { logAssignment(e) { events.push(e); } };
  const values = new Array(subjects.length * flags.length);
  const errors = [];
  let next = 0;
  async function worker() {
    for (;;) {
      const i = next++;
      if (i >= subjects.length) return;
      const s = subjects[i];
      const client = new EppoPrecomputedClient({
        precomputedFlagStore: new MemoryOnlyConfigurationStore(),
        subject: { subjectKey: s.key, subjectAttributes: s.attributes || {} },
        requestParameters: { ...requestParameters(apiKey, baseUrl), throwOnFailedInitialization: true },
      });
      client.setAssignmentLogger(logger);
      try {
        await client.fetchPrecomputedFlags();
      } catch (e) {
        if (errors.length < 5) errors.push(s.key + ': ' + String(e));
      }
      flags.forEach((f, j) => { values[i * flags.length + j] = client[getters[f.type]](f.key, f.default); });
      client.stopPolling();
    }
  }
  await Promise.all(Array.from({ length: parallel }, worker));
  const posted = await postEvents(baseUrl, apiKey, events);
  document.getElementById('result').textContent =
    `precomputed assignments for ${subjects.length} subjects · ${values.length} values · ${posted.accepted} assignment events stored by Allot`;
  return JSON.stringify({
    errors, values, ...posted,
    events: events.map((e) => ({ featureFlag: e.featureFlag, allocation: e.allocation, experiment: e.experiment, variation: e.variation, subject: e.subject })),
  });
};
