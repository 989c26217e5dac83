package clientkeys

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"regexp"
	"strings"
	"testing"
)

func TestNewKey(t *testing.T) {
	key, hash, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	k := key.Reveal()
	if !strings.HasPrefix(k, Prefix) {
		t.Fatalf("key does not start with %s", Prefix)
	}
	raw, err := base64.RawURLEncoding.DecodeString(k[len(Prefix):])
	if err != nil {
		t.Fatalf("key is not unpadded base64url after its prefix: %v", err)
	}
	if len(raw) != 32 {
		t.Errorf("key carries %d random bytes, want 32", len(raw))
	}
	if hash != Hash(k) {
		t.Error("NewKey's hash differs from Hash(key)")
	}
	other, _, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if key.Equal(other) {
		t.Error("two calls of NewKey returned the same key")
	}
}

func TestHash(t *testing.T) {
	sum := sha256.Sum256([]byte("kt-example"))
	want := "sha256:" + hex.EncodeToString(sum[:])
	if got := Hash("kt-example"); got != want {
		t.Errorf("Hash = %s, want %s", got, want)
	}
	if !hashPattern.MatchString(Hash("")) {
		t.Error("Hash of the empty string does not match the hash pattern")
	}
}

func TestNewClientID(t *testing.T) {
	pattern := regexp.MustCompile(`^kc_[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		id, err := NewClientID()
		if err != nil {
			t.Fatal(err)
		}
		if !pattern.MatchString(id) {
			t.Fatalf("id %q does not match %s", id, pattern)
		}
		if err := checkID(id); err != nil {
			t.Fatalf("id %q fails the id check: %v", id, err)
		}
		if seen[id] {
			t.Fatalf("id %q returned twice", id)
		}
		seen[id] = true
	}
}

func TestEffectiveBurst(t *testing.T) {
	cases := []struct {
		rps   float64
		burst int
		want  int
	}{
		{rps: 0, burst: 0, want: 0},
		{rps: 0, burst: 5, want: 0},
		{rps: 0.5, burst: 0, want: 1},
		{rps: 2.5, burst: 0, want: 3},
		{rps: 5, burst: 10, want: 10},
	}
	for _, c := range cases {
		got := Client{RPS: c.rps, Burst: c.burst}.EffectiveBurst()
		if got != c.want {
			t.Errorf("rps %g, burst %d: EffectiveBurst() = %d, want %d", c.rps, c.burst, got, c.want)
		}
	}
}
