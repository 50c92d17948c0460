package web

import (
	"html/template"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/allot-dev/allot/cmd/allot/internal/core"
)

var funcs = template.FuncMap{
	"pct":  pct,
	"when": when,
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return when(*t)
	},
	"lower": strings.ToLower,
	"add":   func(a, b int) int { return a + b },
	"sub":   func(a, b int) int { return a - b },
	"seq": func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i
		}
		return out
	},
	"field": func(m map[string]string, id string) string { return m[id] },
	"list":  func(s ...string) []string { return s },
	"toolsOf": func(p *page, a allocView) allocTools {
		d := p.Data.(*detailData)
		i := slices.IndexFunc(d.Allocs, func(x allocView) bool { return x.Key == a.Key })
		return allocTools{Page: p, Alloc: a, First: i == 0, Last: i == len(d.Allocs)-1}
	},
	"q":     envQuery,
	"share": share,
}

// allocTools is what the "alloc-tools" template gets.
type allocTools struct {
	Page        *page
	Alloc       allocView
	First, Last bool
}

// pct prints basis points as a percentage: 1250 is "12.5 %".
func pct(p core.Percent) string { return pctNumber(p) + " %" }

// pctNumber prints basis points as a number of percent, for form inputs.
func pctNumber(p core.Percent) string {
	return strconv.FormatFloat(float64(p)/100, 'f', -1, 64)
}

func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// parsePages parses each page template together with the layout.
func parsePages() map[string]*template.Template {
	// Partials (templates/partials) are blocks a page calls by name.
	layout := template.Must(template.New("layout.html").Funcs(funcs).ParseFS(assets, "templates/layout.html", "templates/partials/*.html"))
	names, err := fs.Glob(assets, "templates/*.html")
	if err != nil {
		panic(err)
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" || base == "tools" {
			continue
		}
		pages[base] = template.Must(template.Must(template.Must(layout.Clone()).ParseFS(assets, "templates/tools.html")).ParseFS(assets, n))
	}
	return pages
}
