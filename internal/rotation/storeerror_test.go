package rotation_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/keystore"
)

// failingRead fails every read of one version with err.
type failingRead struct {
	keystore.Store
	version string
	err     error
}

func (s failingRead) Get(ctx context.Context, id string, ref keystore.Ref) (keystore.Version, error) {
	if ref.VersionID == s.version {
		return keystore.Version{}, s.err
	}
	return s.Store.Get(ctx, id, ref)
}

func TestStoreErrorClasses(t *testing.T) {
	const op = "GetSecretValue"
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"value too large", keystore.Errorf(keystore.ErrInvalidParameter, op, "app/openai", "the value is too large"), rotation.ErrConfig},
		{"token holds another value", keystore.Errorf(keystore.ErrExists, op, "app/openai", "the token holds another value"), rotation.ErrConfig},
		{"quota", keystore.Errorf(keystore.ErrInvalidRequest, op, "app/openai", "it would exceed a quota"), rotation.ErrConfig},
		{"rotation in progress", keystore.Errorf(keystore.ErrInvalidRequest, op, "app/openai", "a previous rotation isn't complete"), rotation.ErrTransient},
		{"unavailable", keystore.Errorf(keystore.ErrUnavailable, op, "app/openai", "no response"), rotation.ErrTransient},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.addSecret("app/openai", e.tags("openai"), oldKey)
			ctx := ctxFor(t)
			token, err := e.store.BeginRotation(ctx, "app/openai", "")
			if err != nil {
				t.Fatalf("BeginRotation: %v", err)
			}
			e.engine.Store = failingRead{Store: e.store, version: token, err: tc.err}
			err = e.engine.Run(ctx, rotation.CreateSecret, "app/openai", token)
			if !errors.Is(err, tc.want) {
				t.Errorf("createSecret: err = %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.err.Error()) {
				t.Errorf("createSecret: err = %v, want it to carry the store's message", err)
			}
		})
	}
}

// unclearPut fails every Put with ErrUnavailable. It writes the value
// first when land is set, as a write whose response was lost would, and
// cancels the caller's context first when cancel is set.
type unclearPut struct {
	keystore.Store
	land   bool
	cancel context.CancelFunc
}

func (s unclearPut) Put(ctx context.Context, in keystore.PutInput) error {
	if s.land {
		if err := s.Store.Put(ctx, in); err != nil {
			return err
		}
	}
	if s.cancel != nil {
		s.cancel()
	}
	return keystore.Errorf(keystore.ErrUnavailable, "PutSecretValue", in.SecretID, "no response")
}

func TestUnclearPutThatLandedKeepsMintedKey(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	ctx := ctxFor(t)
	token, err := e.store.BeginRotation(ctx, "app/openrouter", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	e.engine.Store = unclearPut{Store: e.store, land: true}
	if err := e.engine.Run(ctx, rotation.CreateSecret, "app/openrouter", token); err != nil {
		t.Fatalf("createSecret: %v, want success: the value was written", err)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 || minted[0].Deleted {
		t.Fatalf("minted keys = %+v, want one, live: it is the pending key", minted)
	}
	_, v := e.value("app/openrouter", keystore.ByVersion(token))
	if v.KeyID != minted[0].Hash {
		t.Errorf("pending key_id = %q, want the minted hash %q", v.KeyID, minted[0].Hash)
	}
}

func TestUnclearPutOnDeadContextRevokesMintedKey(t *testing.T) {
	e := newEnv(t)
	e.addMintingSecret("app/openrouter")
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	token, err := e.store.BeginRotation(ctx, "app/openrouter", "")
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}
	e.engine.Store = unclearPut{Store: e.store, cancel: cancel}
	err = e.engine.Run(ctx, rotation.CreateSecret, "app/openrouter", token)
	if !errors.Is(err, rotation.ErrTransient) {
		t.Fatalf("createSecret: err = %v, want ErrTransient", err)
	}
	minted := e.prov.MintedKeys()
	if len(minted) != 1 || !minted[0].Deleted {
		t.Errorf("minted keys = %+v, want one, deleted: it was never stored", minted)
	}
}

// regionBody is the error OpenAI returns to a region it does not serve.
const regionBody = `{"error":{"code":"unsupported_country_region_territory","message":"Country, region, or territory not supported","param":null,"type":"request_forbidden"}}`

func TestUnsupportedRegionKeepsStagedKey(t *testing.T) {
	e := newEnv(t)
	e.prov.AddKey(oldKey)
	e.prov.AddKey(newKey)
	e.addSecret("app/openai", e.tags("openai"), oldKey)
	staged := e.stage("app/openai", newKey)
	e.prov.SetFault("GET /openai/v1/models", fakeprovider.Fault{Status: http.StatusForbidden, Body: regionBody})

	_, err := e.engine.RotateNow(ctxFor(t), "app/openai")
	noCanary(t, err)
	if !errors.Is(err, rotation.ErrConfig) {
		t.Fatalf("RotateNow: err = %v, want ErrConfig", err)
	}
	if !strings.Contains(err.Error(), "region") {
		t.Errorf("RotateNow: err = %v, want it to name the region", err)
	}
	if got := e.holder("app/openai", keystore.StageStaged); got != staged {
		t.Errorf("KEYTURN_STAGED on %q, want it left on %s", got, staged)
	}
	if got := e.holder("app/openai", keystore.StageRejected); got != "" {
		t.Errorf("KEYTURN_REJECTED on %s: the key was never judged", got)
	}
}

func TestOutcomeOf(t *testing.T) {
	cases := []struct {
		err  error
		want rotation.Outcome
	}{
		{nil, rotation.Promoted},
		{&rotation.Error{Kind: rotation.ErrInProgress}, rotation.InProgress},
		{&rotation.Error{Kind: rotation.ErrRejected}, rotation.Rejected},
		{&rotation.Error{Kind: rotation.ErrTransient}, rotation.Transient},
		{keystore.Errorf(keystore.ErrUnavailable, "DescribeSecret", "app/x", "no response"), rotation.Transient},
		{&rotation.Error{Kind: rotation.ErrConfig}, rotation.Failed},
	}
	for _, tc := range cases {
		if got := rotation.OutcomeOf(tc.err); got != tc.want {
			t.Errorf("OutcomeOf(%v) = %s, want %s", tc.err, got, tc.want)
		}
	}
}
