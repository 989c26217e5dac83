package router

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
)

func TestBodyTooLargeWithoutLength(t *testing.T) {
	e := newTestEnv(t, envOptions{config: func(c *Config) { c.MaxRequestBytes = 100 }})
	body := `{"model":"gpt-4o","input":"` + strings.Repeat("x", 200) + `"}`
	// A reader of unknown length, so that the body is sent chunked.
	req, err := http.NewRequest("POST", e.url+"/v1/chat/completions", io.MultiReader(strings.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+e.clientKey)
	r := e.send(req)
	assertStatus(t, r, http.StatusRequestEntityTooLarge)
	assertContains(t, "body", r.body, "100 bytes")
}

func TestReadAllSizes(t *testing.T) {
	body := bytes.Repeat([]byte("0123456789"), 1000)
	cases := []struct {
		name          string
		r             io.Reader
		contentLength int64
	}{
		{"declared", bytes.NewReader(body), int64(len(body))},
		{"unknown", iotest.HalfReader(bytes.NewReader(body)), -1},
		{"declared too short", bytes.NewReader(body), 10},
		{"one byte at a time", iotest.OneByteReader(bytes.NewReader(body)), int64(len(body))},
	}
	for _, c := range cases {
		got, err := readAll(c.r, c.contentLength, 1<<20)
		if err != nil {
			t.Errorf("%s: readAll: %v", c.name, err)
			continue
		}
		if !bytes.Equal(got, body) {
			t.Errorf("%s: readAll returned %d bytes, want the %d sent", c.name, len(got), len(body))
		}
	}
}

func TestReadAllCapsDeclaredLength(t *testing.T) {
	// A declared length far above the limit must not size the buffer.
	got, err := readAll(strings.NewReader("{}"), 1<<40, 1024)
	if err != nil || string(got) != "{}" {
		t.Fatalf("readAll = %q, %v", got, err)
	}
	if c := cap(got); c > 1025 {
		t.Errorf("buffer capacity %d, want at most the limit plus one", c)
	}
}

func TestReadAllPassesError(t *testing.T) {
	r := io.MultiReader(strings.NewReader("{"), iotest.ErrReader(io.ErrUnexpectedEOF))
	if _, err := readAll(r, 10, 1024); err != io.ErrUnexpectedEOF {
		t.Errorf("readAll error = %v, want %v", err, io.ErrUnexpectedEOF)
	}
}

// BenchmarkReadBody measures what reading a 32 MiB body allocates (B/op
// against the body's size), with a declared length and without one, which
// is io.ReadAll's cost.
func BenchmarkReadBody(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 32<<20)
	for _, declared := range []bool{true, false} {
		name, contentLength := "declared", int64(len(body))
		if !declared {
			name, contentLength = "unknown", -1
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for range b.N {
				if _, err := readAll(bytes.NewReader(body), contentLength, 64<<20); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
