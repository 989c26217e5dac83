package upstream

import (
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func filterAll(t *testing.T, r io.Reader) string {
	t.Helper()
	out, err := io.ReadAll(newUsageFilter(io.NopCloser(r), nil))
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

func TestUsageFilterPassesOverlongEvent(t *testing.T) {
	first := "data: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n"
	// No blank line ever comes, so the second event outgrows the limit.
	endless := "data: {\"usage\":1, \"x\": \"" + strings.Repeat("y", 200)
	later := "\n\ndata: {\"choices\":[],\"usage\":{\"total_tokens\":3}}\n\n"
	overflows := 0
	f := newUsageFilter(io.NopCloser(iotest.OneByteReader(strings.NewReader(first+endless+later))), func() { overflows++ })
	f.limit = 100
	out, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read the filtered stream: %v", err)
	}
	if want := endless + later; string(out) != want {
		t.Errorf("filtered stream =\n%q\nwant the first event dropped and the rest unchanged:\n%q", out, want)
	}
	if overflows != 1 {
		t.Errorf("onOverflow called %d times, want 1", overflows)
	}
}

func TestUsageFilterReturnsEachEvent(t *testing.T) {
	r, w := io.Pipe()
	f := newUsageFilter(r, nil)
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
		name := string(in[m.nameStart:m.nameEnd])
		if got := string(m.value(in)); got != want[name] {
			t.Errorf("member %s = %q, want %q", name, got, want[name])
		}
	}
}

func TestMemberNameIsDecodesEscapes(t *testing.T) {
	in := []byte(`{"mod\u0065l": 1, "m\\odel": 2, "MODEL": 3, "model\u00e9": 4, "\/model": 5, "model": 6}`)
	members, err := objectMembers(in)
	if err != nil {
		t.Fatalf("objectMembers: %v", err)
	}
	want := []bool{true, false, false, false, false, true}
	for i, m := range members {
		if got := m.nameIs(in, "model"); got != want[i] {
			t.Errorf("member %s: nameIs(model) = %v, want %v", in[m.nameStart:m.nameEnd], got, want[i])
		}
	}
	if !members[4].nameIs(in, "/model") {
		t.Errorf(`member \/model: nameIs("/model") = false, want true`)
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

func TestWithModelKeepsRest(t *testing.T) {
	b, err := ParseBody([]byte(`{"a":1, "model" :"pub","b":[2]}`))
	if err != nil {
		t.Fatalf("ParseBody: %v", err)
	}
	out := b.withModel(`up"stream<>`)
	got, err := io.ReadAll(out.reader())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a":1, "model" :"up\"stream\u003c\u003e","b":[2]}`
	if string(got) != want {
		t.Errorf("body = %s, want %s", got, want)
	}
	if out.len() != len(want) {
		t.Errorf("len = %d, want %d", out.len(), len(want))
	}
}
