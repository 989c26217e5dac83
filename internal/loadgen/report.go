package loadgen

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Report is the record of the requests a Generator sent between Start and
// Stop.
type Report struct {
	// Results lists every request, ordered by sequence number.
	Results  []Result
	Duration time.Duration
}

func newReport(results []Result, started, stopped time.Time) *Report {
	r := &Report{Results: slices.Clone(results), Duration: stopped.Sub(started)}
	slices.SortFunc(r.Results, func(a, b Result) int { return a.Seq - b.Seq })
	return r
}

// Sent returns the number of requests sent.
func (r *Report) Sent() int { return len(r.Results) }

// Streamed returns the number of streamed requests sent.
func (r *Report) Streamed() int {
	n := 0
	for _, res := range r.Results {
		if res.Stream {
			n++
		}
	}
	return n
}

// Failed returns the failed requests.
func (r *Report) Failed() []Result { return failed(r.Results) }

// failed returns the results whose request failed.
func failed(results []Result) []Result {
	var out []Result
	for _, res := range results {
		if res.Err != nil {
			out = append(out, res)
		}
	}
	return out
}

// Rate returns the achieved rate in requests per second.
func (r *Report) Rate() float64 {
	if r.Duration <= 0 {
		return 0
	}
	return float64(r.Sent()) / r.Duration.Seconds()
}

// String summarises the report in one line, such as "sent 3000 requests
// (1500 streamed) in 1m0s at 50.0/s, 0 failed".
func (r *Report) String() string {
	return fmt.Sprintf("sent %d requests (%d streamed) in %s at %.1f/s, %d failed",
		r.Sent(), r.Streamed(), r.Duration.Round(time.Millisecond), r.Rate(), len(r.Failed()))
}

// FailureList describes up to limit failed requests, one a line, with a last
// line that counts the rest.
func (r *Report) FailureList(limit int) string {
	var b strings.Builder
	failures := r.Failed()
	for i, res := range failures {
		if i == limit {
			fmt.Fprintf(&b, "... and %d more\n", len(failures)-limit)
			break
		}
		kind := "chat"
		if res.Stream {
			kind = "stream"
		}
		fmt.Fprintf(&b, "request %d (%s, started %s): %v\n", res.Seq, kind, res.Start.Format("15:04:05.000"), res.Err)
	}
	return b.String()
}
