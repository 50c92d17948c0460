// The page's script for the OFREP test: OpenFeature's web SDK with the
// OFREP web provider pointed at Allot with a client key, from another
// origin. The Go test bundles it with esbuild and drives it in headless
// Chromium through the window.ofrep* functions.
import { OpenFeature, ProviderEvents } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

// Every OFREP response the page gets, to check 200s and 304s.
const requests = [];
const plainFetch = globalThis.fetch.bind(globalThis);
globalThis.fetch = async (input, init) => {
  const req = new Request(input, init);
  const ifNoneMatch = req.headers.get('If-None-Match');
  const res = await plainFetch(req);
  if (req.url.includes('/ofrep/')) {
    requests.push({ url: req.url, status: res.status, ifNoneMatch, etag: res.headers.get('ETag') });
  }
  return res;
};

let client = null;
let changes = 0;

const details = (flags) =>
  flags.map((f) => {
    const d = client.getStringDetails(f, 'default');
    return { key: f, value: d.value, variant: d.variant ?? null, reason: d.reason ?? null, errorCode: d.errorCode ?? null };
  });

window.ofrepStart = async ({ baseUrl, apiKey, context, flags }) => {
  await OpenFeature.setContext(context);
  const provider = new OFREPWebProvider({
    baseUrl,
    headers: [['Authorization', 'Bearer ' + apiKey]],
    cacheMode: 'disabled',
    disableVisibilityRefresh: true,
  });
  await OpenFeature.setProviderAndWait(provider);
  client = OpenFeature.getClient();
  client.addHandler(ProviderEvents.ConfigurationChanged, () => { changes++; });
  return JSON.stringify(details(flags));
};

window.ofrepSetContext = async ({ context, flags }) => {
  await OpenFeature.setContext(context);
  return JSON.stringify(details(flags));
};

window.ofrepState = (flags) => JSON.stringify({ details: details(flags), changes, requests });
