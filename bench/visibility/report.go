package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

func printHeader(w io.Writer, cfg config) {
	fmt.Fprintf(w, "keyturn visibility lag: time from finishSecret to the router's last upstream request with the old key\n")
	fmt.Fprintf(w, "  machine   %d CPUs, %s/%s, %s\n", runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(w, "  cache     %s, jitter %.1f (default), max_stale %s (default)\n",
		describeRefresh(cfg), keystore.DefaultRefreshJitter, keystore.DefaultMaxStale)
	fmt.Fprintf(w, "  load      %g requests/s through the router, every other one streamed; lag resolution %s\n",
		cfg.rate, formatDuration(resolution(cfg)))
	fmt.Fprintf(w, "  rotations %d per mode; finishSecret is when the store call moving %s returned\n",
		cfg.rotations, keystore.StageCurrent)
	fmt.Fprintf(w, "  default   old key valid (grace); rotations start after a random wait of up to one refresh interval\n")
	fmt.Fprintf(w, "  401       old key revoked at finishSecret; rotations start after a random wait of up to %s\n",
		formatDuration(wait401))
}

func describeRefresh(cfg config) string {
	if cfg.refresh == 0 {
		return fmt.Sprintf("refresh %s (keystore default)", keystore.DefaultRefreshInterval)
	}
	return fmt.Sprintf("refresh %s (set by -refresh, so the default mode measures this interval, not the default %s)",
		cfg.refresh, keystore.DefaultRefreshInterval)
}

// resolution is the spacing of the load's requests, which bounds how
// precisely the last old-key request marks the switch.
func resolution(cfg config) time.Duration {
	return time.Duration(float64(time.Second) / cfg.rate)
}

// printSample prints one rotation's line.
func printSample(w io.Writer, cfg config, s sample) {
	line := fmt.Sprintf("%-7s %d/%d  lag %-9s  old-key requests %d", s.mode, s.index, cfg.rotations,
		formatDuration(s.lag), s.oldKeyRequests)
	if s.mode == mode401 {
		line += fmt.Sprintf(" (%d rejected)  retried %d: %s, others %s", s.rejected, len(s.retried),
			describeLatencies(s.retriedLatencies), describeLatencies(s.otherLatencies))
	} else {
		line += fmt.Sprintf("  finishSecret %s after the cache's last read", formatDuration(s.sinceRead))
	}
	fmt.Fprintf(w, "%s  requests %d, failed %d\n", line, s.requests, s.failed)
}

// describeLatencies words the p50 and max of ds.
func describeLatencies(ds []time.Duration) string {
	if len(ds) == 0 {
		return "none"
	}
	return fmt.Sprintf("p50 %s max %s", formatDuration(quantile(ds, 0.5)), formatDuration(quantile(ds, 1)))
}

// printSummary prints a table of each mode measured, the ratio of their
// median lags, and the latencies of the 401 mode's retried requests.
func printSummary(w io.Writer, cfg config, results map[mode][]sample) {
	fmt.Fprintln(w)
	if len(results[modeDefault]) == 0 && len(results[mode401]) == 0 {
		fmt.Fprintln(w, "no rotation was measured")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "mode\trotations\tlag min\tmedian\tmax\told-key requests min\tmedian\tmax\tfailed")
	for _, m := range cfg.modes {
		samples := results[m]
		if len(samples) == 0 {
			continue
		}
		lags, olds, failed := summaryColumns(samples)
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", m, len(samples),
			formatDuration(quantile(lags, 0)), formatDuration(quantile(lags, 0.5)), formatDuration(quantile(lags, 1)),
			quantile(olds, 0), quantile(olds, 0.5), quantile(olds, 1), failed)
	}
	_ = tw.Flush()
	printRatio(w, results)
	printRetries(w, results[mode401])
}

func summaryColumns(samples []sample) (lags []time.Duration, olds []int, failed int) {
	for _, s := range samples {
		lags = append(lags, s.lag)
		olds = append(olds, s.oldKeyRequests)
		failed += s.failed
	}
	return lags, olds, failed
}

func printRatio(w io.Writer, results map[mode][]sample) {
	def, _, _ := summaryColumns(results[modeDefault])
	r401, _, _ := summaryColumns(results[mode401])
	if len(def) == 0 || len(r401) == 0 {
		return
	}
	m401 := quantile(r401, 0.5)
	if m401 <= 0 {
		fmt.Fprintf(w, "median lag: default %s, 401 below the resolution\n", formatDuration(quantile(def, 0.5)))
		return
	}
	fmt.Fprintf(w, "median lag: default %s is %.0f times the 401 mode's %s\n",
		formatDuration(quantile(def, 0.5)), float64(quantile(def, 0.5))/float64(m401), formatDuration(m401))
}

func printRetries(w io.Writer, samples []sample) {
	if len(samples) == 0 {
		return
	}
	var retried, others []time.Duration
	for _, s := range samples {
		retried = append(retried, s.retriedLatencies...)
		others = append(others, s.otherLatencies...)
	}
	fmt.Fprintf(w, "401 mode: %d client requests needed the retry (%s); the other %d: %s\n",
		len(retried), describeLatencies(retried), len(others), describeLatencies(others))
}

// checkFailures returns an error listing the failed client requests of
// every sample, or nil when none failed.
func checkFailures(results map[mode][]sample) error {
	var b strings.Builder
	total := 0
	for _, m := range []mode{mode401, modeDefault} {
		for _, s := range results[m] {
			if s.failed == 0 {
				continue
			}
			total += s.failed
			fmt.Fprintf(&b, "%s mode, rotation %d:\n%s", s.mode, s.index, s.failures)
		}
	}
	if total == 0 {
		return nil
	}
	return fmt.Errorf("%d client requests failed; a rotation must fail none:\n%s", total, strings.TrimSuffix(b.String(), "\n"))
}

// formatDuration prints d in milliseconds below a second and rounded to
// 10 ms above.
func formatDuration(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond))
	}
	return d.Round(10 * time.Millisecond).String()
}
