package reconciler

import (
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are a watcher's Prometheus metrics, named after
// controller-runtime's. They live in their own registry, so two watchers in
// one process (tests) never collide. A nil *Metrics records nothing.
type Metrics struct {
	reg        *prometheus.Registry
	reconciles *prometheus.CounterVec
	duration   prometheus.Histogram
	depth      prometheus.Gauge
	bottles    *prometheus.GaugeVec
	drift      prometheus.Counter
}

// Results counted by bottle_reconcile_total.
const (
	resultSuccess = "success"
	resultError   = "error"
	resultRequeue = "requeue" // held: the bottle is backing off
)

// NewMetrics returns the metrics in a new registry, with the Go runtime and
// process collectors.
func NewMetrics() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		reconciles: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bottle_reconcile_total",
			Help: "Bottles worked on by a pass, by result: success, error, or requeue (held while backing off). A pass that could not plan counts one error.",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "bottle_reconcile_duration_seconds",
			Help:    "Time one pass took: load specs, observe, plan and apply.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120},
		}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bottle_queue_depth",
			Help: "Triggers waiting for a pass: each bottle named, plus one for a pending pass over everything.",
		}),
		bottles: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bottle_bottles",
			Help: "Bottles by state after the last pass.",
		}, []string{"state"}),
		drift: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "bottle_drift_repairs_total",
			Help: "Operations that put right out-of-band drift: a bundle missing, exited or unhealthy, a guest stopped, a repair.",
		}),
	}
	m.reg.MustRegister(m.reconciles, m.duration, m.depth, m.bottles, m.drift,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, r := range []string{resultSuccess, resultError, resultRequeue} {
		m.reconciles.WithLabelValues(r) // export zeros, so rates work from the start
	}
	return m
}

// Handler serves /metrics, /healthz (the process answers) and /readyz
// (ready() holds: a pass has completed and the spec directory is watched).
func (m *Metrics) Handler(ready func() bool) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !ready() {
			http.Error(w, "not ready: no pass completed yet, or the spec directory is not watched", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte("ok\n"))
	})
	return mux
}

func (m *Metrics) setDepth(n int) {
	if m != nil {
		m.depth.Set(float64(n))
	}
}

// planFailed records a pass that could not plan.
func (m *Metrics) planFailed(d time.Duration) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
	m.reconciles.WithLabelValues(resultError).Inc()
}

// pass records an applied pass; held is how many bottles were backing off.
func (m *Metrics) pass(p *Pass, held int, d time.Duration) {
	if m == nil {
		return
	}
	m.duration.Observe(d.Seconds())
	for _, res := range p.Results {
		result := resultSuccess
		if res.Err != nil {
			result = resultError
		}
		m.reconciles.WithLabelValues(result).Inc()
		for _, op := range res.Done {
			if op.Reason == ReasonDrift {
				m.drift.Inc()
			}
		}
	}
	m.reconciles.WithLabelValues(resultRequeue).Add(float64(held))
	m.bottles.Reset()
	for _, st := range p.Statuses {
		m.bottles.WithLabelValues(string(st.State)).Inc()
	}
}
