package main

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/loadgen"
	"github.com/keyturn/keyturn/keystore"
)

var (
	oldKey = keystore.NewSecret("sk-old-0123456789")
	newKey = keystore.NewSecret("sk-new-0123456789")
	finish = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
)

// chatRecord returns the stand-in's record of load request seq, which
// arrived at finish+at with key and got status.
func chatRecord(seq int, at time.Duration, key keystore.Secret, status int) fakeprovider.RequestRecord {
	return fakeprovider.RequestRecord{
		Time: finish.Add(at), Path: chatPath, Key: key, Status: status,
		Body: []byte(`{"model":"gpt-4o","messages":[{"role":"user","content":"` + loadgen.Message(seq) + `"}]}`),
	}
}

func TestMeasureLagGrace(t *testing.T) {
	ms := time.Millisecond
	records := []fakeprovider.RequestRecord{
		chatRecord(1, -40*ms, oldKey, http.StatusOK),
		chatRecord(2, -20*ms, oldKey, http.StatusOK),
		chatRecord(4, 20*ms, oldKey, http.StatusOK),
		// Records are in the order requests ended, not arrived.
		chatRecord(6, 60*ms, oldKey, http.StatusOK),
		chatRecord(5, 40*ms, oldKey, http.StatusOK),
		chatRecord(3, 0, oldKey, http.StatusOK),
		chatRecord(7, 80*ms, newKey, http.StatusOK),
		chatRecord(8, 100*ms, newKey, http.StatusOK),
		// The rotation's probe of the new key is no router request.
		{Time: finish.Add(-10 * ms), Path: fakeprovider.OpenAIPrefix + "/models", Key: newKey, Status: http.StatusOK},
	}
	got := measureLag(records, oldKey, finish)
	if got.lag != 60*ms {
		t.Errorf("lag = %s, want 60ms", got.lag)
	}
	if got.oldKeyRequests != 4 {
		t.Errorf("old-key requests = %d, want 4 (those at 0, 20, 40 and 60ms)", got.oldKeyRequests)
	}
	if got.rejected != 0 || len(got.retried) != 0 {
		t.Errorf("rejected = %d, retried = %v, want none", got.rejected, got.retried)
	}
}

func TestMeasureLagRevoked(t *testing.T) {
	ms := time.Millisecond
	records := []fakeprovider.RequestRecord{
		chatRecord(1, -20*ms, oldKey, http.StatusOK),
		// It arrived before finish but was checked after the revocation.
		chatRecord(2, -1*ms, oldKey, http.StatusUnauthorized),
		chatRecord(2, 2*ms, newKey, http.StatusOK),
		chatRecord(3, 12*ms, oldKey, http.StatusUnauthorized),
		chatRecord(3, 15*ms, newKey, http.StatusOK),
		chatRecord(4, 30*ms, newKey, http.StatusOK),
	}
	got := measureLag(records, oldKey, finish)
	if got.lag != 12*ms {
		t.Errorf("lag = %s, want 12ms", got.lag)
	}
	if got.oldKeyRequests != 2 || got.rejected != 2 {
		t.Errorf("old-key requests = %d, rejected = %d, want 2 and 2", got.oldKeyRequests, got.rejected)
	}
	if len(got.retried) != 2 || !got.retried[2] || !got.retried[3] {
		t.Errorf("retried = %v, want requests 2 and 3", got.retried)
	}
}

func TestMeasureLagNoOldKeyAfterFinish(t *testing.T) {
	records := []fakeprovider.RequestRecord{
		chatRecord(1, -5*time.Millisecond, oldKey, http.StatusOK),
		chatRecord(2, 15*time.Millisecond, newKey, http.StatusOK),
	}
	got := measureLag(records, oldKey, finish)
	if got.lag != 0 || got.oldKeyRequests != 0 {
		t.Errorf("lag = %s, old-key requests = %d, want 0 and 0", got.lag, got.oldKeyRequests)
	}
}

func TestSplitLatencies(t *testing.T) {
	start := finish
	results := []loadgen.Result{
		{Seq: 1, Start: start, End: start.Add(time.Millisecond)},
		{Seq: 2, Start: start, End: start.Add(5 * time.Millisecond)},
		{Seq: 3, Start: start, End: start.Add(2 * time.Millisecond)},
	}
	retried, others := splitLatencies(results, map[int]bool{2: true})
	if len(retried) != 1 || retried[0] != 5*time.Millisecond {
		t.Errorf("retried = %v, want [5ms]", retried)
	}
	if len(others) != 2 || others[0] != time.Millisecond || others[1] != 2*time.Millisecond {
		t.Errorf("others = %v, want [1ms 2ms]", others)
	}
}

func TestQuantile(t *testing.T) {
	values := []int{50, 10, 40, 20, 30}
	for _, tc := range []struct {
		q    float64
		want int
	}{{0, 10}, {0.5, 30}, {0.9, 50}, {1, 50}} {
		if got := quantile(values, tc.q); got != tc.want {
			t.Errorf("quantile(%v) = %d, want %d", tc.q, got, tc.want)
		}
	}
	if got := quantile([]int{2, 1, 4, 3}, 0.5); got != 2 {
		t.Errorf("median of 1..4 = %d, want 2, the lower middle value", got)
	}
	if values[0] != 50 {
		t.Errorf("quantile sorted its argument: %v", values)
	}
	if got := quantile[time.Duration](nil, 0.5); got != 0 {
		t.Errorf("quantile of nothing = %s, want 0", got)
	}
}

func TestParseFlagsDefaults(t *testing.T) {
	cfg, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.rotations != 5 || cfg.rate != 50 || cfg.refreshInterval() != keystore.DefaultRefreshInterval {
		t.Errorf("config = %+v, want 5 rotations at 50/s with the default refresh", cfg)
	}
	if len(cfg.modes) != 2 || cfg.modes[0] != mode401 || cfg.modes[1] != modeDefault {
		t.Errorf("modes = %v, want [401 default]", cfg.modes)
	}
}

func TestParseFlagsInvalid(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-rotations", "0"}, "invalid -rotations 0"},
		{[]string{"-refresh", "500ms"}, "invalid -refresh 500ms"},
		{[]string{"-refresh", "2h"}, "invalid -refresh 2h0m0s"},
		{[]string{"-rate", "0"}, "invalid -rate 0"},
		{[]string{"-rate", "5000"}, "invalid -rate 5000"},
		{[]string{"-mode", "fast"}, `invalid -mode "fast": use default, 401 or both`},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-rotations", "x"}, `invalid value "x" for flag -rotations`},
	} {
		_, err := parseFlags(tc.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", tc.args, err, tc.want)
		}
		if exitCode(err, io.Discard) != 2 {
			t.Errorf("parseFlags(%q): exit code %d, want 2", tc.args, exitCode(err, io.Discard))
		}
	}
}
