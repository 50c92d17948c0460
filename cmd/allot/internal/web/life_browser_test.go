package web_test

import (
	"strings"

	"github.com/chromedp/chromedp"
)

// editorsWeek is the editor's part of issue 17's walk through a team's
// week (TestBrowserTeamWeek), in the browser w drives, signed in as an
// editor, with a staging environment and a flag old-banner: create a flag
// with 6 variations and 3 rules in 2 allocations (rule rows added by the
// form's own buttons); add a rollout in staging; copy it all to production
// after reading the diff; start the experiment there and raise its
// traffic; edit a rule; archive old-banner. With ALLOT_UPDATE_SCREENSHOTS=1
// it writes the life-*.png screenshots docs/web-ui.md shows, at laptop and
// phone widths.
func editorsWeek(w *walker) {
	t, base := w.t, w.base
	t.Helper()
	do, text := w.do, w.text
	set := func(sel, value string) step { // a select or hidden choice
		return js(`document.querySelector(` + quote(sel) + `).value = ` + quote(value))
	}

	// A new experiment in staging, then 4 more variations on the flag's
	// edit page: "Add a variation" renders the form with one more row.
	do("new experiment", chromedp.Navigate(base+"/flags/new?env=staging"), visible("#key"),
		sendKeys("#key", "hero"), sendKeys("#description", "Which hero banner sells?"),
		typeInto("#var_key_0", "v1"), typeInto("#var_value_0", "v1"), typeInto("#var_weight_0", "100"),
		typeInto("#var_key_1", ""), typeInto("#var_value_1", ""), typeInto("#var_weight_1", ""),
		submit("#create"))
	contains(t, "created", text("#flash"), "Created experiment hero in staging")
	do("edit flag", submit("#edit-flag"), visible("#var_key_1"),
		sendKeys("#var_key_1", "v2"), submit("#add-var"), sendKeys("#var_key_2", "v3"), submit("#add-var"),
		sendKeys("#var_key_3", "v4"), submit("#add-var"), sendKeys("#var_key_4", "v5"), submit("#add-var"),
		sendKeys("#var_key_5", "v6"), sendKeys("#tags", "home, web"), sendKeys("#owner", "growth"),
		shot("life-edit-flag"), submit("#save-flag"))
	contains(t, "flag saved", text("#flash"), "Saved flag hero")
	contains(t, "six variations", text("main > p.muted"), "v6")

	// The experiment gets a rule and six weights.
	do("edit experiment", submit("#edit-hero"), visible("#traffic"),
		typeInto("#traffic", "20"),
		typeInto("#weight_v1", "16.67"), typeInto("#weight_v2", "16.67"), typeInto("#weight_v3", "16.67"),
		typeInto("#weight_v4", "16.67"), typeInto("#weight_v5", "16.66"), typeInto("#weight_v6", "16.66"),
		submit("#add-rule"), visible("#attr_0_0"),
		sendKeys("#attr_0_0", "country"), set("#op_0_0", "ONE_OF"), sendKeys("#value_0_0", "US, CA"),
		submit("#save-alloc"))
	contains(t, "experiment saved", text("#flash"), "Saved experiment hero in staging")

	// A targeted allocation with two rules, the first of two conditions,
	// made with the form's buttons; it goes first.
	do("targeted", submit("#add-targeted"), visible("#key"), sendKeys("#key", "beta-testers"), set("#variation", "v6"),
		submit("#add-rule"), sendKeys("#attr_0_0", "plan"), set("#op_0_0", "ONE_OF"), sendKeys("#value_0_0", "beta"),
		submit("#add-cond-0"), sendKeys("#attr_0_1", "age"), set("#op_0_1", "GTE"), sendKeys("#value_0_1", "18"),
		submit("#add-rule"), sendKeys("#attr_1_0", "email"), set("#op_1_0", "MATCHES"), sendKeys("#value_1_0", "@example\\.com$"),
		shot("life-rules"), submit("#save-alloc"))
	contains(t, "targeted saved", text("#flash"), "Added targeted beta-testers")
	do("move it first", submit("#up-beta-testers"))
	contains(t, "moved", text("#flash"), "position 1 of 2")

	// A rollout in staging.
	do("rollout", submit("#add-rollout"), visible("#key"), sendKeys("#key", "ramp"), set("#variation", "v2"),
		typeInto("#percent", "25"), submit("#save-alloc"))
	contains(t, "rollout", text("#flash"), "Added rollout ramp")
	do("staging screenshot", shot("life-flag"))

	// Copy to production: the diff first, then the copy.
	do("copy", submit("#copy-flag"), visible("#diff"), shot("life-copy"))
	diff := text("#diff")
	for _, want := range []string{"allocation beta-testers", "allocation hero", "allocation ramp", "order"} {
		contains(t, "diff", diff, want)
	}
	do("confirm copy", submit("#confirm-copy"))
	contains(t, "copied", text("#flash"), "Copied the settings of hero from staging to production")
	contains(t, "in production", text("#alloc-h"), "production")
	contains(t, "production allocations", text("#alloc-beta-testers"), "age is at least 18")

	// Start the experiment in production and raise its traffic.
	do("start", submit("#start-hero"))
	contains(t, "started", text("#status"), "RUNNING")
	do("traffic", typeInto("#traffic-hero", "50"), submit("#traffic-hero-save"))
	contains(t, "traffic", text("#flash"), "20 % → 50 %")

	// Edit a rule: beta testers are now "beta" or "alpha" plans.
	do("edit rule", submit("#edit-beta-testers"), visible("#value_0_0"), typeInto("#value_0_0", "beta, alpha"), submit("#save-alloc"))
	contains(t, "rule edited", text("#alloc-beta-testers"), `"beta", "alpha"`)
	do("phone", phone(), chromedp.Navigate(base+"/flags/hero?env=production"), visible("#status"), shot("life-phone-flag"),
		chromedp.Navigate(base+"/flags/hero/allocations/beta-testers/edit?env=production"), visible("#value_0_0"), shot("life-phone-rules"),
		laptop())

	// Archive the other flag: gone from the list and from what SDKs get.
	do("archive", chromedp.Navigate(base+"/flags/old-banner?env=production"), visible("#archive-flag"), submit("#archive-flag"))
	contains(t, "archived", text("#flash"), "Archived old-banner")
	do("list", chromedp.Navigate(base+"/flags?env=production"), visible("#flags"), shot("life-flags"))
	if list := text("#flags"); strings.Contains(list, "old-banner") || !strings.Contains(list, "hero") {
		t.Fatalf("list after archiving: %s", list)
	}
	do("archived list", chromedp.Navigate(base+"/flags?env=production&status=ARCHIVED"), visible("#flags"))
	contains(t, "archived filter", text("#flags"), "old-banner")
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}
