package issuer_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/issuer"
	"github.com/keyturn/keyturn/keystore"
)

const (
	canary   = "CANARY-"
	adminKey = "sk-or-v1-" + canary + "admin"
)

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func startDev(t *testing.T) (*fakeprovider.Provider, issuer.Issuer) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{KeyPrefix: "sk-or-v1-" + canary})
	p.AddManagementKey(adminKey)
	return p, issuer.NewDev(url+"/openrouter/api/v1", nil)
}

func TestDevMintAndRevoke(t *testing.T) {
	p, dev := startDev(t)
	m, err := dev.Mint(ctxFor(t), issuer.MintRequest{
		SecretID: "app/openrouter", Token: "t1", Name: "keyturn/app/openrouter/t1",
		Admin: keystore.NewSecret(adminKey),
	})
	if err != nil {
		t.Fatalf("Mint: %v", err)
	}
	if !strings.HasPrefix(m.Key.Reveal(), "sk-or-v1-"+canary) {
		t.Errorf("minted key does not have the stand-in's prefix")
	}
	minted := p.MintedKeys()
	if len(minted) != 1 || minted[0].Hash != m.KeyID || minted[0].Name != "keyturn/app/openrouter/t1" {
		t.Fatalf("minted keys = %+v, want one with hash %q", minted, m.KeyID)
	}

	err = dev.Revoke(ctxFor(t), issuer.RevokeRequest{KeyID: m.KeyID, Admin: keystore.NewSecret(adminKey)})
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if !p.MintedKeys()[0].Deleted {
		t.Errorf("the key is not deleted after Revoke")
	}
	err = dev.Revoke(ctxFor(t), issuer.RevokeRequest{KeyID: m.KeyID, Admin: keystore.NewSecret(adminKey)})
	if err != nil {
		t.Errorf("Revoke of a deleted key: %v, want nil", err)
	}
}

func TestDevMintWrongAdmin(t *testing.T) {
	_, dev := startDev(t)
	_, err := dev.Mint(ctxFor(t), issuer.MintRequest{
		Name: "keyturn/x/t", Admin: keystore.NewSecret("sk-or-v1-" + canary + "wrong"),
	})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("Mint: err = %v, want a 401", err)
	}
	if !errors.Is(err, issuer.ErrMisconfigured) {
		t.Errorf("Mint: err = %v, want ErrMisconfigured: a refused management key needs fixing, not a retry", err)
	}
	if strings.Contains(err.Error(), canary) {
		t.Errorf("error text carries a key")
	}
}

func TestDevRevokeNeedsHash(t *testing.T) {
	_, dev := startDev(t)
	err := dev.Revoke(ctxFor(t), issuer.RevokeRequest{Admin: keystore.NewSecret(adminKey)})
	if err == nil || !strings.Contains(err.Error(), "hash") {
		t.Errorf("Revoke without a key id: err = %v, want one asking for the hash", err)
	}
}

// refusingTransport fails the test if any request is sent.
type refusingTransport struct{ t *testing.T }

func (r refusingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r.t.Errorf("request sent to %s", req.URL.Host)
	return nil, http.ErrNotSupported
}

func TestDevRefusesNonLoopback(t *testing.T) {
	client := &http.Client{Transport: refusingTransport{t}}
	for _, base := range []string{
		"https://openrouter.ai/api/v1",
		"http://10.0.0.1/openrouter/api/v1",
		"http://169.254.169.254/latest",
		"http://127.0.0.1.example.com/api/v1",
		"not a url",
	} {
		dev := issuer.NewDev(base, client)
		_, err := dev.Mint(ctxFor(t), issuer.MintRequest{Name: "n", Admin: keystore.NewSecret(adminKey)})
		if err == nil || !strings.Contains(err.Error(), base) {
			t.Errorf("Mint with base %q: err = %v, want one naming the URL", base, err)
		}
		if !errors.Is(err, issuer.ErrMisconfigured) {
			t.Errorf("Mint with base %q: err = %v, want ErrMisconfigured", base, err)
		}
		err = dev.Revoke(ctxFor(t), issuer.RevokeRequest{KeyID: "h", Admin: keystore.NewSecret(adminKey)})
		if err == nil {
			t.Errorf("Revoke with base %q: err = nil", base)
		}
	}
}

func TestDevMintServerErrorRetryable(t *testing.T) {
	p, dev := startDev(t)
	p.SetFault("POST /openrouter/api/v1/keys", fakeprovider.Fault{Status: http.StatusServiceUnavailable})
	_, err := dev.Mint(ctxFor(t), issuer.MintRequest{Name: "keyturn/x/t", Admin: keystore.NewSecret(adminKey)})
	if err == nil || !strings.Contains(err.Error(), "503") {
		t.Fatalf("Mint: err = %v, want a 503", err)
	}
	if errors.Is(err, issuer.ErrMisconfigured) {
		t.Errorf("Mint: err = %v matches ErrMisconfigured, but a 503 may pass on a retry", err)
	}
}

func TestDevMintStatusClasses(t *testing.T) {
	cases := []struct {
		status        int
		misconfigured bool
	}{
		{http.StatusBadRequest, true},
		{http.StatusNotFound, true},
		{http.StatusRequestTimeout, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
	}
	for _, tc := range cases {
		p, dev := startDev(t)
		p.SetFault("POST /openrouter/api/v1/keys", fakeprovider.Fault{Status: tc.status})
		_, err := dev.Mint(ctxFor(t), issuer.MintRequest{Name: "keyturn/x/t", Admin: keystore.NewSecret(adminKey)})
		if err == nil {
			t.Fatalf("Mint with a %d: err = nil", tc.status)
		}
		if got := errors.Is(err, issuer.ErrMisconfigured); got != tc.misconfigured {
			t.Errorf("Mint with a %d: errors.Is(err, ErrMisconfigured) = %v, want %v (err = %v)", tc.status, got, tc.misconfigured, err)
		}
	}
}

func TestDevBaseURLCredentialsRedacted(t *testing.T) {
	client := &http.Client{Transport: refusingTransport{t}}
	for _, base := range []string{
		"http://user:hunter2@127.0.0.1:8080/openrouter/api/v1",
		"http://user:hunter2@10.0.0.1:bad/api/v1",
	} {
		_, err := issuer.NewDev(base, client).Mint(ctxFor(t), issuer.MintRequest{Name: "n", Admin: keystore.NewSecret(adminKey)})
		if err == nil || strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Mint with a base URL carrying a password: err = %v, want an error without the password", err)
		}
		if !errors.Is(err, issuer.ErrMisconfigured) {
			t.Errorf("Mint: err = %v, want ErrMisconfigured", err)
		}
	}
}

// droppingTransport sends every request but replaces the first response to
// POST .../keys with an error, as a connection lost after the key was
// created would.
type droppingTransport struct {
	dropped bool
}

func (d *droppingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil || d.dropped || req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/keys") {
		return resp, err
	}
	d.dropped = true
	resp.Body.Close()
	return nil, errors.New("connection reset after the request was sent")
}

func TestDevMintAfterLostResponseLeavesOneKey(t *testing.T) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{KeyPrefix: "sk-or-v1-" + canary})
	p.AddManagementKey(adminKey)
	// A key of another rotation must survive.
	other := issuer.NewDev(url+"/openrouter/api/v1", nil)
	if _, err := other.Mint(ctxFor(t), issuer.MintRequest{Name: "keyturn/app/other", Admin: keystore.NewSecret(adminKey)}); err != nil {
		t.Fatalf("Mint: %v", err)
	}

	dev := issuer.NewDev(url+"/openrouter/api/v1", &http.Client{Transport: &droppingTransport{}})
	req := issuer.MintRequest{Name: "keyturn/app/t1", Admin: keystore.NewSecret(adminKey)}
	if _, err := dev.Mint(ctxFor(t), req); err == nil {
		t.Fatalf("first Mint: err = nil, want the dropped response")
	}
	m, err := dev.Mint(ctxFor(t), req)
	if err != nil {
		t.Fatalf("second Mint: %v", err)
	}

	live := map[string][]string{}
	for _, k := range p.MintedKeys() {
		if !k.Deleted {
			live[k.Name] = append(live[k.Name], k.Hash)
		}
	}
	if got := live[req.Name]; len(got) != 1 || got[0] != m.KeyID {
		t.Errorf("live keys named %s = %v, want only %s", req.Name, got, m.KeyID)
	}
	if len(live["keyturn/app/other"]) != 1 {
		t.Errorf("the other rotation's key was deleted")
	}
}

func TestDevMintReadsEveryListPage(t *testing.T) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{KeyPrefix: "sk-or-v1-" + canary})
	p.AddManagementKey(adminKey)
	dev := issuer.NewDev(url+"/openrouter/api/v1", nil)
	req := issuer.MintRequest{Name: "keyturn/app/t1", Admin: keystore.NewSecret(adminKey)}
	if _, err := dev.Mint(ctxFor(t), req); err != nil {
		t.Fatalf("Mint: %v", err)
	}
	// The list is newest first, so these push the first key to page 2.
	for i := range 105 {
		if _, err := dev.Mint(ctxFor(t), issuer.MintRequest{Name: fmt.Sprintf("keyturn/other/%d", i), Admin: keystore.NewSecret(adminKey)}); err != nil {
			t.Fatalf("Mint: %v", err)
		}
	}
	if _, err := dev.Mint(ctxFor(t), req); err != nil {
		t.Fatalf("Mint: %v", err)
	}
	n := 0
	for _, k := range p.MintedKeys() {
		if k.Name == req.Name && !k.Deleted {
			n++
		}
	}
	if n != 1 {
		t.Errorf("live keys named %s = %d, want 1", req.Name, n)
	}
}
