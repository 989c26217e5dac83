package fakeprovider_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

// TestLogLevels checks that requests log at DEBUG, so that a logger at INFO
// receives only the lines about minted and revoked keys.
func TestLogLevels(t *testing.T) {
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	p, url := fakeprovider.Start(t, fakeprovider.Options{Logger: logger})
	p.AddManagementKey(mgmtKey)
	mgmt := []string{"Authorization", "Bearer " + mgmtKey}

	minted := call(t, "POST", url+"/openrouter/api/v1/keys", `{"name":"log test"}`, mgmt...).json(t)
	hash := minted["data"].(map[string]any)["hash"].(string)
	call(t, "GET", url+"/openai/v1/models", "", "Authorization", "Bearer "+minted["key"].(string))
	call(t, "DELETE", url+"/openrouter/api/v1/keys/"+hash, "", mgmt...)

	levels := map[string][]string{}
	for line := range strings.Lines(logs.String()) {
		var record struct {
			Level string `json:"level"`
			Msg   string `json:"msg"`
			Hash  string `json:"hash"`
		}
		if err := json.Unmarshal([]byte(line), &record); err != nil {
			t.Fatalf("log line is not JSON: %v: %s", err, line)
		}
		levels[record.Msg] = append(levels[record.Msg], record.Level)
		if strings.HasSuffix(record.Msg, "a key") && record.Hash != hash {
			t.Errorf("%q names hash %q, want %q", record.Msg, record.Hash, hash)
		}
	}
	for msg, want := range map[string]string{
		"fakeprovider minted a key":  "INFO",
		"fakeprovider revoked a key": "INFO",
		"fakeprovider request":       "DEBUG DEBUG DEBUG",
	} {
		if got := strings.Join(levels[msg], " "); got != want {
			t.Errorf("levels of %q = %q, want %q", msg, got, want)
		}
	}
	if strings.Contains(logs.String(), minted["key"].(string)) {
		t.Errorf("the log carries the minted key")
	}
}
