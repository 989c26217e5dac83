package upstream

import (
	"bytes"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// clock is a time source that moves only when the test moves it.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

// newClockProxy returns a Proxy whose time is c, with a one-minute
// cooldown, and the buffer its logs go to.
func newClockProxy(t *testing.T, c *clock) (*Proxy, *bytes.Buffer) {
	t.Helper()
	logs := &bytes.Buffer{}
	p, err := New(Options{Keys: noKeys{}, Policy: provider.DefaultPolicy(), Cooldown: time.Minute,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err != nil {
		t.Fatal(err)
	}
	p.now = c.now
	return p, logs
}

func TestRejectionWarningCountsRepeats(t *testing.T) {
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	p, logs := newClockProxy(t, c)
	v := &version{secretID: "s", id: "v1", adapter: "openai"}
	a := &attempt{version: v, stage: keystore.StageCurrent, target: &url.URL{Host: "api.openai.com"}, status: 401}
	moved := keystore.Keys{Current: testVersion("v2"), Previous: testVersion("v1")}

	for range 3 {
		p.logRejected(a, moved)
		c.advance(time.Second)
	}
	c.advance(time.Minute)
	p.logRejected(a, keystore.Keys{Current: testVersion("v3")})

	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := [][]string{
		{"level=WARN", `msg="provider rejected the key of a provider secret"`, "stage=AWSCURRENT", "stage_now=AWSPREVIOUS"},
		{"level=DEBUG", "again", "stage_now=AWSPREVIOUS"},
		{"level=DEBUG", "again"},
		{"level=WARN", "stage=AWSCURRENT", "stage_now=none", "repeats_logged_at_debug=2"},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d log lines, want %d:\n%s", len(lines), len(want), logs)
	}
	for i, parts := range want {
		for _, part := range parts {
			if !strings.Contains(lines[i], part) {
				t.Errorf("line %d does not contain %s:\n%s", i+1, part, lines[i])
			}
		}
	}
	if strings.Contains(lines[0], "repeats") {
		t.Errorf("the first warning counts repeats:\n%s", lines[0])
	}
}

func TestHealthServingPrevious(t *testing.T) {
	c := &clock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	p, _ := newClockProxy(t, c)
	s := p.versionsOf("s")
	keys := keystore.Keys{Current: testVersion("v2"), Previous: testVersion("v1"), Fetched: c.t}
	current, previous := p.resolve(s, keys)
	if p.Health("s").ServingPrevious {
		t.Error("ServingPrevious is set before any rejection")
	}

	current.startCooldown(c.now(), p.cooldown)
	h := p.Health("s")
	if !h.ServingPrevious || !h.OK() || h.VersionID != "v2" {
		t.Errorf("health in AWSCURRENT's cooldown = %+v, want ServingPrevious, OK and version v2", h)
	}
	if got := p.firstChoice(s, keys); got.version != previous {
		t.Errorf("first choice is version %s, want v1, as Health reports", got.version.id)
	}

	previous.startCooldown(c.now(), p.cooldown)
	if p.Health("s").ServingPrevious {
		t.Error("ServingPrevious is set while AWSPREVIOUS is in a cooldown too")
	}

	c.advance(p.cooldown)
	if p.Health("s").ServingPrevious {
		t.Error("ServingPrevious is still set after the cooldown ended")
	}
}
