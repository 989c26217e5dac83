package upstream

import (
	"context"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// noKeys is a KeySource that the memoisation tests never call.
type noKeys struct{}

func (noKeys) Get(context.Context, string) (keystore.Keys, error)     { return keystore.Keys{}, nil }
func (noKeys) Refresh(context.Context, string) (keystore.Keys, error) { return keystore.Keys{}, nil }

func testVersion(id string) keystore.Version {
	return keystore.Version{SecretID: "s", VersionID: id, Value: keystore.NewSecret(
		`{"api_key":"k-` + id + `","settings":{"provider":"openai","base_url":"https://api.openai.com/v1"}}`)}
}

func TestResolveParsesOnce(t *testing.T) {
	p, err := New(Options{Keys: noKeys{}, Policy: provider.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	s := p.versionsOf("s")
	a, _ := p.resolve(s, keystore.Keys{Current: testVersion("a")})
	if a.unusable != nil {
		t.Fatalf("version a is unusable: %s", a.unusable)
	}
	if again, _ := p.resolve(s, keystore.Keys{Current: testVersion("a")}); again != a {
		t.Error("a second read of AWSCURRENT parsed the version again")
	}

	// A rotation: a becomes AWSPREVIOUS and keeps its parse and health.
	a.startCooldown(time.Now(), time.Hour)
	b, moved := p.resolve(s, keystore.Keys{Current: testVersion("b"), Previous: testVersion("a")})
	if moved != a {
		t.Error("version a was parsed again when it became AWSPREVIOUS")
	}
	if !b.healthy(time.Now()) {
		t.Error("a new version starts in a cooldown")
	}
	if a.healthy(time.Now()) {
		t.Error("version a lost its cooldown when it became AWSPREVIOUS")
	}
	if again, _ := p.resolve(s, keystore.Keys{Current: testVersion("b"), Previous: testVersion("a")}); again != b {
		t.Error("a second read after the rotation parsed AWSCURRENT again")
	}
}

// A request still holding the keys it read before a refresh resolves after
// one that read the refreshed keys: the newer version keeps its cooldown.
func TestResolveOlderKeysKeepNewerHealth(t *testing.T) {
	p, err := New(Options{Keys: noKeys{}, Policy: provider.DefaultPolicy()})
	if err != nil {
		t.Fatal(err)
	}
	s := p.versionsOf("s")
	fetched := time.Now()
	oldKeys := keystore.Keys{Current: testVersion("v1"), Previous: testVersion("v0"), Fetched: fetched}
	newKeys := keystore.Keys{Current: testVersion("v2"), Previous: testVersion("v1"), Fetched: fetched.Add(time.Minute)}

	v2, v1 := p.resolve(s, newKeys)
	v2.startCooldown(time.Now(), time.Hour)
	oldCurrent, _ := p.resolve(s, oldKeys)
	if oldCurrent != v1 {
		t.Error("the older keys' AWSCURRENT, v1, was parsed again")
	}

	again, _ := p.resolve(s, newKeys)
	if again != v2 {
		t.Error("v2 was parsed again after a request with older keys")
	}
	if again.healthy(time.Now()) {
		t.Error("v2 lost its cooldown to a request with older keys")
	}
	if _, ok := s.set.Load().byID["v0"]; ok {
		t.Error("the older keys' v0 was added to the versions the newest keys serve")
	}
}
