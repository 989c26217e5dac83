package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/scheduler"
	"github.com/keyturn/keyturn/keystore"
)

// Exit codes, documented in the help text and the README.
const (
	exitOK          = cli.ExitOK
	exitError       = cli.ExitError
	exitUsage       = cli.ExitUsage
	exitRejected    = 3
	exitTransient   = 4
	exitInProgress  = 5
	exitInterrupted = cli.ExitInterrupted
)

// app is one invocation of the CLI. Tests build it directly to inject the
// environment, the clock and the AWS store.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	// openAWS opens the AWS store for aws:// URLs; nil is keystore.OpenAWS.
	openAWS func(ctx context.Context, region string) (keystore.Store, error)
	// pollInterval is how often rotate-now polls an AWS rotation; 0 is 2s.
	pollInterval time.Duration
	// clock drives serve's and dev's schedules, status's "now" and the age
	// rotate-now judges a left-over rotation by; nil is the wall clock.
	clock scheduler.Clock
	// devReady, if set, is called by `rotator dev` once its first rotation
	// is done, with the store it runs on.
	devReady func(dir string)
}

// run is the CLI: it parses args, runs the command and returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: os.Getenv}
	return a.run(ctx, args)
}

type command struct {
	name    string
	summary string
	run     func(a *app, ctx context.Context, args []string) error
}

func commands() []command {
	return []command{
		{"add", "create a managed secret on the file store", (*app).add},
		{"update", "change the settings or schedule of a secret on the file store", (*app).update},
		{"stage", "store the next key of a secret, read from a file or stdin", (*app).stage},
		{"rotate-now", "rotate a secret now and report the outcome", (*app).rotateNow},
		{"abandon", "drop a secret's unfinished rotation (its AWSPENDING label)", (*app).abandon},
		{"status", "show versions, schedules and failures of managed secrets", (*app).status},
		{"client", "add, list, revoke, disable and enable the router's client keys", (*app).client},
		{"serve", "run the rotation schedules of the file store", (*app).serve},
		{"dev", "run a complete local setup against a stand-in provider", (*app).dev},
	}
}

func (a *app) run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		a.printHelp(a.stderr)
		return exitUsage
	}
	name := args[0]
	switch name {
	case "help", "-h", "-help", "--help":
		return a.help(args[1:])
	}
	for _, c := range commands() {
		if c.name == name {
			return a.exit(interruptedError(ctx, c.run(a, ctx, args[1:])))
		}
	}
	return a.exit(cli.Usagef("unknown command %q: the commands are %s", name, commandNames()).
		WithHint("run 'rotator help' for what each command does"))
}

func (a *app) help(args []string) int {
	if len(args) == 0 {
		a.printHelp(a.stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			// The rest of args selects a subcommand's help, as in
			// 'rotator help client add'.
			return a.exit(c.run(a, context.Background(), append(slices.Clone(args[1:]), "-h")))
		}
	}
	return a.exit(cli.Usagef("unknown command %q: the commands are %s", args[0], commandNames()))
}

func commandNames() string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return strings.Join(names, ", ")
}

// errSilent ends a command with an exit code after it has printed its own
// result, such as rotate-now reporting a rejected key.
type errSilent struct{ code int }

func (e errSilent) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// exit prints err (if any) as age does and returns its exit code.
func (a *app) exit(err error) int {
	var silent errSilent
	if errors.As(err, &silent) {
		return silent.code
	}
	var coded *cli.Error
	if !errors.As(err, &coded) && errors.Is(err, keystore.ErrUnavailable) {
		// The README promises exit code 4 for an unreachable store from
		// every command; an error with its own code has chosen it.
		err = cli.WithCode(exitTransient, err)
	}
	return cli.Report("rotator", err, a.stderr)
}

func (a *app) clockNow() time.Time { return a.schedulerClock().Now() }

// schedulerClock returns a.clock, or the wall clock when it is nil.
func (a *app) schedulerClock() scheduler.Clock {
	if a.clock != nil {
		return a.clock
	}
	return scheduler.SystemClock{}
}

// parseArgs parses flags and positional arguments in any order, as users of
// `rotator add SECRET --provider openai` expect; the flag package alone stops
// at the first positional argument. Everything after "--" is positional.
// For -h it prints the command's help and returns flag.ErrHelp.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var positional []string
	for {
		if err := parseFlags(fs, args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.Usage()
				return nil, err
			}
			return nil, cli.Usagef("%s: %s", fs.Name(), flagErrorText(fs, err)).
				WithHint("run 'rotator help %s' for usage", fs.Name())
		}
		consumed := len(args) - fs.NArg()
		if consumed > 0 && args[consumed-1] == "--" {
			return append(positional, fs.Args()...), nil
		}
		if fs.NArg() == 0 {
			return positional, nil
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// parseFlags runs fs.Parse with Usage silenced, because the flag package
// calls Usage on every parse error and a one-line error reads better than
// the whole help text.
func parseFlags(fs *flag.FlagSet, args []string) error {
	usage := fs.Usage
	fs.Usage = func() {}
	defer func() { fs.Usage = usage }()
	return fs.Parse(args)
}

// oneSecretArg returns the single SECRET argument of a command.
func oneSecretArg(cmd string, positional []string) (string, error) {
	switch len(positional) {
	case 0:
		return "", cli.Usagef("%s: missing SECRET argument", cmd).
			WithHint("usage: rotator %s SECRET [flags]; run 'rotator help %s' for details", cmd, cmd)
	case 1:
		return positional[0], checkSecretArg(cmd, positional[0])
	}
	// The extra arguments are not echoed: a key pasted as an argument of
	// stage must not reach the terminal's scrollback a second time.
	err := cli.Usagef("%s: expected one SECRET argument, got %d arguments", cmd, len(positional))
	if cmd == "stage" {
		return "", err.WithHint("keys are never arguments: rotator stage reads them from --file or standard input")
	}
	return "", err.WithHint("%s works on one secret at a time: run it once for each secret", cmd)
}

// checkSecretArg applies the secret name rule of package keystore to a
// SECRET argument, so that a mistyped id is a usage error before any store
// is opened. An ARN, which the AWS store also accepts, is left to the
// store. The id is not echoed when it is long or has control characters,
// because it may be a pasted key.
func checkSecretArg(cmd, id string) error {
	if strings.TrimSpace(id) == "" {
		return cli.Usagef("%s: SECRET is empty: use 1 to %d letters, digits and %s", cmd, keystore.MaxSecretIDLen, keystore.SecretIDPunctuation)
	}
	if strings.HasPrefix(id, "arn:") {
		return nil
	}
	if len(id) > keystore.MaxSecretIDLen {
		return cli.Usagef("%s: SECRET is %d characters long: the maximum is %d", cmd, len(id), keystore.MaxSecretIDLen)
	}
	for i, r := range id {
		if !keystore.IsSecretIDRune(r) {
			return cli.Usagef("%s: invalid SECRET: character %q at byte %d is not allowed: use letters, digits and %s",
				cmd, r, i, keystore.SecretIDPunctuation)
		}
	}
	return nil
}

// newFlagSet returns a flag set whose Usage prints the command's help to
// stdout; parseArgs calls it for -h only.
func (a *app) newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {
		fmt.Fprint(a.stdout, strings.TrimLeft(usage, "\n"))
		fmt.Fprintln(a.stdout, "\nFlags:")
		var defaults strings.Builder
		fs.SetOutput(&defaults)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprint(a.stdout, wrapFlagUsage(defaults.String(), 80))
	}
	return fs
}

// wrapFlagUsage wraps the indented description lines of the flag
// package's PrintDefaults at width columns (a tab counts as 8), so that
// help reads well in an 80-column terminal.
func wrapFlagUsage(text string, width int) string {
	var b strings.Builder
	for line := range strings.Lines(text) {
		line = strings.TrimSuffix(line, "\n")
		indent, rest, ok := strings.Cut(line, "\t")
		if !ok || strings.TrimSpace(indent) != "" {
			b.WriteString(line + "\n")
			continue
		}
		col, limit := 0, width-len(indent)-8
		b.WriteString(indent + "\t")
		for i, word := range strings.Fields(rest) {
			if i > 0 && col+1+len(word) > limit {
				b.WriteString("\n" + indent + "\t")
				col = 0
			} else if i > 0 {
				b.WriteString(" ")
				col++
			}
			b.WriteString(word)
			col += len(word)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	*l = append(*l, v)
	return nil
}
