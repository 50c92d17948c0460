package web_test

// The browser test drives headless Chromium (Debian's chromium package)
// through the UI of a real server: sign in, create an experiment, start
// it, raise its traffic, preview an assignment, create an SDK key, fetch
// the configuration and assign with the Go SDK, revoke the key and see the
// fetch refused, read the audit log.
//
// It fails when Chromium is missing; ALLOT_BROWSER_TESTS=off skips it.
// ALLOT_UPDATE_SCREENSHOTS=1 rewrites the screenshots in docs/images that
// docs/first-assignment.md shows.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/allot-dev/allot"
	"github.com/allot-dev/allot/cmd/allot/internal/server"
)

const browserAdminToken = "allot_admin_browser-test-0123456789"

func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("ALLOT_BROWSER_TESTS") == "off" {
		t.Skip("ALLOT_BROWSER_TESTS=off")
	}
	for _, name := range []string{"chromium", "chromium-browser", "/usr/bin/chromium"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("Chromium is required for the browser tests (apt-get install chromium); set ALLOT_BROWSER_TESTS=off to skip them")
	return ""
}

// browser starts headless Chromium with a fresh profile and nothing that
// reaches for the network.
func browser(t *testing.T) (context.Context, context.CancelFunc) {
	t.Helper()
	return browserWithin(t, 20*time.Second)
}

// browserWithin is browser for a test that may take up to d.
func browserWithin(t *testing.T, d time.Duration) (context.Context, context.CancelFunc) {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(chromiumPath(t)),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.WindowSize(1280, 800),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelCtx := chromedp.NewContext(actx)
	ctx, cancelTimeout := context.WithTimeout(ctx, d)
	return ctx, func() { cancelTimeout(); cancelCtx(); cancelAlloc() }
}

type step = chromedp.Action[chromedp.Void]

// shot saves a screenshot of the whole page for the docs when
// ALLOT_UPDATE_SCREENSHOTS=1.
func shot(name string) step { return capture(name, chromedp.FullScreenshot(100)) }

// viewShot is shot for a long page: only what the screen shows.
func viewShot(name string) step { return capture(name, chromedp.CaptureScreenshot()) }

func capture(name string, take chromedp.Action[[]byte]) step {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if os.Getenv("ALLOT_UPDATE_SCREENSHOTS") != "1" {
			return nil
		}
		png, err := take(ctx, t)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join("..", "..", "..", "..", "docs", "images", name+".png"), png, 0o644)
	})
}

func js(expr string) step {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Evaluate[any](expr)(ctx, t)
		return err
	})
}

// until waits for a JavaScript condition.
func until(expr string) step {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(10*time.Second))(ctx, t)
		return err
	})
}

func phone() step {
	return chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateScale(1))
}
func laptop() step { return chromedp.EmulateViewport(1280, 800) }

// submit clicks something that loads a new page and waits for it: the old
// body is marked, and the wait ends when a body without the mark is ready.
func submit(sel string) step {
	return chromedp.Steps(
		js(`document.body.dataset.stale = "1"`),
		chromedp.Click(chromedp.CSS(sel)),
		chromedp.WaitReady(chromedp.CSS(`body:not([data-stale])`)),
	)
}

func sendKeys(sel, text string) step { return chromedp.SendKeys(chromedp.CSS(sel), text) }

// typeInto replaces an input's value by typing, so input events fire.
func typeInto(sel, text string) step {
	return chromedp.Steps(js(`document.querySelector(`+strconv.Quote(sel)+`).value = ""`), sendKeys(sel, text))
}

func visible(sel string) step { return chromedp.WaitVisible(chromedp.CSS(sel)) }

func contains(t *testing.T, what, got, want string) {
	t.Helper()
	if !strings.Contains(got, want) {
		t.Fatalf("%s: %q does not contain %q", what, got, want)
	}
}

func fetchConfig(t *testing.T, base, key string) (int, string) {
	t.Helper()
	res, err := http.Get(base + "/api/flag-config/v1/config?apiKey=" + key)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

func TestBrowser(t *testing.T) {
	ctx, cancel := browser(t)
	defer cancel()

	srv, err := server.Start(context.Background(), server.Config{
		Addr: "127.0.0.1:0", DB: filepath.Join(t.TempDir(), "allot.db"),
		AdminToken: browserAdminToken, PollInterval: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close(context.Background())
	base := srv.URL()
	began := time.Now()

	do := func(what string, steps ...step) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
		if err != nil {
			dctx, dcancel := context.WithTimeout(ctx, 2*time.Second)
			html, _ := chromedp.Run(dctx, chromedp.OuterHTML(chromedp.CSS("body")))
			dcancel()
			t.Logf("page:\n%s", html)
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}
	location := func() string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Location())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Every page needs a session: the browser lands on the sign-in form.
	do("open", chromedp.Navigate(base+"/flags"), visible("#token"))
	contains(t, "redirect", location(), "/signin?next=%2Fflags")
	do("wrong token", shot("signin"), sendKeys("#token", "wrong-token"), submit("#signin"))
	contains(t, "wrong token", text("#token-error"), "unknown or has been revoked")
	do("sign in", sendKeys("#token", browserAdminToken), submit("#signin"))
	contains(t, "after sign in", text("main h1"), "Flags and experiments")

	// Create an experiment, with a validation error on the way.
	do("new experiment", submit(`a.button[href^="/flags/new"]`),
		sendKeys("#key", "checkout-button"),
		sendKeys("#description", "Does a green checkout button sell more?"),
		sendKeys("#cond_attr_0", "country"),
		js(`document.getElementById("cond_op_0").value = "ONE_OF"`),
		sendKeys("#cond_value_0", "US, CA"),
		shot("new-experiment"),
		typeInto("#var_weight_1", "40"),
		submit("#create"))
	contains(t, "weights error", text("#variations-error"), "must sum to 100, not 90")
	do("fix the weights", shot("validation"), typeInto("#var_weight_1", "50"), submit("#create"))
	contains(t, "created", text("#flash"), "Created experiment checkout-button")
	contains(t, "status", text("#status"), "DRAFT")

	// Start it.
	do("start", submit("#start-checkout-button"))
	contains(t, "started", text("#status"), "RUNNING")

	// Raise its traffic: the page says what will happen before saving.
	do("traffic", typeInto("#traffic-checkout-button", "100"))
	contains(t, "traffic explanation", text("#traffic-checkout-button-explain"),
		"Everyone assigned so far keeps their variation; about 90 % more subjects enter.")
	do("traffic screenshot", chromedp.ScrollIntoView(chromedp.CSS("#alloc-checkout-button")), shot("traffic"))
	do("save traffic", submit("#traffic-checkout-button-save"))
	contains(t, "traffic saved", text("#flash"), "10 % → 100 %")

	// Preview an assignment: the engine answers.
	do("preview", sendKeys("#subject", "user-1"), sendKeys("#attrs", "country = US\nplan = pro"), submit("#preview"))
	previewed := text("#preview-variation")
	if previewed != "control" && previewed != "treatment" {
		t.Fatalf("preview: variation %q", previewed)
	}
	contains(t, "preview reason", text("#preview-reason"), "defined in allocation")
	do("preview screenshot", shot("preview"))

	// The list, on a laptop and on a phone.
	do("list", submit(`nav a[href^="/flags?"]`), shot("flags"))
	contains(t, "list", text("#flags tbody"), "checkout-button")
	do("phone", phone(),
		chromedp.Navigate(base+"/flags/checkout-button?env=production"), visible("#status"), shot("phone-flag"),
		chromedp.Navigate(base+"/flags?env=production"), visible("#flags"), shot("phone-flags"),
		laptop())

	// Create an SDK key: the secret is shown once, with a copy button.
	do("create key", chromedp.Navigate(base+"/keys?env=production"), visible("#name"),
		sendKeys("#name", "checkout-service"), submit("#create-key"),
		chromedp.Click(chromedp.CSS("#copy")),
		until(`document.getElementById("copy-status").textContent !== ""`),
		shot("sdk-key"))
	secret, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS("#secret")))
	if err != nil || !strings.HasPrefix(secret, "allot_sdk_") {
		t.Fatalf("secret %q %v", secret, err)
	}

	// The key fetches the configuration, and the Go SDK assigns what the
	// preview showed.
	code, body := fetchConfig(t, base, secret)
	if code != http.StatusOK || !strings.Contains(body, `"checkout-button"`) {
		t.Fatalf("config fetch: %d %s", code, body)
	}
	client, err := allot.Init(context.Background(), allot.Config{SDKKey: secret, BaseURL: base + "/api", InitTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("SDK init: %v", err)
	}
	v, ok := client.GetAssignment("checkout-button", "user-1", allot.Attributes{"country": "US", "plan": "pro"})
	client.Close(context.Background())
	if !ok || v != previewed {
		t.Fatalf("SDK assigned %q (%v); the preview showed %q", v, ok, previewed)
	}

	// Assignments logged through the SDK's HTTP logger show up on the
	// experiment's page, with the sample ratio check.
	events, err := allot.NewHTTPLogger(allot.HTTPLoggerConfig{SDKKey: secret, BaseURL: base + "/api"})
	if err != nil {
		t.Fatal(err)
	}
	logging, err := allot.NewClient(context.Background(), allot.Config{SDKKey: secret, BaseURL: base + "/api", AssignmentLogger: events, InitTimeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("SDK init: %v", err)
	}
	for i := range 2000 {
		logging.GetAssignment("checkout-button", fmt.Sprintf("subject-%d", i), allot.Attributes{"country": "US", "plan": "pro"})
	}
	if err := logging.Close(context.Background()); err != nil { // flushes the HTTP logger
		t.Fatalf("SDK close: %v", err)
	}
	do("assignments", chromedp.Navigate(base+"/flags/checkout-button?env=production"), visible("#status"),
		chromedp.Click(chromedp.CSS("#assignments-checkout-button summary")), visible("#srm-checkout-button"),
		chromedp.ScrollIntoView(chromedp.CSS("#assignments-checkout-button")), shot("assignments"))
	contains(t, "assignments", text("#assignments-checkout-button summary"), "Assignments: 2000 subjects")
	contains(t, "srm", text("#srm-checkout-button"), "Sample ratio")

	// The list shows when the key was last used: the server's poller
	// writes it, so reload until it does (bounded).
	var lastUsed string
	for deadline := time.Now().Add(10 * time.Second); ; {
		do("keys", chromedp.Navigate(base+"/keys?env=production"), visible("#keys"))
		if lastUsed = text(`#keys td[data-label="Last used"]`); lastUsed != "never" || time.Now().After(deadline) {
			break
		}
	}
	contains(t, "last used", lastUsed, "UTC")

	// Revoke it; the fetch is refused.
	do("revoke", chromedp.Click(chromedp.CSS("#keys details.revoke summary")), submit("#keys button.danger"))
	contains(t, "revoked", text("#flash"), "Revoked the SDK key")
	if code, _ := fetchConfig(t, base, secret); code != http.StatusUnauthorized {
		t.Fatalf("fetch with a revoked key: %d", code)
	}
	do("keys screenshot", shot("sdk-keys"))

	// The audit log says who did what.
	do("audit", submit(`nav a[href^="/audit"]`), chromedp.Click(chromedp.CSS("#audit details summary")), shot("audit"))
	log := text("#audit")
	for _, want := range []string{"admin@localhost (token ALLOT_ADMIN_TOKEN", "revoke sdk_key", "create sdk_key", "update flag_settings", "create flag checkout-button"} {
		contains(t, "audit log", log, want)
	}

	// Sign out: the pages need a session again.
	do("sign out", submit(`.top-tools form[action="/signout"] button`), visible("#token"),
		chromedp.Navigate(base+"/keys"), visible("#token"))
	contains(t, "after sign out", location(), "/signin")
	t.Logf("browser steps took %v", time.Since(began).Round(time.Millisecond))
}
