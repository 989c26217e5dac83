package cli

import (
	"io"
	"log/slog"
)

// ReplaceDurations writes time.Duration attributes as Go duration strings,
// such as "1.92ms", where a JSON handler would write integer nanoseconds.
// The text handler already writes them so. Pass it as
// slog.HandlerOptions.ReplaceAttr.
func ReplaceDurations(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindDuration {
		return slog.String(a.Key, a.Value.Duration().String())
	}
	return a
}

// NewLogger returns a logger that writes text lines to w when w is a
// terminal and JSON lines otherwise, for log collectors, at level and
// above, with durations as Go duration strings either way.
func NewLogger(w io.Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: ReplaceDurations}
	if IsTerminal(w) {
		return slog.New(slog.NewTextHandler(w, opts))
	}
	return slog.New(slog.NewJSONHandler(w, opts))
}
