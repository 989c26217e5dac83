package upstream

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func filterAll(t *testing.T, r io.Reader) string {
	t.Helper()
	out, err := io.ReadAll(newUsageFilter(io.NopCloser(r)))
	if err != nil {
		t.Fatalf("read the filtered stream: %v", err)
	}
	return string(out)
}

func TestUsageFilterExactBytes(t *testing.T) {
	in := ": OPENROUTER PROCESSING\n\n" +
		"data: {\"usage\": null, \"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" +
		"data: {\"id\":\"c2\", \"usage\" : {\"total_tokens\": 3} ,\"choices\":[]  ,\"x\":1}\r\n\r\n" +
		"event: message\nid: 7\ndata: {\"id\":\"c3\",\"choices\":[{\"delta\":{}}],\"usage\":null}\n\n" +
		"data: {\"id\":\"c4\",\"choices\":[{\"delta\":{\"content\":\"the word \\\"usage\\\"\"}}]}\n\n" +
		"data: {\"id\":\"c5\",\"choices\":[{\"delta\":{}}], \"usage\":{\"total_tokens\":3}}\r\n\r\n" +
		"data: [DONE]\n\n" +
		"data: {\"usage\":1, \"tail\": true"
	want := ": OPENROUTER PROCESSING\n\n" +
		"data: {\"id\":\"c1\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n" +
		"event: message\nid: 7\ndata: {\"id\":\"c3\",\"choices\":[{\"delta\":{}}]}\n\n" +
		"data: {\"id\":\"c4\",\"choices\":[{\"delta\":{\"content\":\"the word \\\"usage\\\"\"}}]}\n\n" +
		"data: {\"id\":\"c5\",\"choices\":[{\"delta\":{}}]}\r\n\r\n" +
		"data: [DONE]\n\n" +
		"data: {\"usage\":1, \"tail\": true"

	readers := map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(in) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(in)) },
		"halves":   func() io.Reader { return iotest.HalfReader(strings.NewReader(in)) },
	}
	for name, r := range readers {
		if got := filterAll(t, r()); got != want {
			t.Errorf("%s: filtered stream =\n%q\nwant\n%q", name, got, want)
		}
	}
}

func TestUsageFilterLongLine(t *testing.T) {
	content := strings.Repeat("x", 5<<20)
	in := `data: {"choices":[{"delta":{"content":"` + content + `"}}],"usage":null}` + "\n\n" + "data: [DONE]\n\n"
	want := `data: {"choices":[{"delta":{"content":"` + content + `"}}]}` + "\n\n" + "data: [DONE]\n\n"
	if got := filterAll(t, iotest.HalfReader(strings.NewReader(in))); got != want {
		t.Errorf("a 5 MB event changed: %d bytes out, want %d", len(got), len(want))
	}
}

func TestUsageFilterReturnsEachEvent(t *testing.T) {
	r, w := io.Pipe()
	f := newUsageFilter(r)
	go func() { _, _ = io.WriteString(w, "data: {\"choices\":[]}\n\ndata: {\"a\"") }()
	buf := make([]byte, 100)
	n, err := f.Read(buf)
	if err != nil || string(buf[:n]) != "data: {\"choices\":[]}\n\n" {
		t.Errorf("Read = %q, %v; want the complete event before the next one ends", buf[:n], err)
	}
	_ = w.Close()
}

func TestRemoveMembers(t *testing.T) {
	cases := []struct{ in, want string }{
		{`{"usage":1}`, `{}`},
		{`{ "usage" : 1 , "a": 2}`, `{"a": 2}`},
		{`{"a":2,"usage":{"x":[1]}}`, `{"a":2}`},
		{`{"a":2, "usage":1 ,"b":3}`, `{"a":2 ,"b":3}`},
		{`{"usage":1,"a":2,"usage":3}`, `{"a":2}`},
		{`{"a":"usage"}`, `{"a":"usage"}`},
	}
	for _, c := range cases {
		members, err := objectMembers([]byte(c.in))
		if err != nil {
			t.Fatalf("objectMembers(%s): %v", c.in, err)
		}
		got, _ := removeMembers([]byte(c.in), members, "usage")
		if string(got) != c.want {
			t.Errorf("removeMembers(%s) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestObjectMembersOffsets(t *testing.T) {
	in := []byte("{ \"n\" : 12.5e3 ,\n\"s\":\"x\\\"y\", \"o\" : {\"k\": [1, 2]} , \"t\":true }")
	members, err := objectMembers(in)
	if err != nil {
		t.Fatalf("objectMembers: %v", err)
	}
	want := map[string]string{"n": "12.5e3", "s": `"x\"y"`, "o": `{"k": [1, 2]}`, "t": "true"}
	if len(members) != len(want) {
		t.Fatalf("%d members, want %d", len(members), len(want))
	}
	for _, m := range members {
		if got := string(m.value(in)); got != want[m.name] {
			t.Errorf("member %s = %q, want %q", m.name, got, want[m.name])
		}
	}
}

func TestGeminiKeyInvalidShapes(t *testing.T) {
	cases := []struct {
		body string
		want bool
	}{
		{`{"error":{"code":400,"details":[{"reason":"API_KEY_INVALID"}]}}`, true},
		{`[{"error":{"code":400,"details":[{"@type":"x"},{"reason":"API_KEY_INVALID"}]}}]`, true},
		{` [ {"error":{"details":[{"reason":"API_KEY_INVALID"}]}} ] `, true},
		{`{"error":{"code":400,"status":"INVALID_ARGUMENT","details":[{"reason":"OTHER"}]}}`, false},
		{`{"error":{"message":"API_KEY_INVALID"}}`, false},
		{`not json`, false},
	}
	for _, c := range cases {
		if got := isGeminiKeyInvalid([]byte(c.body)); got != c.want {
			t.Errorf("isGeminiKeyInvalid(%s) = %v, want %v", c.body, got, c.want)
		}
	}
}

func TestReplaceValueKeepsRest(t *testing.T) {
	in := []byte(`{"a":1, "model" :"pub","b":[2]}`)
	members, _ := objectMembers(in)
	for _, m := range members {
		if m.name == "model" {
			got := replaceValue(in, m, `up"stream<>`)
			want := `{"a":1, "model" :"up\"stream\u003c\u003e","b":[2]}`
			if !bytes.Equal(got, []byte(want)) {
				t.Errorf("replaceValue = %s, want %s", got, want)
			}
		}
	}
}
