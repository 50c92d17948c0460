package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the server's Prometheus metrics, in a private registry.
type Metrics struct {
	reg      *prometheus.Registry
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	builds   *prometheus.CounterVec
	buildDur prometheus.Histogram
	refused  *prometheus.GaugeVec
	refusals *prometheus.CounterVec
}

// NewMetrics creates the metrics and their registry.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "allot_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1},
		}, []string{"route"}),
		builds: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_config_builds_total", Help: "Configuration builds by environment and result.",
		}, []string{"environment", "result"}),
		buildDur: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "allot_config_build_duration_seconds", Help: "Time to read, compile and compress one environment's configuration.",
		}),
		refused: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "allot_config_refused_flags", Help: "Flags publishing refuses now (they serve their last good form or are left out), by environment.",
		}, []string{"environment"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "allot_config_flag_refusals_total", Help: "Flag versions publishing refused, by environment.",
		}, []string{"environment"}),
	}
	m.reg.MustRegister(m.requests, m.duration, m.builds, m.buildDur, m.refused, m.refusals,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Registry returns the private registry, for extra collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// ObserveBuild records one configuration build (publish.Cache.OnBuild).
func (m *Metrics) ObserveBuild(env string, took time.Duration, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.builds.WithLabelValues(env, result).Inc()
	m.buildDur.Observe(took.Seconds())
}

// ObserveRefused records the flags refused in an environment
// (publish.Cache.OnRefused).
func (m *Metrics) ObserveRefused(env string, refused, added int) {
	m.refused.WithLabelValues(env).Set(float64(refused))
	if added > 0 {
		m.refusals.WithLabelValues(env).Add(float64(added))
	}
}

// WatchConfigAge exports how long ago the configuration was last confirmed
// against the database (publish.Cache.Age), to alert on before /readyz
// turns.
func (m *Metrics) WatchConfigAge(age func() time.Duration) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "allot_config_age_seconds", Help: "Seconds since a refresh last confirmed the published configuration against the database (-1 before the first).",
	}, func() float64 {
		if a := age(); a >= 0 {
			return a.Seconds()
		}
		return -1
	}))
}

// Handler serves the metrics in Prometheus' text format. It does no access
// control: the server decides who may read them (--metrics).
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Observe counts one request by route pattern and status, and its latency.
func (m *Metrics) Observe(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, statusText(status)).Inc()
	m.duration.WithLabelValues(route).Observe(d.Seconds())
}

// RouteObserver is Observe for one route, its series for 200 and 304 (and
// its latency histogram) looked up once rather than per request: the
// config endpoint's fast path counts through it.
func (m *Metrics) RouteObserver(route string) func(status int, d time.Duration) {
	ok, notModified := m.requests.WithLabelValues(route, "200"), m.requests.WithLabelValues(route, "304")
	latency := m.duration.WithLabelValues(route)
	return func(status int, d time.Duration) {
		switch status {
		case http.StatusOK:
			ok.Inc()
		case http.StatusNotModified:
			notModified.Inc()
		default:
			m.requests.WithLabelValues(route, statusText(status)).Inc()
		}
		latency.Observe(d.Seconds())
	}
}

var statusTexts = map[int]string{200: "200", 201: "201", 204: "204", 304: "304", 400: "400", 401: "401", 404: "404", 405: "405", 409: "409", 413: "413", 500: "500", 503: "503"}

func statusText(code int) string {
	if s, ok := statusTexts[code]; ok {
		return s
	}
	return strconv.Itoa(code)
}
