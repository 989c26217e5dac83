package main

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"strings"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"

	"github.com/keyturn/keyturn/internal/cli"
)

// newLambdaLogHandler returns the rotation Lambda's log handler, which
// writes JSON records that carry the invocation's requestId.
// lambdacontext.NewLogHandler does so only when AWS_LAMBDA_LOG_FORMAT=JSON
// and writes text otherwise, so for any other format the records go through
// a JSON handler on stdout with the same keys (timestamp, message) instead.
// Lambda filters by AWS_LAMBDA_LOG_LEVEL only in its JSON format, so that
// handler logs at INFO and above. It writes durations as Go duration
// strings.
// NOTE: lambdacontext.NewLogHandler takes no ReplaceAttr, so in Lambda's
// JSON format durations stay integer nanoseconds.
func newLambdaLogHandler(getenv func(string) string, stdout io.Writer) slog.Handler {
	if getenv("AWS_LAMBDA_LOG_FORMAT") == "JSON" {
		return lambdacontext.NewLogHandler()
	}
	replace := func(groups []string, a slog.Attr) slog.Attr {
		return lambdacontext.ReplaceAttr(groups, cli.ReplaceDurations(groups, a))
	}
	json := slog.NewJSONHandler(stdout, &slog.HandlerOptions{ReplaceAttr: replace})
	return requestIDHandler{json}
}

// requestIDHandler adds the requestId of the Lambda context, if any, to
// each record.
type requestIDHandler struct{ slog.Handler }

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		r.AddAttrs(slog.String("requestId", lc.AwsRequestID))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(attrs)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// routeStdLog sends the lines of the standard library's log package through
// logger, so that every line the Lambda writes is a JSON record.
// aws-lambda-go v1.55.1 writes its own lines with that package, such as
// the {"errorMessage": …, "errorType": …} of every failed invocation,
// which it writes without the invocation's context.
func routeStdLog(logger *slog.Logger) {
	log.SetFlags(0)
	log.SetPrefix("")
	log.SetOutput(stdLogWriter{logger})
}

// stdLogWriter turns each line of the log package into a record: a failed
// invocation's error payload into a DEBUG record, because the handler has
// already logged that failure with its requestId, and any other line into
// an INFO record.
type stdLogWriter struct{ logger *slog.Logger }

func (w stdLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimRight(string(p), "\n")
	var payload messages.InvokeResponse_Error
	if json.Unmarshal([]byte(line), &payload) == nil && payload.Type != "" {
		w.logger.Debug("aws-lambda-go reported the failed invocation", "errorType", payload.Type, "source", "aws-lambda-go")
		return len(p), nil
	}
	w.logger.Info(line, "source", "aws-lambda-go")
	return len(p), nil
}
