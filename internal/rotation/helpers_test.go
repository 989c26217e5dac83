package rotation_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// canary starts every key the tests plant or mint, so that a key reaching a
// log line or an error is found.
const canary = "CANARY-"

// testDeadline fails a hang; no test waits anywhere near it.
const testDeadline = 20 * time.Second

// env is one test's world: a file store, the stand-in provider and an
// engine wired to both, with every log line captured.
type env struct {
	t      *testing.T
	dir    string
	store  *keystore.FileStore
	prov   *fakeprovider.Provider
	url    string
	engine *rotation.Engine
	logs   *syncBuffer
	now    time.Time
}

// syncBuffer is a bytes.Buffer safe for the concurrent writers of several
// loggers.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newEnv builds a test's world. Each of configure may change the stand-in
// provider's options.
func newEnv(t *testing.T, configure ...func(*fakeprovider.Options)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), logs: &syncBuffer{}}
	e.now = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))

	opts := fakeprovider.Options{Logger: logger, KeyPrefix: "sk-or-v1-" + canary}
	for _, f := range configure {
		f(&opts)
	}
	e.prov, e.url = fakeprovider.Start(t, opts)
	e.store = e.openStore(logger)
	e.engine = &rotation.Engine{
		Store:   e.store,
		Checker: newChecker(logger, 0),
		Issuers: map[string]issuer.Issuer{"dev": issuer.NewDev(e.url+"/openrouter/api/v1", nil)},
		Logger:  logger,
		Now:     func() time.Time { return e.now },
	}
	t.Cleanup(func() {
		if strings.Contains(e.logs.String(), canary) {
			t.Errorf("a key reached the logs")
		}
	})
	return e
}

func (e *env) openStore(logger *slog.Logger) *keystore.FileStore {
	e.t.Helper()
	s, err := keystore.OpenFile(keystore.FileOptions{Dir: e.dir, Create: true, Logger: logger})
	if err != nil {
		e.t.Fatalf("OpenFile: %v", err)
	}
	e.t.Cleanup(func() { _ = s.Close() })
	return s
}

// newChecker returns the real provider checker, allowing the stand-in's
// loopback address. A callTimeout of 0 keeps the default.
func newChecker(logger *slog.Logger, callTimeout time.Duration) provider.Checker {
	return provider.New(provider.Options{
		Policy:      provider.NewPolicy(nil, true),
		CallTimeout: callTimeout,
		Margin:      200 * time.Millisecond,
		Logger:      logger,
	})
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	t.Cleanup(cancel)
	return ctx
}

// tags returns the settings tags of a secret served by the stand-in under
// shape (openai, anthropic, gemini, openrouter), plus extra.
func (e *env) tags(shape string, extra ...string) map[string]string {
	roots := map[string]string{
		"openai": "/openai/v1", "anthropic": "/anthropic/v1",
		"gemini": "/gemini/v1beta", "openrouter": "/openrouter/api/v1",
	}
	tags := map[string]string{
		keystore.TagProvider: shape,
		keystore.TagBaseURL:  e.url + roots[shape],
		keystore.TagGrace:    "2h",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		tags[extra[i]] = extra[i+1]
	}
	return tags
}

// addSecret creates a secret with rotation enabled and, unless currentKey is
// empty, a first AWSCURRENT version holding currentKey as key_id "key_old".
// It returns the current version's id.
func (e *env) addSecret(id string, tags map[string]string, currentKey string) string {
	e.t.Helper()
	ctx := ctxFor(e.t)
	in := keystore.CreateInput{SecretID: id, Tags: tags}
	if currentKey != "" {
		settings, err := keystore.SettingsFromTags(tags)
		if err != nil {
			e.t.Fatalf("settings: %v", err)
		}
		in.Value = encode(e.t, keystore.Value{
			APIKey: keystore.NewSecret(currentKey), KeyID: "key_old",
			CreatedAt: e.now.Add(-time.Hour), Settings: settings,
		})
		in.Token = "00000000-0000-4000-8000-000000000001"
	}
	if _, err := e.store.Create(ctx, in); err != nil {
		e.t.Fatalf("Create %s: %v", id, err)
	}
	e.enable(id)
	return in.Token
}

func (e *env) enable(id string) {
	e.t.Helper()
	err := e.store.SetRotation(ctxFor(e.t), id, keystore.Rotation{
		Enabled: true, Rules: keystore.RotationRules{AutomaticallyAfterDays: 30},
	})
	if err != nil {
		e.t.Fatalf("SetRotation %s: %v", id, err)
	}
}

// stage stages key on secret id without validation.
func (e *env) stage(id, key string) string {
	e.t.Helper()
	v := keystore.Value{APIKey: keystore.NewSecret(key)}
	version, err := e.engine.Stage(ctxFor(e.t), id, v, false)
	if err != nil {
		e.t.Fatalf("Stage: %v", err)
	}
	return version
}

func encode(t *testing.T, v keystore.Value) keystore.Secret {
	t.Helper()
	s, err := v.Encode()
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	return s
}

// value reads and parses the version of id that ref selects.
func (e *env) value(id string, ref keystore.Ref) (keystore.Version, keystore.Value) {
	e.t.Helper()
	ver, err := e.store.Get(ctxFor(e.t), id, ref)
	if err != nil {
		e.t.Fatalf("Get %s %+v: %v", id, ref, err)
	}
	v, err := keystore.ParseValue(ver.Value)
	if err != nil {
		e.t.Fatalf("ParseValue %s version %s: %v", id, ver.VersionID, err)
	}
	return ver, v
}

func (e *env) describe(id string) keystore.Description {
	e.t.Helper()
	d, err := e.store.Describe(ctxFor(e.t), id)
	if err != nil {
		e.t.Fatalf("Describe %s: %v", id, err)
	}
	return d
}

// holder returns the version of id that holds stage, or "".
func (e *env) holder(id, stage string) string {
	return e.describe(id).VersionWithStage(stage)
}

// hasKey reports whether the version of id that ref selects holds key.
func (e *env) hasKey(id string, ref keystore.Ref, key string) bool {
	_, v := e.value(id, ref)
	return v.APIKey.Equal(keystore.NewSecret(key))
}

// snapshot is everything about a secret: its description and the value of
// every version that has one.
type snapshot struct {
	desc   keystore.Description
	values map[string]keystore.Secret
}

func (e *env) snapshot(id string) snapshot {
	e.t.Helper()
	s := snapshot{desc: e.describe(id), values: map[string]keystore.Secret{}}
	for version := range s.desc.Versions {
		ver, err := e.store.Get(ctxFor(e.t), id, keystore.ByVersion(version))
		if errors.Is(err, keystore.ErrNotFound) {
			continue
		}
		if err != nil {
			e.t.Fatalf("Get %s version %s: %v", id, version, err)
		}
		s.values[version] = ver.Value
	}
	return s
}

// sameSnapshot reports how two snapshots differ, without printing values.
func sameSnapshot(t *testing.T, what string, before, after snapshot) {
	t.Helper()
	if !equalDescriptions(before.desc, after.desc) {
		t.Errorf("%s: description changed:\nbefore %+v\nafter  %+v", what, before.desc, after.desc)
	}
	if !slices.Equal(slices.Sorted(maps.Keys(before.values)), slices.Sorted(maps.Keys(after.values))) {
		t.Errorf("%s: the set of versions with values changed", what)
	}
	for version, v := range before.values {
		if w, ok := after.values[version]; ok && !v.Equal(w) {
			t.Errorf("%s: value of version %s changed", what, version)
		}
	}
}

func equalDescriptions(a, b keystore.Description) bool {
	if !maps.Equal(a.Tags, b.Tags) || len(a.Versions) != len(b.Versions) {
		return false
	}
	for id, stages := range a.Versions {
		if !slices.Equal(slices.Sorted(slices.Values(stages)), slices.Sorted(slices.Values(b.Versions[id]))) {
			return false
		}
	}
	return a.Rotation == b.Rotation && a.LastRotated.Equal(b.LastRotated) &&
		a.LastChanged.Equal(b.LastChanged) && a.SecretID == b.SecretID
}

// noCanary fails if err's text carries a key.
func noCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), canary) {
		t.Errorf("error text carries a key")
	}
}

// gatedChecker holds the first Check until release is closed.
type gatedChecker struct {
	next    provider.Checker
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

func (g *gatedChecker) Check(ctx context.Context, req provider.Request) provider.Result {
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return g.next.Check(ctx, req)
}
