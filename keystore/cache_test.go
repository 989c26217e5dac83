package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// cacheCanary is a planted key that no log line or error may contain.
const cacheCanary = "sk-cache-canary-7e1d94b2c05a"

const (
	cacheSecret = "keyturn/cache/openai"
	// hangDeadline only fails a test that hangs; no test expects to wait
	// anywhere near this long.
	hangDeadline = 10 * time.Second
)

// errStoreDown is the cause behind the failures that testStore injects.
var errStoreDown = errors.New("test store is down")

// testStore wraps a real store so a test can make its reads fail, block,
// and count them.
type testStore struct {
	keystore.Store

	gets atomic.Int64
	// entered receives the stage of every read that blocks.
	entered chan string

	mu   sync.Mutex
	err  error
	gate *storeGate
	// gateStage limits blocking to reads of one stage; empty blocks all.
	gateStage string
}

// storeGate holds reads until open is closed, and then fails them with err
// if it is set.
type storeGate struct {
	open chan struct{}
	err  error
}

func newTestStore(inner keystore.Store) *testStore {
	return &testStore{Store: inner, entered: make(chan string, 64)}
}

// Get reads from the inner store, then blocks while the gate is closed,
// then fails if a failure is set. Blocking after the read lets a test hold
// a fetch that has already read an old value.
func (s *testStore) Get(ctx context.Context, secretID string, ref keystore.Ref) (keystore.Version, error) {
	s.gets.Add(1)
	v, err := s.Store.Get(ctx, secretID, ref)
	s.mu.Lock()
	gate, fail := s.gate, s.err
	if s.gateStage != "" && s.gateStage != ref.Stage {
		gate = nil
	}
	s.mu.Unlock()
	if gate != nil {
		s.entered <- ref.Stage
		select {
		case <-gate.open:
		case <-ctx.Done():
			return keystore.Version{}, &keystore.Error{Op: "GetSecretValue", SecretID: secretID,
				Kind: keystore.ErrUnavailable, Msg: "test store read cancelled", Err: ctx.Err()}
		}
		if gate.err != nil {
			return keystore.Version{}, gate.err
		}
	}
	if fail != nil {
		return keystore.Version{}, fail
	}
	return v, err
}

// block makes reads wait until release.
func (s *testStore) block() { s.blockStage("") }

// blockStage makes reads of stage wait until release.
func (s *testStore) blockStage(stage string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = &storeGate{open: make(chan struct{})}
	s.gateStage = stage
}

// release lets the blocked reads return what they read.
func (s *testStore) release() { s.releaseFailing(nil) }

// releaseFailing makes the blocked reads fail with err; later reads pass.
func (s *testStore) releaseFailing(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate.err = err
	close(s.gate.open)
	s.gate = nil
}

// fail makes reads fail with ErrUnavailable until recover.
func (s *testStore) fail() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = &keystore.Error{Op: "GetSecretValue", SecretID: cacheSecret, Kind: keystore.ErrUnavailable,
		Msg: "injected failure", Err: errStoreDown}
}

func (s *testStore) recover() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.err = nil
}

// waitEntered waits for a blocked read of stage.
func (s *testStore) waitEntered(t *testing.T, stage string) {
	t.Helper()
	select {
	case got := <-s.entered:
		if got != stage {
			t.Fatalf("blocked read of stage %q, want %q", got, stage)
		}
	case <-time.After(hangDeadline):
		t.Fatalf("no read of stage %s reached the store", stage)
	}
}

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// logBuffer collects log output from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// count returns the number of lines that contain every one of parts.
func (b *logBuffer) count(parts ...string) int {
	n := 0
	for line := range strings.Lines(b.String()) {
		if containsAll(line, parts) {
			n++
		}
	}
	return n
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// cacheFixture is a cache over a testStore on a real file store, with a
// fake clock, a captured log and a secret of two versions.
type cacheFixture struct {
	store     *testStore
	fileStore keystore.Store
	clock     *fakeClock
	log       *logBuffer
	cache     *keystore.Cache
	cacheOpts keystore.CacheOptions
	// v1 is the AWSPREVIOUS version and v2 the AWSCURRENT one.
	v1, v2         string
	value1, value2 string
}

// newCacheFixture opens a file store in a temporary directory and a cache
// on it. opts may change the options before the cache is made.
func newCacheFixture(t *testing.T, opts func(*keystore.CacheOptions)) *cacheFixture {
	t.Helper()
	fs, err := keystore.OpenFile(keystore.FileOptions{Dir: t.TempDir(), Create: true})
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	t.Cleanup(func() { fs.Close() })
	f := &cacheFixture{store: newTestStore(fs), clock: newFakeClock(), log: &logBuffer{}, fileStore: fs}
	f.value1 = `{"api_key":"` + cacheCanary + `-1"}`
	f.value2 = `{"api_key":"` + cacheCanary + `-2"}`
	f.v1 = mustCreate(t, fs, cacheSecret, f.value1)
	f.v2 = mustPut(t, fs, cacheSecret, f.value2)

	f.cacheOpts = keystore.CacheOptions{
		RefreshInterval: 5 * time.Minute,
		MaxStale:        time.Hour,
		Jitter:          -1,
		Logger:          slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:             f.clock.Now,
	}
	if opts != nil {
		opts(&f.cacheOpts)
	}
	f.cache, err = keystore.NewCache(f.store, f.cacheOpts)
	if err != nil {
		t.Fatalf("NewCache: %v", err)
	}
	t.Cleanup(func() {
		f.cache.Close()
		waitNoCacheGoroutines(t)
		if strings.Contains(f.log.String(), cacheCanary) {
			t.Errorf("the log contains the planted key")
		}
	})
	return f
}

// get reads the secret and fails the test on an error.
func (f *cacheFixture) get(t *testing.T) keystore.Keys {
	t.Helper()
	k, err := f.cache.Get(context.Background(), cacheSecret)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	return k
}

// status returns the cache status of the secret.
func (f *cacheFixture) status(t *testing.T) keystore.CacheStatus {
	t.Helper()
	st, ok := f.cache.Status(cacheSecret)
	if !ok {
		t.Fatalf("Status(%s) reports the secret was never read", cacheSecret)
	}
	return st
}

// waitStatus waits until the status satisfies done, for a fetch that
// lands in the background.
func (f *cacheFixture) waitStatus(t *testing.T, what string, done func(keystore.CacheStatus) bool) keystore.CacheStatus {
	t.Helper()
	deadline := time.Now().Add(hangDeadline)
	for {
		st := f.status(t)
		if done(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: status is %+v", what, st)
		}
		time.Sleep(time.Millisecond)
	}
}

// putVersion writes a new AWSCURRENT version straight to the file store,
// as a rotation does, and returns its id.
func (f *cacheFixture) putVersion(t *testing.T, value string) string {
	t.Helper()
	return mustPut(t, f.fileStore, cacheSecret, value)
}

// wantCurrent checks that k serves version id with value.
func wantCurrent(t *testing.T, k keystore.Keys, id, value string) {
	t.Helper()
	if k.Current.VersionID != id {
		t.Errorf("Current.VersionID = %s, want %s", k.Current.VersionID, id)
	}
	if k.Current.Value.Reveal() != value {
		t.Errorf("Current.Value of version %s is not the value written", id)
	}
}

// checkNoCanary fails if err mentions the planted key.
func checkNoCanary(t *testing.T, err error) {
	t.Helper()
	if err != nil && strings.Contains(err.Error(), cacheCanary) {
		t.Errorf("error contains the planted key")
	}
}

// cacheGoroutines returns the stacks of goroutines running cache code.
func cacheGoroutines() []string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var found []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "keystore.(*Cache)") {
			found = append(found, g)
		}
	}
	return found
}

// waitNoCacheGoroutines fails if cache goroutines outlive the deadline.
func waitNoCacheGoroutines(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(hangDeadline)
	for {
		left := cacheGoroutines()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d cache goroutines still run after Close:\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(time.Millisecond)
	}
}
