package fakeprovider_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/fakeprovider"
)

func TestListenRejectsNonLoopback(t *testing.T) {
	for _, addr := range []string{":0", "0.0.0.0:0", "[::]:0", "192.168.1.10:0", "example.com:80", "127.0.0.1"} {
		ln, err := fakeprovider.Listen(addr)
		if err == nil {
			ln.Close()
			t.Errorf("Listen(%q) succeeded, want an error", addr)
			continue
		}
		if !strings.Contains(err.Error(), addr) {
			t.Errorf("Listen(%q) error %q does not name the address", addr, err)
		}
	}
}

func TestServeRejectsNonLoopback(t *testing.T) {
	p := fakeprovider.New(fakeprovider.Options{})
	if err := p.Serve(context.Background(), "0.0.0.0:0"); err == nil {
		t.Error("Serve on 0.0.0.0 succeeded, want an error")
	}
}

func TestServeListenerUntilCancel(t *testing.T) {
	for _, addr := range []string{"127.0.0.1:0", "localhost:0"} {
		ln, err := fakeprovider.Listen(addr)
		if err != nil {
			t.Fatalf("Listen(%q): %v", addr, err)
		}
		p := fakeprovider.New(fakeprovider.Options{})
		p.AddKey(canary)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- p.ServeListener(ctx, ln) }()

		r := call(t, "GET", "http://"+ln.Addr().String()+"/openai/v1/models", "", "Authorization", "Bearer "+canary)
		if r.status != http.StatusOK {
			t.Errorf("%s: status = %d, want 200", addr, r.status)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: ServeListener returned %v after cancel, want nil", addr, err)
		}
	}
}

func TestRequestsRecordAuthNotKeys(t *testing.T) {
	p, url := fakeprovider.Start(t, fakeprovider.Options{})
	p.AddKey(canary)
	call(t, "GET", url+"/gemini/v1beta/models?key="+canary, "")
	call(t, "GET", url+"/anthropic/v1/models", "", "X-Api-Key", canary, "Anthropic-Version", "2023-06-01", "Authorization", "Bearer x")
	recs := p.Requests()
	if len(recs) != 2 {
		t.Fatalf("recorded %d requests, want 2", len(recs))
	}
	if recs[0].Path != "/gemini/v1beta/models" || strings.Join(recs[0].Auth, ",") != "?key" || recs[0].Status != 200 {
		t.Errorf("first record = %+v", recs[0])
	}
	if strings.Join(recs[1].Auth, ",") != "Authorization,X-Api-Key" || recs[1].Method != "GET" {
		t.Errorf("second record = %+v", recs[1])
	}
}

func TestUnknownPath(t *testing.T) {
	_, url := fakeprovider.Start(t, fakeprovider.Options{})
	if r := call(t, "GET", url+"/elsewhere", ""); r.status != http.StatusNotFound {
		t.Errorf("status = %d, want 404", r.status)
	}
}

func TestSetKeyQuotaUnknownKeyPanics(t *testing.T) {
	p := fakeprovider.New(fakeprovider.Options{})
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("SetKeyQuota on an unknown key did not panic")
		}
		if strings.Contains(r.(string), canary) {
			t.Error("the panic message carries the key")
		}
	}()
	p.SetKeyQuota(canary, true)
}
