// Package cli holds what keyturn's commands share on the command line:
// errors that carry an exit code and hints, their printing on stderr as
// `PROG: error:` and `PROG: hint:` lines, the handling of SIGINT, SIGTERM
// and SIGHUP that stops a command, and the log format of long-running
// commands.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit codes that every keyturn command shares. A command adds its own
// from 3 up.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
	// ExitInterrupted is 128+SIGINT, the shell's code for a command that
	// Ctrl-C stopped; SIGTERM gives 128+15 = 143 the same way.
	ExitInterrupted = 130
)

// Error is an error with an exit code and hints for the user.
type Error struct {
	Code  int
	Err   error
	Hints []string
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// WithHint adds a hint line, formatted as fmt.Sprintf does, and returns e.
func (e *Error) WithHint(format string, args ...any) *Error {
	e.Hints = append(e.Hints, fmt.Sprintf(format, args...))
	return e
}

// Usagef returns a usage error, which exits with ExitUsage.
func Usagef(format string, args ...any) *Error {
	return &Error{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// Errorf returns an error that exits with ExitError.
func Errorf(format string, args ...any) *Error {
	return &Error{Code: ExitError, Err: fmt.Errorf(format, args...)}
}

// WithCode returns the first *Error in err's chain, which keeps the code
// and hints it has, or else err with the given code.
func WithCode(code int, err error) *Error {
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Code: code, Err: err}
}

// Report prints err, if any, to stderr as `PROG: error:` and `PROG: hint:`
// lines, and returns its exit code: ExitOK for nil and flag.ErrHelp, the
// code of the first *Error in its chain, else ExitError. The error line
// is that *Error's own message, without what wraps it.
func Report(prog string, err error, stderr io.Writer) int {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	ce := WithCode(ExitError, err)
	fmt.Fprintf(stderr, "%s: error: %s\n", prog, ce.Err)
	for _, h := range ce.Hints {
		fmt.Fprintf(stderr, "%s: hint: %s\n", prog, h)
	}
	return ce.Code
}
