// The page's script: Eppo's browser SDK core pointed at Allot with a client
// key, from another origin. The Go test bundles it with esbuild and calls
// runAllot in headless Chromium.
import { EppoClient, MemoryOnlyConfigurationStore } from '@eppo/js-client-sdk-common';

window.runAllot = async ({ baseUrl, apiKey, flags, subjects }) => {
  const events = [];
  const client = new EppoClient({
    flagConfigurationStore: new MemoryOnlyConfigurationStore(),
    configurationRequestParameters: {
      apiKey, baseUrl, sdkName: 'js-client-sdk', sdkVersion: '4.14.4',
      numInitialRequestRetries: 0, pollAfterSuccessfulInitialization: false, requestTimeoutMs: 5000,
    },
  });
  client.setAssignmentLogger({ logAssignment(e) { events.push(e); } });
  let fetchError = null;
  try {
    await client.fetchFlagConfigurations();
  } catch (e) {
    fetchError = String(e);
  }
  const values = [];
  for (const s of subjects) {
    for (const f of flags) {
      const get = {
        STRING: 'getStringAssignment', INTEGER: 'getIntegerAssignment', NUMERIC: 'getNumericAssignment',
        BOOLEAN: 'getBooleanAssignment', JSON: 'getJSONAssignment',
      }[f.type];
      values.push(client[get](f.key, s.key, s.attributes, f.default));
    }
  }
  // Assignment events go to Allot with the same client key.
  let accepted = 0, duplicates = 0, postError = null;
  for (let i = 0; i < events.length; i += 500) {
    const batch = events.slice(i, i + 500).map((e) => ({ ...e, eventId: crypto.randomUUID() }));
    try {
      const r = await fetch(baseUrl + '/v1/assignments', {
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
  // What a person looking at the page (or its screenshot) sees.
  const assigned = values.filter((v, i) => v !== flags[i % flags.length].default).length;
  document.getElementById('result').textContent =
    `${fetchError ? 'configuration refused: ' + fetchError : 'configuration read from ' + baseUrl} · ` +
    `${values.length} evaluations for ${subjects.length} subjects, ${assigned} assigned (not the default) · ` +
    `${accepted} assignment events stored by Allot`;
  return JSON.stringify({
    fetchError, postError, values, accepted, duplicates,
    events: events.map((e) => ({ featureFlag: e.featureFlag, allocation: e.allocation, experiment: e.experiment, variation: e.variation, subject: e.subject })),
  });
};
