package provider

import (
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func TestRedactURL(t *testing.T) {
	cases := map[string]string{
		"https://user:hunter2@api.openai.com/v1": "https://REDACTED@api.openai.com/v1",
		"http://hunter2@127.0.0.1:8080/x":        "http://REDACTED@127.0.0.1:8080/x",
		"https://user:hunter2@host:bad/v1":       "https://REDACTED@host:bad/v1",
		"https://api.openai.com/v1?next=a@b":     "https://api.openai.com/v1?next=a@b",
		"https://api.openai.com/v1":              "https://api.openai.com/v1",
	}
	for raw, want := range cases {
		if got := RedactURL(raw); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", raw, got, want)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	relays := []string{"Relay.Example.com", "10.0.0.5", "203.0.113.7", "2852039166", "metadata"}
	cases := []struct {
		name     string
		provider string
		url      string
		loopback bool
		want     string // "" for allowed, else a substring of the error
	}{
		{"openai built-in", "openai", "https://api.openai.com/v1", false, ""},
		{"anthropic built-in", "anthropic", "https://api.anthropic.com/v1", false, ""},
		{"gemini built-in", "gemini", "https://generativelanguage.googleapis.com/v1beta", false, ""},
		{"openrouter built-in", "openrouter", "https://openrouter.ai/api/v1", false, ""},
		{"host case and trailing dot", "openai", "https://API.OpenAI.com./v1", false, ""},
		{"built-in over http", "openai", "http://api.openai.com/v1", false, "use https"},
		{"other provider's host", "gemini", "https://api.openai.com/v1", false, "its only host is generativelanguage.googleapis.com"},
		{"unknown host", "openai", "https://gw.example.org/v1", false, relayHint},
		{"relay host", "openai", "https://relay.example.com/v1", false, ""},
		{"relay host with port", "openai", "https://relay.example.com:8443/v1", false, ""},
		{"relay host over http", "openai", "http://relay.example.com/v1", false, "use https"},
		{"relay host for anthropic", "anthropic", "https://relay.example.com/v1", false, "relay hosts apply to provider openai only"},
		{"relay IP", "openai", "https://203.0.113.7/v1", false, ""},
		{"private relay still refused", "openai", "https://10.0.0.5/v1", false, "private address"},
		{"private 10/8", "openai", "https://10.1.2.3/v1", false, "10.1.2.3 is a private address"},
		{"private 172.16/12", "openai", "https://172.20.0.1/v1", false, "private address"},
		{"private 192.168/16", "openai", "https://192.168.1.1/v1", false, "private address"},
		{"private fc00::/7", "openai", "https://[fd12:3456::1]/v1", false, "private address"},
		{"link-local", "openai", "https://169.254.10.10/v1", false, "link-local address"},
		{"link-local v6", "openai", "https://[fe80::1]/v1", false, "link-local address"},
		{"metadata v4", "openai", "http://169.254.169.254/latest", true, "cloud metadata address"},
		{"metadata v6", "openai", "http://[fd00:ec2::254]/latest", true, "cloud metadata address"},
		{"mapped metadata", "openai", "http://[::ffff:169.254.169.254]/", true, "cloud metadata address"},
		{"mapped private", "openai", "https://[::ffff:10.0.0.1]/v1", false, "private address"},
		{"unspecified v4", "openai", "http://0.0.0.0:8080/v1", true, "unspecified address"},
		{"unspecified v6", "openai", "http://[::]:8080/v1", true, "unspecified address"},
		{"this network", "openai", "http://0.1.2.3/v1", true, "unspecified address"},
		{"multicast v4", "openai", "https://224.0.0.1/v1", false, "multicast address"},
		{"multicast v6", "openai", "https://[ff02::1]/v1", false, "multicast address"},
		{"shared address space", "openai", "https://100.64.0.1/v1", false, "shared (carrier-grade NAT) address"},
		{"reserved", "openai", "https://240.0.0.1/v1", false, "reserved address"},
		{"loopback refused", "openai", "http://127.0.0.1:8080/v1", false, "loopback host"},
		{"localhost refused", "openai", "https://localhost/v1", false, "loopback host"},
		{"loopback http allowed", "anthropic", "http://127.0.0.1:8080/anthropic/v1", true, ""},
		{"loopback https allowed", "gemini", "https://127.0.0.1:8443/v1beta", true, ""},
		{"loopback range allowed", "openai", "http://127.9.8.7/v1", true, ""},
		{"loopback v6 allowed", "openrouter", "http://[::1]:9000/api/v1", true, ""},
		{"localhost allowed", "openai", "http://localhost:9000/v1", true, ""},
		{"scheme", "openai", "ftp://api.openai.com/v1", false, `scheme "ftp" is not allowed: use https`},
		{"not absolute", "openai", "api.openai.com/v1", false, "not an absolute URL"},
		{"credentials", "openai", "https://user:hunter2@api.openai.com/v1", false, "carries credentials"},
		{"credentials in an unparsable URL", "openai", "https://user:hunter2@api.openai.com:bad/v1", false, "not an absolute URL"},
		{"unknown provider", "mistral", "https://api.mistral.ai/v1", false, `unknown provider "mistral"`},
		{"unspecified article", "openai", "http://0.0.0.0/v1", true, "0.0.0.0 is an unspecified address"},
		{"decimal number", "openai", "http://2852039166/latest", true, "host 2852039166 is a number that resolvers may read as an IPv4 address"},
		{"hex number", "openai", "https://0xa9fea9fe/v1", false, "host 0xa9fea9fe is a number"},
		{"octal parts", "openai", "https://0251.0376.0251.0376/v1", false, "host 0251.0376.0251.0376 is a number"},
		{"two parts", "openai", "https://10.1/v1", false, "host 10.1 is a number"},
		{"number relay host", "openai", "https://2852039166/v1", false, "four decimal numbers"},
		{"google metadata name", "openai", "http://metadata.google.internal/v1", true, "metadata.google.internal is a cloud metadata host name"},
		{"bare metadata name", "openai", "http://metadata/v1", true, "metadata is a cloud metadata host name"},
		{"aws metadata name", "openai", "http://instance-data.ec2.internal/v1", true, "cloud metadata host name"},
		{"metadata name case", "openai", "http://Metadata.Google.Internal./v1", true, "cloud metadata host name"},
		{"numeric label in a name", "openai", "https://123.example.com/v1", false, relayHint},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := NewPolicy(relays, tc.loopback).Check(tc.provider, tc.url)
			if tc.want == "" {
				if err != nil {
					t.Errorf("Check(%s, %s) = %v, want allowed", tc.provider, tc.url, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Check(%s, %s) allowed, want %q", tc.provider, tc.url, tc.want)
			}
			if !errors.Is(err, ErrNotAllowed) {
				t.Errorf("error %v does not match ErrNotAllowed", err)
			}
			if got, want := errors.Is(err, ErrLoopbackNotAllowed), tc.want == "loopback host"; got != want {
				t.Errorf("errors.Is(%v, ErrLoopbackNotAllowed) = %t, want %t", err, got, want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error = %q shows the URL's password", err)
			}
		})
	}
}

func TestPolicyErrorNamesURL(t *testing.T) {
	err := DefaultPolicy().Check("openai", "https://gw.example.org/v1")
	if err == nil || !strings.Contains(err.Error(), `"https://gw.example.org/v1"`) || !strings.Contains(err.Error(), "host gw.example.org") {
		t.Errorf("error = %v, want it to name the URL and the host", err)
	}
}

func TestPolicyDialControl(t *testing.T) {
	cases := []struct {
		address  string
		loopback bool
		want     string
	}{
		{"93.184.216.34:443", false, ""},
		{"[2606:2800:220:1:248:1893:25c8:1946]:443", false, ""},
		{"10.0.0.1:443", false, "private"},
		{"172.31.255.255:443", false, "private"},
		{"192.168.0.10:443", false, "private"},
		{"[fc00::1]:443", false, "private"},
		{"169.254.169.254:80", false, "cloud metadata"},
		{"[::ffff:169.254.169.254]:80", true, "cloud metadata"},
		{"[fd00:ec2::254]:80", true, "cloud metadata"},
		{"169.254.1.1:443", false, "link-local"},
		{"[fe80::1%eth0]:443", false, "link-local"},
		{"0.0.0.0:443", true, "0.0.0.0 is an unspecified address"},
		{"[::]:443", true, "unspecified"},
		{"239.1.1.1:443", false, "multicast"},
		{"127.0.0.1:443", false, "loopback"},
		{"[::1]:443", false, "loopback"},
		{"127.0.0.1:443", true, ""},
		{"[::1]:443", true, ""},
		{"not-an-address", true, "not an IP address and port"},
	}
	for _, tc := range cases {
		err := NewPolicy(nil, tc.loopback).controlDial("tcp", tc.address, nil)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("dial %s (loopback %t) = %v, want allowed", tc.address, tc.loopback, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("dial %s (loopback %t) = %v, want %q", tc.address, tc.loopback, err, tc.want)
		case tc.want != "" && !errors.Is(err, ErrNotAllowed):
			t.Errorf("dial %s error does not match ErrNotAllowed", tc.address)
		case errors.Is(err, ErrLoopbackNotAllowed) != (tc.want == "loopback"):
			t.Errorf("dial %s: errors.Is(%v, ErrLoopbackNotAllowed) = %t, want %t", tc.address, err, tc.want != "loopback", tc.want == "loopback")
		}
	}
}

// A host that passed Check can still resolve to a refused address; the
// client refuses it when it connects.
func TestPolicyClientRefusesAtDial(t *testing.T) {
	var hits atomic.Int32
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	resp, err := DefaultPolicy().Client().Get(srv + "/v1/models")
	if err == nil {
		resp.Body.Close()
		t.Fatal("request to a loopback address succeeded under a policy without loopback")
	}
	if !errors.Is(err, ErrNotAllowed) {
		t.Errorf("error = %v, want ErrNotAllowed", err)
	}
	if hits.Load() != 0 {
		t.Error("the server got the request")
	}
}

func TestPolicyClientAllowsLoopback(t *testing.T) {
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	resp, err := NewPolicy(nil, true).Client().Get(srv)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 204 {
		t.Errorf("status = %d, want 204", resp.StatusCode)
	}
}

func TestPolicyClientRefusesRedirect(t *testing.T) {
	var followed atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/from", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/to", http.StatusTemporaryRedirect)
	})
	mux.HandleFunc("/to", func(w http.ResponseWriter, r *http.Request) { followed.Add(1) })
	srv := startHandler(t, mux.ServeHTTP)

	resp, err := NewPolicy(nil, true).Client().Get(srv + "/from")
	if err == nil {
		resp.Body.Close()
		t.Fatal("redirect followed")
	}
	var re *RedirectError
	if !errors.As(err, &re) || re.Status != http.StatusTemporaryRedirect || re.Host != "127.0.0.1" {
		t.Errorf("error = %v, want a RedirectError with status 307 to 127.0.0.1", err)
	}
	if followed.Load() != 0 {
		t.Error("the redirect target got the request")
	}
}

// The client ignores proxy settings: the proxies named here do not exist,
// so a request through one would fail.
func TestPolicyClientIgnoresProxyEnvironment(t *testing.T) {
	t.Setenv("HTTP_PROXY", "http://127.0.0.1:1")
	t.Setenv("HTTPS_PROXY", "http://127.0.0.1:1")
	t.Setenv("NO_PROXY", "")
	srv := startHandler(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	resp, err := NewPolicy(nil, true).Client().Get(srv)
	if err != nil {
		t.Fatalf("request went through the environment's proxy: %v", err)
	}
	resp.Body.Close()
}

func TestNewPolicyNormalizesRelayHosts(t *testing.T) {
	p := NewPolicy([]string{" Relay.Example.COM. ", "relay.example.com", "", "::FFFF:203.0.113.7"}, false)
	got := strings.Join(p.RelayHosts(), " ")
	if got != "203.0.113.7 relay.example.com" {
		t.Errorf("relay hosts = %q, want normalized, deduplicated and sorted", got)
	}
}

func TestParseRelayHosts(t *testing.T) {
	hosts, err := ParseRelayHosts("relay.example.com, GW.example.org  2001:db8::1\n203.0.113.7")
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(hosts, " "); got != "relay.example.com gw.example.org 2001:db8::1 203.0.113.7" {
		t.Errorf("hosts = %q", got)
	}
	for _, bad := range []string{"https://relay.example.com", "relay.example.com:8443", "relay.example.com/v1", "bad_host", "a..b", "user@relay.example.com"} {
		_, err := ParseRelayHosts("ok.example.com," + bad)
		if err == nil || !strings.Contains(err.Error(), bad) {
			t.Errorf("ParseRelayHosts(%q) = %v, want an error naming it", bad, err)
		}
	}
	if hosts, err := ParseRelayHosts(" , "); err != nil || len(hosts) != 0 {
		t.Errorf("empty list = %v, %v, want none", hosts, err)
	}
	if hosts, err := ParseRelayHosts("123.example.com 0x1.example.com"); err != nil || len(hosts) != 2 {
		t.Errorf("names with numeric labels = %v, %v, want both accepted", hosts, err)
	}
}

func TestParseRelayHostsRejectsAddressForms(t *testing.T) {
	cases := map[string]string{
		"2852039166":                  "a number that resolvers may read as an IPv4 address",
		"0xa9fea9fe":                  "a number that resolvers may read",
		"0XA9FEA9FE":                  "a number that resolvers may read",
		"0251.0376.0251.0376":         "a number that resolvers may read",
		"0xa9.0xfe.0xa9.0xfe":         "a number that resolvers may read",
		"10.1":                        "a number that resolvers may read",
		"1.2.3.4.5":                   "a number that resolvers may read",
		"0x":                          "a number that resolvers may read",
		"metadata.google.internal":    "a cloud metadata host name",
		"metadata":                    "a cloud metadata host name",
		"instance-data":               "a cloud metadata host name",
		"Instance-Data.EC2.Internal.": "a cloud metadata host name",
	}
	for host, want := range cases {
		_, err := ParseRelayHosts("ok.example.com, " + host)
		if err == nil {
			t.Errorf("ParseRelayHosts(%q) accepted it", host)
			continue
		}
		if !strings.Contains(err.Error(), `"`+host+`"`) || !strings.Contains(err.Error(), want) {
			t.Errorf("ParseRelayHosts(%q) = %v, want it to name the host and say %q", host, err, want)
		}
	}
	if _, err := ParseRelayHosts("203.0.113.7"); err != nil {
		t.Errorf("dotted-decimal address: %v, want it accepted", err)
	}
}

func TestArticle(t *testing.T) {
	for word, want := range map[string]string{"unspecified": "an unspecified", "private": "a private", "link-local": "a link-local"} {
		if got := article(word); got != want {
			t.Errorf("article(%q) = %q, want %q", word, got, want)
		}
	}
}

func TestEmptyRelayList(t *testing.T) {
	if hosts, err := ParseRelayHosts(""); err != nil || len(hosts) != 0 {
		t.Errorf("empty list = %v, %v, want none", hosts, err)
	}
}

func TestValidate(t *testing.T) {
	relay := NewPolicy([]string{"relay.example.com"}, false)
	base := func(provider, url string) keystore.Settings {
		return keystore.Settings{Provider: provider, BaseURL: url, Issuer: keystore.IssuerStaged, Probe: keystore.ProbeModels}
	}
	inference := base("openai", "https://api.openai.com/v1")
	inference.Probe = keystore.ProbeInference
	cases := []struct {
		name     string
		settings keystore.Settings
		policy   *Policy
		want     string
	}{
		{"openai", base("openai", "https://api.openai.com/v1"), nil, ""},
		{"gemini v1", base("gemini", "https://generativelanguage.googleapis.com/v1"), nil, ""},
		{"openrouter trailing slash", base("openrouter", "https://openrouter.ai/api/v1/"), nil, ""},
		{"relay", base("openai", "https://relay.example.com/openai"), relay, ""},
		{"relay not configured", base("openai", "https://relay.example.com/openai"), nil, relayHint},
		{"http", base("openai", "http://api.openai.com/v1"), nil, "tag keyturn:base-url"},
		{"wrong root", base("openai", "https://api.openai.com"), nil, "use https://api.openai.com/v1"},
		{"openrouter root", base("openrouter", "https://openrouter.ai/v1"), nil, "use https://openrouter.ai/api/v1"},
		{"inference without model", inference, nil, "probe inference needs a model"},
		{"missing provider", base("", "https://api.openai.com/v1"), nil, "missing tag keyturn:provider"},
		{"metadata", base("openai", "http://169.254.169.254/v1"), nil, "cloud metadata"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.settings, tc.policy)
			if tc.want == "" {
				if err != nil {
					t.Errorf("Validate = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Validate = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}
