package main

import (
	"regexp"
	"testing"
)

func TestClientListEffectiveBurst(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "slow", "--rps", "0.5")
	e.mustRun(exitOK, "client", "add", "quick", "--rps", "2.5")
	e.mustRun(exitOK, "client", "add", "set", "--rps", "1", "--burst", "7")
	e.mustRun(exitOK, "client", "add", "free")

	text := e.mustRun(exitOK, "client", "list").stdout
	for _, want := range []string{
		`slow .* 0\.5 +1 \(default\) `,
		`quick .* 2\.5 +3 \(default\) `,
		`set .* 1 +7 +- `,
		`free .* - +- +- `,
	} {
		if !regexp.MustCompile(want).MatchString(text) {
			t.Errorf("list does not match %q:\n%s", want, text)
		}
	}

	bursts := map[string][2]int{"slow": {0, 1}, "quick": {0, 3}, "set": {7, 7}, "free": {0, 0}}
	for _, c := range e.listClients().Clients {
		if got := [2]int{c.Burst, c.EffectiveBurst}; got != bursts[c.Name] {
			t.Errorf("%s: burst and effective burst %v, want %v", c.Name, got, bursts[c.Name])
		}
	}
}
