package compat_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// pageSpec says what a browser test's page holds.
type pageSpec struct {
	entry       string // the JavaScript entry point esbuild bundles
	title, body string // the page's <title> text and its whole <body> element
	// processShim defines process.env for the bundle, as bundlers for the
	// browser usually do: Eppo's SDK core reads it here and there.
	processShim bool
	timeout     time.Duration // for everything the browser does in the test
}

// eppoPage is the page of Eppo's browser SDK core with an Allot client key.
func eppoPage(entry string, timeout time.Duration) pageSpec {
	return pageSpec{entry: entry, title: "Allot client page", processShim: true, timeout: timeout,
		body: `<body style="font: 16px system-ui; margin: 2em"><h1>A page on another origin</h1><p>Eppo's browser SDK core (@eppo/js-client-sdk-common 4.14.4), with an Allot client key.</p><p id="result">running…</p></body>`}
}

// browserPage is a page in headless Chromium, served from its own loopback
// origin (URL), so that whatever it asks of `allot serve` is cross-origin.
type browserPage struct {
	t   *testing.T
	URL string
	ctx context.Context
}

// chromiumPage bundles spec.entry with esbuild into a page on its own
// origin and starts headless Chromium for it; both end with the test. It
// skips with ALLOT_BROWSER_TESTS=off and fails if the packages or Chromium
// are missing.
func chromiumPage(t *testing.T, spec pageSpec) *browserPage {
	t.Helper()
	if os.Getenv("ALLOT_BROWSER_TESTS") == "off" {
		t.Skip("ALLOT_BROWSER_TESTS=off")
	}
	esbuild := "browser/node_modules/.bin/esbuild"
	if _, err := os.Stat(esbuild); err != nil {
		t.Fatalf("the browser test needs its packages: npm ci --prefix compat/browser: %v", err)
	}
	chromium := ""
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			chromium = path
			break
		}
	}
	if chromium == "" {
		t.Fatal("Chromium is required (apt-get install chromium); ALLOT_BROWSER_TESTS=off skips this test")
	}
	bundle := filepath.Join(t.TempDir(), "bundle.js")
	args := []string{spec.entry, "--bundle", "--format=iife", "--platform=browser", "--log-level=warning", "--outfile=" + bundle}
	if spec.processShim {
		args = append(args, "--banner:js=var process = globalThis.process || { env: {} };")
	}
	if out, err := exec.Command(esbuild, args...).CombinedOutput(); err != nil {
		t.Fatalf("esbuild: %v\n%s", err, out)
	}
	js, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bundle.js" {
			w.Header().Set("Content-Type", "text/javascript")
			w.Write(js)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><head><title>%s</title><script>window.pageErrors = []; window.onerror = (m) => { window.pageErrors.push(String(m)); };</script><script src="/bundle.js"></script></head>%s</html>`, spec.title, spec.body)
	}))
	t.Cleanup(page.Close)

	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true), chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(cancelBrowser)
	bctx, cancelTimeout := context.WithTimeout(bctx, spec.timeout)
	t.Cleanup(cancelTimeout)
	return &browserPage{t: t, URL: page.URL, ctx: bctx}
}

// load opens the page afresh and fails the test if its script did not load.
func (p *browserPage) load() {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.Navigate(p.URL+"/")); err != nil {
		p.t.Fatalf("chromium: %v", err)
	}
	if errs, _ := chromedp.Run(p.ctx, chromedp.Evaluate[[]string]("window.pageErrors")); len(errs) > 0 {
		p.t.Fatalf("the page failed to load: %q", errs)
	}
}

// eval evaluates a JavaScript expression on the page as it is, awaiting a
// promise, and returns its (string) value.
func (p *browserPage) eval(expr string) string {
	p.t.Helper()
	out, err := chromedp.Run(p.ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("chromium: %.200s: %v", expr, err)
	}
	return out
}

// fresh is eval on a fresh load of the page.
func (p *browserPage) fresh(expr string) string {
	p.t.Helper()
	p.load()
	return p.eval(expr)
}

// shot writes a screenshot of the page (1100 pixels wide) to path.
func (p *browserPage) shot(path string) {
	p.t.Helper()
	if _, err := chromedp.Run(p.ctx, chromedp.EmulateViewport(1100, 260)); err != nil {
		p.t.Fatal(err)
	}
	png, err := chromedp.Run(p.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}
