package yamlcfg

import (
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestSyntaxErrorNamesLine(t *testing.T) {
	var doc yaml.Node
	err := yaml.Unmarshal([]byte("a: [\n"), &doc)
	if err == nil {
		t.Fatal("no syntax error")
	}
	got := FileError("c.yaml", SyntaxError(err)).Error()
	if want := "config file c.yaml line 1: invalid YAML: did not find expected node content"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestKind(t *testing.T) {
	tests := map[string]string{
		"[1]": "a list", "{a: 1}": "a set of keys", "12": "a number", "1.5": "a number",
		"true": "true or false", "2024-01-02": "a date", "~": "nothing", "x": "text", "!custom x": "a value",
	}
	for src, want := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(src), &doc); err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if got := Kind(doc.Content[0]); got != want {
			t.Errorf("Kind(%s) = %q, want %q", src, got, want)
		}
	}
}

func TestHostList(t *testing.T) {
	tests := []struct {
		src, want string
	}{
		{"h: {a: b}", "line 1: h must be a list of host names, such as [relay.example.com], not a set of keys"},
		{"h:\n  - a\n  - [b]", "line 3: each entry of h must be a host name, not a list"},
		{"h: 12", "line 1: h must be text, such as relay.example.com, not a number"},
	}
	for _, tt := range tests {
		var doc yaml.Node
		if err := yaml.Unmarshal([]byte(tt.src), &doc); err != nil {
			t.Fatalf("%q: %v", tt.src, err)
		}
		_, err := HostList("h", doc.Content[0].Content[1])
		if err == nil || err.Error() != tt.want {
			t.Errorf("%q: err = %v, want %q", tt.src, err, tt.want)
		}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte("h: a.example.com,b.example.com"), &doc); err != nil {
		t.Fatal(err)
	}
	hosts, err := HostList("h", doc.Content[0].Content[1])
	if err != nil || len(hosts) != 2 {
		t.Errorf("comma-separated: hosts %q, err %v", hosts, err)
	}
}
