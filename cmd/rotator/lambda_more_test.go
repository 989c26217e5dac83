package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func TestLambdaInvokeTakesRawPayload(t *testing.T) {
	e := newEnv(t)
	h, _ := newTestHandler(t, e)
	for _, payload := range []string{"not json", "", `"retire"`, "[1]"} {
		_, err := h.Invoke(context.Background(), []byte(payload))
		ie, ok := err.(messages.InvokeResponse_Error)
		if !ok || ie.Type != errorTypeInvalidEvent {
			t.Errorf("payload %q: error %#v, want errorType %s", payload, err, errorTypeInvalidEvent)
		}
	}

	out, err := h.Invoke(context.Background(), []byte(`{"keyturn": "retire"}`))
	if err != nil {
		t.Fatalf("retire: %v", err)
	}
	var sum retireSummary
	if err := json.Unmarshal(out, &sum); err != nil {
		t.Errorf("retire result is not JSON: %v: %s", err, out)
	}
}

// TestLambdaStdLogIsJSON writes through the standard logger as
// aws-lambda-go v1.55.1 does when an invocation fails. The handler has
// logged that failure already, so the library's line is a DEBUG record,
// below the INFO the handler logs at.
func TestLambdaStdLogIsJSON(t *testing.T) {
	var out bytes.Buffer
	saved, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	defer func() { log.SetOutput(saved); log.SetFlags(flags); log.SetPrefix(prefix) }()
	log.SetFlags(log.LstdFlags)

	routeStdLog(slog.New(newLambdaLogHandler(func(string) string { return "" }, &out)))
	log.Printf("%s", `{"errorMessage":"stage app/openai: key rejected","errorType":"RotationRejected"}`)
	log.Print("WARNING! Failed to register internal extension!")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1:\n%s", len(lines), out.String())
	}
	var record map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &record); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, lines[0])
	}
	if record["level"] != "INFO" || record["message"] != "WARNING! Failed to register internal extension!" {
		t.Errorf("plain line record = %v", record)
	}
}

// TestLambdaLogsFailureWithRequestID checks that the handler logs a failed
// invocation once, with the invocation's requestId.
func TestLambdaLogsFailureWithRequestID(t *testing.T) {
	e := newEnv(t)
	h, _ := newTestHandler(t, e)
	var out bytes.Buffer
	h.logger = slog.New(newLambdaLogHandler(func(string) string { return "" }, &out))
	ctx := lambdacontext.NewContext(context.Background(), &lambdacontext.LambdaContext{AwsRequestID: "req-7"})
	if _, err := h.Invoke(ctx, []byte(`{"keyturn": "nap"}`)); err == nil {
		t.Fatal("an unknown action succeeded")
	}

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("got %d log lines, want 1:\n%s", len(lines), out.String())
	}
	var record map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &record); err != nil {
		t.Fatalf("log line is not JSON: %v: %s", err, lines[0])
	}
	for key, want := range map[string]string{
		"level": "ERROR", "message": "invocation failed", "errorType": errorTypeInvalidEvent, "requestId": "req-7",
	} {
		if record[key] != want {
			t.Errorf("failure record %s = %v, want %q", key, record[key], want)
		}
	}
	assertContains(t, "errorMessage", fmt.Sprint(record["errorMessage"]), `"nap"`)
}
