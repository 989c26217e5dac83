package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/loadgen"
	"github.com/keyturn/keyturn/keystore"
)

// mode is the way a rotation ends the use of the old key.
type mode string

const (
	// modeDefault leaves the old key valid at the provider, so the router
	// switches at its background refresh.
	modeDefault mode = "default"
	// mode401 revokes the old key at finishSecret, so the router switches
	// after the provider's 401.
	mode401 mode = "401"
)

// maxRate bounds -rate, at 20 times the load of the end-to-end tests.
// Far higher rates would measure the machine more than the lag.
const maxRate = 1000

// config is the checked command line.
type config struct {
	rotations int
	// refresh is the cache's refresh interval; zero keeps the keystore's
	// default, keystore.DefaultRefreshInterval.
	refresh time.Duration
	rate    float64
	modes   []mode
}

// refreshInterval returns the refresh interval the cache runs with.
func (c config) refreshInterval() time.Duration {
	if c.refresh == 0 {
		return keystore.DefaultRefreshInterval
	}
	return c.refresh
}

const usage = `Usage: visibility [-rotations 5] [-refresh DURATION] [-rate 50] [-mode both]

Measures how long after a rotation's finishSecret every router request uses
the new key, under the load of the end-to-end tests (-rate requests per
second, every other one streamed). Mode default keeps the old key valid, so
the router switches at its background refresh; mode 401 revokes the old key
at finishSecret, so the router switches after the provider's 401. A
default-mode rotation takes about one refresh interval (5m by default) and
at most two, and a 401-mode rotation a few seconds.

Flags:
`

// errHelp reports that -h printed the usage.
var errHelp = flag.ErrHelp

func parseFlags(args []string, stderr io.Writer) (config, error) {
	cfg := config{}
	var modeFlag string
	fs := flag.NewFlagSet("visibility", flag.ContinueOnError)
	// Errors are returned, not printed, so that each is printed once.
	fs.SetOutput(io.Discard)
	fs.IntVar(&cfg.rotations, "rotations", 5, "rotations to measure in each mode")
	fs.DurationVar(&cfg.refresh, "refresh", 0, "the router cache's refresh interval, as a Go `DURATION` such as 5s (default: the keystore default, 5m)")
	fs.Float64Var(&cfg.rate, "rate", loadgen.DefaultRate, "client requests per second")
	fs.StringVar(&modeFlag, "mode", "both", "modes to measure: default, 401 or both")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fs.SetOutput(stderr)
			fmt.Fprint(stderr, usage)
			fs.PrintDefaults()
			return config{}, errHelp
		}
		return config{}, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return config{}, usagef("unexpected argument %q: visibility takes only flags", fs.Arg(0))
	}
	modes, err := parseMode(modeFlag)
	if err != nil {
		return config{}, err
	}
	cfg.modes = modes
	return cfg, cfg.check()
}

func parseMode(s string) ([]mode, error) {
	switch mode(s) {
	case modeDefault, mode401:
		return []mode{mode(s)}, nil
	case "both":
		// The 401 mode runs first: its rotations take seconds, so its
		// figures print before the long waits of the default mode.
		return []mode{mode401, modeDefault}, nil
	}
	return nil, usagef("invalid -mode %q: use default, 401 or both", s)
}

func (c config) check() error {
	var problems []string
	if c.rotations < 1 {
		problems = append(problems, fmt.Sprintf("invalid -rotations %d: use 1 or more", c.rotations))
	}
	// Under 1s, the refresh interval comes near the router's least time
	// between two forced re-reads (1s) and the second of load that runs on
	// after each switch, and the two modes no longer measure apart.
	if c.refresh < 0 || (c.refresh > 0 && c.refresh < time.Second) || c.refresh > keystore.DefaultMaxStale {
		problems = append(problems, fmt.Sprintf("invalid -refresh %s: use a duration from 1s to %s, the cache's maximum staleness",
			c.refresh, keystore.DefaultMaxStale))
	}
	if !(c.rate > 0 && c.rate <= maxRate) {
		problems = append(problems, fmt.Sprintf("invalid -rate %v: use a number of requests per second above 0 and at most %d", c.rate, maxRate))
	}
	if len(problems) > 0 {
		return usagef("%s", strings.Join(problems, "; "))
	}
	return nil
}
