package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"time"
)

// outputFlag selects text for people or JSON for scripts.
type outputFlag string

const (
	outputText outputFlag = "text"
	outputJSON outputFlag = "json"
)

// storeOutputFlags are the flags of a command that opens a store and
// prints its result as text or JSON.
type storeOutputFlags struct {
	storeFlags
	output outputFlag
}

// registerStoreOutputFlags registers the store flags and --output, which
// defaults to text, on fs. Without hostPolicy it leaves out --relay-host
// and --allow-loopback, for a command that sends no key anywhere.
func registerStoreOutputFlags(fs *flag.FlagSet, hostPolicy bool) *storeOutputFlags {
	f := &storeOutputFlags{output: outputText}
	f.registerStore(fs, anyStoreHelp)
	if hostPolicy {
		f.registerHostPolicy(fs)
	}
	f.output.register(fs)
	return f
}

func (o *outputFlag) register(fs *flag.FlagSet) {
	fs.Var(o, "output", "output `FORMAT`: text or json")
}

func (o *outputFlag) String() string { return string(*o) }

func (o *outputFlag) Set(v string) error {
	switch outputFlag(v) {
	case outputText, outputJSON:
		*o = outputFlag(v)
		return nil
	}
	return fmt.Errorf("unknown output format %q: use text or json", v)
}

// writeJSON writes v to stdout as indented JSON.
func (a *app) writeJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return fmt.Errorf("write JSON output: %w", err)
	}
	return nil
}

// formatTime prints a time in UTC to the second, or "-" for the zero time.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// plural returns "N thing" or "N things".
func plural(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}
