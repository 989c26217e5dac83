package provider

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestCheckRelayHostsAccepts(t *testing.T) {
	hosts, err := CheckRelayHosts([]string{"Relay.Example.com, gw.example.org", "203.0.113.7 2001:db8::1"}, "--relay-host", false)
	if err != nil {
		t.Fatalf("CheckRelayHosts: %v", err)
	}
	want := []string{"relay.example.com", "gw.example.org", "203.0.113.7", "2001:db8::1"}
	if !slices.Equal(hosts, want) {
		t.Errorf("hosts = %v, want %v", hosts, want)
	}
	if hosts, err := CheckRelayHosts([]string{"", " , "}, "relay_hosts", false); err != nil || len(hosts) != 0 {
		t.Errorf("empty values = %v, %v, want no hosts and no error", hosts, err)
	}
}

func TestCheckRelayHostsRejects(t *testing.T) {
	cases := []struct {
		name, host string
		want       string
	}{
		{"URL", "https://relay.example.com",
			`invalid relay host "https://relay.example.com" in SRC: give a host name, not a URL: use relay.example.com: ` + relayHostMeaning},
		{"wildcard", "*.example.com",
			`invalid relay host "*.example.com" in SRC: wildcards are not supported: list each host name: ` + relayHostMeaning},
		{"private address", "10.0.0.1",
			`invalid relay host "10.0.0.1" in SRC: 10.0.0.1 is a private address, and keyturn never sends keys there: ` + relayHostMeaning},
		{"metadata address", "169.254.169.254",
			`invalid relay host "169.254.169.254" in SRC: 169.254.169.254 is a cloud metadata address, and keyturn never sends keys there: ` + relayHostMeaning},
		{"loopback address", "127.0.0.1",
			`invalid relay host "127.0.0.1" in SRC: 127.0.0.1 is a loopback host, which this policy refuses: loopback is allowed only in tests and rotator dev: ` + relayHostMeaning},
		{"port", "relay.example.com:8443",
			`SRC: invalid relay host "relay.example.com:8443": give a host name such as relay.example.com, without scheme, port or path`},
		{"numeric form", "2852039166", `SRC: invalid relay host "2852039166": a number that resolvers may read as an IPv4 address`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			hosts, err := CheckRelayHosts([]string{"ok.example.com, " + tc.host}, "SRC", false)
			if err == nil {
				t.Fatalf("CheckRelayHosts(%q) = %v, want an error", tc.host, hosts)
			}
			if !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("error = %q\nwant it to start with %q", err, tc.want)
			}
		})
	}
}

func TestCheckRelayHostsLoopback(t *testing.T) {
	hosts, err := CheckRelayHosts([]string{"127.0.0.1"}, "SRC", true)
	if err != nil {
		t.Fatalf("loopback allowed: %v", err)
	}
	if !slices.Equal(hosts, []string{"127.0.0.1"}) {
		t.Errorf("hosts = %v, want [127.0.0.1]", hosts)
	}
	if _, err := CheckRelayHosts([]string{"169.254.169.254"}, "SRC", true); err == nil {
		t.Error("allowLoopback also accepted the metadata address")
	}
}

// TestCheckRelayHostsMatchesPolicy checks the promise that a relay host
// CheckRelayHosts accepts is one the policy allows for the openai adapter.
func TestCheckRelayHostsMatchesPolicy(t *testing.T) {
	hosts, err := CheckRelayHosts([]string{"relay.example.com 203.0.113.7 2001:db8::1"}, "SRC", false)
	if err != nil {
		t.Fatalf("CheckRelayHosts: %v", err)
	}
	p := NewPolicy(hosts, false)
	for _, u := range []string{"https://relay.example.com/v1", "https://203.0.113.7/v1", "https://[2001:db8::1]/v1"} {
		if err := p.Check("openai", u); err != nil {
			t.Errorf("Check(%s) = %v, want allowed", u, err)
		}
	}
	if err := p.Check("anthropic", "https://relay.example.com/v1"); !errors.Is(err, ErrNotAllowed) {
		t.Errorf("relay host allowed for anthropic: %v", err)
	}
}
