package rotation_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// defaultStaleAfter is the StaleAfter of an engine that sets neither
// RotationTimeout nor StaleAfter.
const defaultStaleAfter = 2 * (rotation.DefaultRotationTimeout + 10*time.Second)

// crash leaves a rotation of id as a rotator that stopped mid-rotation
// would: BeginRotation, then the given steps. It returns the token.
func (e *env) crash(id string, steps ...rotation.Step) string {
	e.t.Helper()
	ctx := ctxFor(e.t)
	token, err := e.store.BeginRotation(ctx, id, "")
	if err != nil {
		e.t.Fatalf("BeginRotation: %v", err)
	}
	for _, step := range steps {
		if err := e.engine.Run(ctx, step, id, token); err != nil {
			e.t.Fatalf("%s: %v", step, err)
		}
	}
	return token
}

// age moves the engine's clock to d after the store's current time. The
// store stamps versions with the wall clock, so the engine's clock is set
// from it.
func (e *env) age(d time.Duration) {
	e.now = time.Now().UTC().Add(d)
}

// revokes counts the DELETE requests the stand-in served for minted keys.
func (e *env) revokes() int {
	n := 0
	for _, r := range e.prov.Requests() {
		if r.Method == http.MethodDelete && strings.HasPrefix(r.Path, "/openrouter/api/v1/keys/") {
			n++
		}
	}
	return n
}

func TestResumeAfterCreateSecret(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	stale := e.crash("app/openrouter", rotation.CreateSecret)
	e.age(defaultStaleAfter + time.Minute)

	res, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	if res.Outcome != rotation.Promoted {
		t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Promoted)
	}
	if res.ResumedFrom != stale {
		t.Errorf("ResumedFrom = %q, want the stale token %s", res.ResumedFrom, stale)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 {
		t.Fatalf("%d keys minted, want the one the stopped rotation minted", len(minted))
	}
	if minted[0].Deleted {
		t.Errorf("the resumed key was revoked")
	}
	if want := "keyturn/app/openrouter/" + stale; minted[0].Name != want {
		t.Errorf("minted key name = %q, want %q", minted[0].Name, want)
	}
	ver, v := e.value("app/openrouter", keystore.Current())
	if v.KeyID != minted[0].Hash {
		t.Errorf("AWSCURRENT key_id = %q, want the stale rotation's key %q", v.KeyID, minted[0].Hash)
	}
	if ver.VersionID != res.VersionID {
		t.Errorf("AWSCURRENT on %s, want the resumed rotation's %s", ver.VersionID, res.VersionID)
	}
	d := e.describe("app/openrouter")
	if stages := d.Versions[stale]; len(stages) != 0 {
		t.Errorf("stale version keeps stages %v", stages)
	}
	if got := d.VersionWithStage(keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s", got)
	}
	if !strings.Contains(e.logs.String(), "resuming the rotation left in progress") {
		t.Errorf("no log line about the resumed rotation:\n%s", e.logs)
	}
}

func TestResumeConsumesStagedKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	staged := e.stage("app/openai", newKey)
	stale := e.crash("app/openai", rotation.CreateSecret, rotation.SetSecret, rotation.TestSecret)
	e.age(defaultStaleAfter + time.Minute)

	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	if res.ResumedFrom != stale {
		t.Errorf("ResumedFrom = %q, want %s", res.ResumedFrom, stale)
	}
	if res.StagedVersion != staged {
		t.Errorf("StagedVersion = %q, want the staged version %s", res.StagedVersion, staged)
	}
	if !e.hasKey("app/openai", keystore.Current(), newKey) {
		t.Errorf("the staged key was not promoted")
	}
	if !e.hasKey("app/openai", keystore.ByStage(keystore.StagePrevious), oldKey) {
		t.Errorf("the old key is not AWSPREVIOUS")
	}
	if got := e.holder("app/openai", keystore.StageStaged); got != "" {
		t.Errorf("KEYTURN_STAGED left on %s after its key was promoted", got)
	}
}

func TestResumeEmptyPending(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	stale := e.crash("app/openrouter")
	e.age(defaultStaleAfter + time.Minute)

	res, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if err != nil {
		t.Fatalf("RotateNow: %v", err)
	}
	if res.Outcome != rotation.Promoted || res.ResumedFrom != stale {
		t.Errorf("outcome %s resumed from %q, want promoted from %s", res.Outcome, res.ResumedFrom, stale)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 {
		t.Fatalf("%d keys minted, want 1", len(minted))
	}
	_, v := e.value("app/openrouter", keystore.Current())
	if v.KeyID != minted[0].Hash {
		t.Errorf("AWSCURRENT key_id = %q, want the minted %q", v.KeyID, minted[0].Hash)
	}
}

func TestPendingYoungerThanThreshold(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	token := e.crash("app/openrouter", rotation.CreateSecret)
	e.age(time.Minute)

	res, err := e.engine.RotateNow(ctxFor(t), "app/openrouter")
	if !errors.Is(err, rotation.ErrInProgress) {
		t.Fatalf("RotateNow: err = %v, want ErrInProgress", err)
	}
	if res.Outcome != rotation.InProgress || res.VersionID != token {
		t.Errorf("outcome %s on version %s, want in progress on %s", res.Outcome, res.VersionID, token)
	}
	p, ok, pErr := e.engine.PendingRotation(ctxFor(t), e.describe("app/openrouter"))
	if pErr != nil || !ok {
		t.Fatalf("PendingRotation: ok %v, err %v", ok, pErr)
	}
	if p.VersionID != token || !p.StaleAt.Equal(p.Since.Add(defaultStaleAfter)) {
		t.Errorf("PendingRotation = %+v, want version %s stale %s after it started", p, token, defaultStaleAfter)
	}
	for _, want := range []string{
		"rotation in progress since " + p.Since.UTC().Format(time.RFC3339),
		"after " + p.StaleAt.UTC().Format(time.RFC3339) + " considers it stale and resumes it",
		"'rotator abandon app/openrouter' abandons it now",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if got := e.holder("app/openrouter", keystore.StagePending); got != token {
		t.Errorf("AWSPENDING on %q, want it left on %s", got, token)
	}
	if n := len(e.prov.MintedKeys()); n != 1 {
		t.Errorf("%d keys minted, want 1", n)
	}
}

func TestEmptyPendingAgedFromLastChange(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	e.crash("app/openrouter")
	d := e.describe("app/openrouter")

	p, ok, err := e.engine.PendingRotation(ctxFor(t), d)
	if err != nil || !ok {
		t.Fatalf("PendingRotation: ok %v, err %v", ok, err)
	}
	if !p.Since.Equal(d.LastChanged) {
		t.Errorf("Since = %s, want the secret's last change %s", p.Since, d.LastChanged)
	}
}

// claimBarrier holds every takeover of a stale rotation until two rotators
// have reached it, so that both race for it.
type claimBarrier struct {
	keystore.Store
	stale   string
	arrived *sync.WaitGroup
}

func (s claimBarrier) UpdateStage(ctx context.Context, in keystore.StageInput) error {
	if in.Stage == keystore.StagePending && in.RemoveFromVersion == s.stale && in.MoveToVersion == "" {
		s.arrived.Done()
		s.arrived.Wait()
	}
	return s.Store.UpdateStage(ctx, in)
}

func TestConcurrentResumes(t *testing.T) {
	for _, tc := range []struct {
		name   string
		steps  []rotation.Step
		reject bool
	}{
		{name: "empty pending", steps: nil},
		{name: "rejected minted key", steps: []rotation.Step{rotation.CreateSecret}, reject: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addMintingSecret("app/openrouter")
			stale := e.crash("app/openrouter", tc.steps...)
			mintedBefore := len(e.prov.MintedKeys())
			if tc.reject {
				e.prov.SetFault("GET /openrouter/api/v1/key", fakeprovider.Fault{Status: 401})
			}
			e.age(defaultStaleAfter + time.Minute)
			outcomes := e.raceResumes(stale)

			var promoted, rejected, inProgress int
			for _, o := range outcomes {
				switch {
				case o.err == nil && o.res.Outcome == rotation.Promoted:
					promoted++
				case errors.Is(o.err, rotation.ErrRejected):
					rejected++
					if o.res.ResumedFrom != stale {
						t.Errorf("rejected rotation resumed from %q, want %s", o.res.ResumedFrom, stale)
					}
				case errors.Is(o.err, rotation.ErrInProgress):
					inProgress++
					if !strings.Contains(o.err.Error(), "another rotator resumed") {
						t.Errorf("loser's error %q does not say another rotator resumed it", o.err)
					}
				default:
					t.Errorf("unexpected outcome %s: %v", o.res.Outcome, o.err)
				}
			}
			if inProgress != 1 {
				t.Errorf("%d rotators found the rotation in progress, want 1", inProgress)
			}
			minted := e.prov.MintedKeys()
			if len(minted) != 1 {
				t.Errorf("%d keys minted, want 1 (%d before the resumes)", len(minted), mintedBefore)
			}
			if tc.reject {
				if rejected != 1 || e.revokes() != 1 {
					t.Errorf("%d rejections and %d revocations, want 1 of each", rejected, e.revokes())
				}
				return
			}
			if promoted != 1 || e.revokes() != 0 {
				t.Errorf("%d promotions and %d revocations, want 1 and 0", promoted, e.revokes())
			}
		})
	}
}

type rotateOutcome struct {
	res rotation.Result
	err error
}

// raceResumes runs RotateNow from two engines, each with its own file store
// on the test's directory, that reach the takeover of the stale rotation
// together.
func (e *env) raceResumes(stale string) []rotateOutcome {
	e.t.Helper()
	arrived := &sync.WaitGroup{}
	arrived.Add(2)
	results := make(chan rotateOutcome, 2)
	for range 2 {
		engine := *e.engine
		engine.Store = claimBarrier{Store: e.openStore(nil), stale: stale, arrived: arrived}
		go func() {
			res, err := engine.RotateNow(ctxFor(e.t), "app/openrouter")
			results <- rotateOutcome{res, err}
		}()
	}
	var out []rotateOutcome
	for range 2 {
		select {
		case o := <-results:
			out = append(out, o)
		case <-time.After(testDeadline):
			e.t.Fatal("a resumed rotation did not return")
		}
	}
	return out
}

func TestStaleRotationOnAWSNotResumed(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	err := e.store.SetRotation(ctxFor(t), "app/openai", keystore.Rotation{
		Enabled: true, Rules: keystore.RotationRules{AutomaticallyAfterDays: 30},
		LambdaARN: "arn:aws:lambda:us-east-1:123456789012:function:keyturn-rotator",
	})
	if err != nil {
		t.Fatalf("SetRotation: %v", err)
	}
	token := e.crash("app/openai")
	e.age(defaultStaleAfter + time.Minute)

	res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	if !errors.Is(err, rotation.ErrInProgress) {
		t.Fatalf("RotateNow: err = %v, want ErrInProgress", err)
	}
	if res.VersionID != token || res.ResumedFrom != "" {
		t.Errorf("version %s resumed from %q, want %s and no resume", res.VersionID, res.ResumedFrom, token)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != token {
		t.Errorf("AWSPENDING on %q, want it left on %s for Secrets Manager", got, token)
	}
	_, ok, err := e.engine.PendingRotation(ctxFor(t), e.describe("app/openai"))
	if ok || err != nil {
		t.Errorf("PendingRotation on AWS: ok %v, err %v, want neither", ok, err)
	}
}

func TestRotationTimeoutBoundsRotateNow(t *testing.T) {
	e := newEnv(t)
	e.engine.RotationTimeout = 300 * time.Millisecond
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), "")
	e.stage("app/openai", newKey)
	e.prov.SetFault("GET /openai/v1/models", fakeprovider.Fault{Hang: true})

	ctx := ctxFor(t)
	res, err := e.engine.RotateNow(ctx, "app/openai")
	if ctx.Err() != nil {
		t.Fatalf("RotateNow returned only after the caller's deadline: %v", err)
	}
	if !errors.Is(err, rotation.ErrTransient) || res.Outcome != rotation.Transient {
		t.Fatalf("RotateNow: outcome %s, err %v, want transient", res.Outcome, err)
	}
	if got := e.holder("app/openai", keystore.StagePending); got != "" {
		t.Errorf("AWSPENDING left on %s after the rotation timed out", got)
	}
}

func TestInvalidTimeouts(t *testing.T) {
	for _, tc := range []struct {
		name           string
		timeout, stale time.Duration
		want           string
	}{
		{"stale below timeout", 5 * time.Minute, time.Minute, "StaleAfter 1m0s must exceed RotationTimeout 5m0s"},
		{"stale equal to bound", time.Minute, time.Minute + 10*time.Second, "StaleAfter 1m10s must exceed"},
		{"negative timeout", -time.Second, 0, "RotationTimeout -1s and StaleAfter 0s must not be negative"},
		{"negative stale", 0, -time.Second, "must not be negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.engine.RotationTimeout, e.engine.StaleAfter = tc.timeout, tc.stale
			e.prov.AddKey(newKey)
			e.addSecret("app/openai", e.tags("openai"), "")
			e.stage("app/openai", newKey)

			res, err := e.engine.RotateNow(ctxFor(t), "app/openai")
			if !errors.Is(err, rotation.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("RotateNow: err = %v, want ErrConfig saying %q", err, tc.want)
			}
			if res.Outcome != rotation.Failed {
				t.Errorf("Outcome = %s, want %s", res.Outcome, rotation.Failed)
			}
			if got := e.holder("app/openai", keystore.StagePending); got != "" {
				t.Errorf("a rotation was started with invalid timeouts: AWSPENDING on %s", got)
			}
		})
	}
}
