package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log"
	"log/slog"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
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
// aws-lambda-go v1.55.1 does when an invocation fails.
func TestLambdaStdLogIsJSON(t *testing.T) {
	var out bytes.Buffer
	saved, flags, prefix := log.Writer(), log.Flags(), log.Prefix()
	defer func() { log.SetOutput(saved); log.SetFlags(flags); log.SetPrefix(prefix) }()
	log.SetFlags(log.LstdFlags)

	routeStdLog(slog.New(newLambdaLogHandler(func(string) string { return "" }, &out)))
	log.Printf("%s", `{"errorMessage":"stage app/openai: key rejected","errorType":"RotationRejected"}`)
	log.Print("WARNING! Failed to register internal extension!")

	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d log lines, want 2:\n%s", len(lines), out.String())
	}
	var records []map[string]any
	for _, line := range lines {
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		records = append(records, r)
	}
	for key, want := range map[string]string{
		"level": "ERROR", "message": "invocation failed", "errorType": "RotationRejected",
		"errorMessage": "stage app/openai: key rejected",
	} {
		if records[0][key] != want {
			t.Errorf("error record %s = %v, want %q", key, records[0][key], want)
		}
	}
	if records[1]["level"] != "INFO" || records[1]["message"] != "WARNING! Failed to register internal extension!" {
		t.Errorf("plain line record = %v", records[1])
	}
}
