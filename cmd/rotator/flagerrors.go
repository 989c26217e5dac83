package main

import (
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
)

// The flag package's parse errors, as Go 1.26 words them.
var (
	flagValueError   = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([^:]+): (.*)$`)
	flagUnknownError = regexp.MustCompile(`^flag provided but not defined: -(.+)$`)
	flagNoValueError = regexp.MustCompile(`^flag needs an argument: -(.+)$`)
)

// flagErrorText rewords a parse error of fs in the CLI's terms: flags with
// two dashes, and for a bad value, the form the flag takes rather than the
// flag package's "parse error".
func flagErrorText(fs *flag.FlagSet, err error) string {
	msg := err.Error()
	if m := flagUnknownError.FindStringSubmatch(msg); m != nil {
		return "unknown flag --" + m[1]
	}
	if m := flagNoValueError.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("--%s needs a value", m[1])
	}
	m := flagValueError.FindStringSubmatch(msg)
	if m == nil {
		return msg
	}
	value, uerr := strconv.Unquote(m[1])
	if uerr != nil {
		value = m[1]
	}
	name, cause := m[2], m[3]
	if want := valueForm(fs.Lookup(name)); want != "" {
		cause = want
	}
	return fmt.Sprintf("invalid value %q for --%s: %s", value, name, cause)
}

// valueForm describes the values a built-in flag type takes, or returns ""
// for a flag whose own Set error already describes them.
func valueForm(f *flag.Flag) string {
	if f == nil {
		return ""
	}
	getter, ok := f.Value.(flag.Getter)
	if !ok {
		return ""
	}
	switch getter.Get().(type) {
	case time.Duration:
		return "use a duration such as 2m, 90s or 1h30m"
	case bool:
		return fmt.Sprintf("use true or false, or --%s alone for true", f.Name)
	case int, int64, uint, uint64:
		return "use a whole number"
	case float64:
		return "use a number"
	}
	return ""
}

// positiveDurations rejects the first of the named duration flags that is
// zero or negative, naming only that flag.
func positiveDurations(cmd string, flags ...namedDuration) error {
	for _, f := range flags {
		if f.value <= 0 {
			return cli.Usagef("%s: --%s %s must be positive, such as %s", cmd, f.name,
				strings.TrimSpace(f.value.String()), f.example)
		}
	}
	return nil
}

// namedDuration is a duration flag's name, value and an example value.
type namedDuration struct {
	name    string
	value   time.Duration
	example string
}
