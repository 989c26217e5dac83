package keystore_test

import (
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func TestDescriptionPendingVersion(t *testing.T) {
	cases := []struct {
		name     string
		versions map[string][]string
		want     string
	}{
		{"no versions", nil, ""},
		{"current only", map[string][]string{"a": {keystore.StageCurrent}}, ""},
		{"pending on current", map[string][]string{"a": {keystore.StageCurrent, keystore.StagePending}}, ""},
		{"pending elsewhere", map[string][]string{
			"a": {keystore.StageCurrent},
			"b": {keystore.StagePending},
		}, "b"},
		{"pending without current", map[string][]string{"b": {keystore.StagePending}}, "b"},
		{"staged only", map[string][]string{
			"a": {keystore.StageCurrent},
			"c": {keystore.StageStaged},
		}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := keystore.Description{Versions: c.versions}
			if got := d.PendingVersion(); got != c.want {
				t.Errorf("PendingVersion() = %q, want %q", got, c.want)
			}
		})
	}
}
