package router

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/keyturn/keyturn/internal/upstream"
	"github.com/keyturn/keyturn/keystore"
)

// metrics are the router's Prometheus metrics, on a registry of its own so
// that tests and several servers in one process do not collide. No label
// holds a key or a client key: the labels are endpoints, status codes,
// provider names, secret ids, stages and version ids.
type metrics struct {
	registry   *prometheus.Registry
	requests   *prometheus.CounterVec
	duration   *prometheus.HistogramVec
	upstream   *prometheus.CounterVec
	local      *prometheus.CounterVec
	rejections *prometheus.CounterVec
	fallbacks  *prometheus.CounterVec
}

func newMetrics(keys Keys, secrets []string) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyturn_router_requests_total",
			Help: "Client requests by endpoint, status code and provider (empty before a route is found).",
		}, []string{"endpoint", "status", "provider"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyturn_router_request_duration_seconds",
			Help:    "Time from a client request's arrival to the end of its response, streams included.",
			Buckets: []float64{.01, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"endpoint"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyturn_router_upstream_requests_total",
			Help: "Attempts sent upstream (a retried client request makes two) by secret, stage of the final attempt's key and status sent to the client.",
		}, []string{"secret", "stage", "status"}),
		local: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyturn_router_local_responses_total",
			Help: "Requests for a provider secret that the router answered itself without reaching the provider, by secret and status sent to the client.",
		}, []string{"secret", "status"}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyturn_router_upstream_key_rejections_total",
			Help: "Upstream attempts whose key the provider rejected, whether or not another version was left to retry with.",
		}, []string{"secret"}),
		fallbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyturn_router_upstream_previous_key_total",
			Help: "Client requests served with the AWSPREVIOUS key, because the current key was rejected or cooling down.",
		}, []string{"secret"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.upstream, m.local, m.rejections, m.fallbacks,
		&cacheCollector{keys: keys, secrets: secrets},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

func (m *metrics) observeRequest(endpoint string, status int, provider string, d time.Duration) {
	m.requests.WithLabelValues(endpoint, strconv.Itoa(status), provider).Inc()
	m.duration.WithLabelValues(endpoint).Observe(d.Seconds())
}

// observeOutcome counts one proxied request. A response the router sent
// itself, such as a 502 for a secret without a value, goes to a counter of
// its own. Counted as an upstream request, it would make the provider look
// as if it failed when the router never called it.
func (m *metrics) observeOutcome(o upstream.Outcome) {
	if !o.Upstream {
		m.local.WithLabelValues(o.SecretID, strconv.Itoa(o.Status)).Inc()
		return
	}
	m.upstream.WithLabelValues(o.SecretID, o.Stage, strconv.Itoa(o.Status)).Add(float64(o.Attempts))
	if o.Rejected > 0 {
		m.rejections.WithLabelValues(o.SecretID).Add(float64(o.Rejected))
	}
	if o.Stage == keystore.StagePrevious {
		m.fallbacks.WithLabelValues(o.SecretID).Inc()
	}
}

// cacheCollector reports the keystore cache's state of each secret at
// scrape time, so the version gauge follows a rotation as soon as the cache
// refreshes.
type cacheCollector struct {
	keys    Keys
	secrets []string
}

var (
	versionDesc = prometheus.NewDesc("keyturn_router_secret_version_info",
		"The AWSCURRENT version the router serves for each secret (always 1).", []string{"secret", "version_id"}, nil)
	ageDesc = prometheus.NewDesc("keyturn_router_cache_age_seconds",
		"Seconds since the secret was last read from the store.", []string{"secret"}, nil)
	staleDesc = prometheus.NewDesc("keyturn_router_cache_stale",
		"1 when the cached value is past its refresh interval because reads of the store failed.", []string{"secret"}, nil)
	failuresDesc = prometheus.NewDesc("keyturn_router_cache_refresh_failures_total",
		"Failed reads of the secret from the store.", []string{"secret"}, nil)
	refreshesDesc = prometheus.NewDesc("keyturn_router_cache_refreshes_total",
		"Successful reads of the secret from the store.", []string{"secret"}, nil)
)

func (c *cacheCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{versionDesc, ageDesc, staleDesc, failuresDesc, refreshesDesc} {
		ch <- d
	}
}

func (c *cacheCollector) Collect(ch chan<- prometheus.Metric) {
	for _, id := range c.secrets {
		st, ok := c.keys.Status(id)
		if !ok {
			continue
		}
		if st.CurrentVersion != "" {
			ch <- prometheus.MustNewConstMetric(versionDesc, prometheus.GaugeValue, 1, id, st.CurrentVersion)
		}
		if !st.Fetched.IsZero() {
			ch <- prometheus.MustNewConstMetric(ageDesc, prometheus.GaugeValue, st.Age.Seconds(), id)
		}
		ch <- prometheus.MustNewConstMetric(staleDesc, prometheus.GaugeValue, boolGauge(st.Stale), id)
		ch <- prometheus.MustNewConstMetric(failuresDesc, prometheus.CounterValue, float64(st.Failures), id)
		ch <- prometheus.MustNewConstMetric(refreshesDesc, prometheus.CounterValue, float64(st.Refreshes), id)
	}
}

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
