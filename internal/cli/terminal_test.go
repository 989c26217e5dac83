package cli

import (
	"bytes"
	"os"
	"testing"
)

func TestIsTerminalRejectsNonTerminals(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	pw.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	for name, stream := range map[string]any{"pipe": pr, os.DevNull: null, "buffer": &bytes.Buffer{}} {
		if IsTerminal(stream) {
			t.Errorf("IsTerminal(%s) = true", name)
		}
	}
}
