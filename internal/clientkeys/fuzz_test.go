package clientkeys

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse never panics, and that whatever it accepts
// Encode writes back in a form Parse accepts again, unchanged.
func FuzzParse(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil {
		f.Fatal(err)
	}
	for _, path := range seeds {
		data, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"clients":[]}`))
	f.Add([]byte(`{"clients":[{"id":"kc_a","hash":"` + hashA + `","x":1}],"y":[1,2]}`))
	f.Add([]byte(`{"clients":[{"id":"kc_a","id":"kc_b"}]}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Parse(data)
		if err != nil {
			return
		}
		out, err := l.Encode()
		if err != nil {
			t.Fatalf("Encode of a parsed list failed: %v", err)
		}
		again, err := Parse(out)
		if err != nil {
			t.Fatalf("Parse(Encode()) failed: %v\n%s", err, out)
		}
		out2, err := again.Encode()
		if err != nil {
			t.Fatalf("second Encode failed: %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("Encode is not stable:\n%s\n%s", out, out2)
		}
	})
}
