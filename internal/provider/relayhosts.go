package provider

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strings"
)

// CheckRelayHosts checks and normalizes the relay hosts that source (a
// flag, an environment variable or a config key, named in the errors)
// lists. Each value may hold several hosts separated by commas or spaces.
// A relay host must be a bare host name, or an IP address that a policy
// made with allowLoopback would send keys to: a host the policy can never
// match would otherwise be ignored without a word. Beyond ParseRelayHosts,
// it words a URL, a wildcard and a refused IP address as relay-host errors
// and explains what a relay host is.
func CheckRelayHosts(values []string, source string, allowLoopback bool) ([]string, error) {
	var hosts []string
	for _, v := range values {
		for _, h := range strings.FieldsFunc(v, isListSeparator) {
			if err := checkRelayHostForm(h, allowLoopback); err != nil {
				return nil, fmt.Errorf("invalid relay host %q in %s: %w: %s", h, source, err, relayHostMeaning)
			}
			parsed, err := ParseRelayHosts(h)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", source, err)
			}
			hosts = append(hosts, parsed...)
		}
	}
	return hosts, nil
}

// relayHostMeaning explains what a relay host is, for errors about one.
const relayHostMeaning = "a relay host is the public host name of an OpenAI-compatible relay that keys may be sent to, such as relay.example.com"

func isListSeparator(r rune) bool {
	return r == ',' || r == ' ' || r == '\t' || r == '\n'
}

// checkRelayHostForm rejects the forms ParseRelayHosts words less
// helpfully for this use: a URL, a wildcard, and an IP address that the
// host policy refuses.
func checkRelayHostForm(h string, allowLoopback bool) error {
	if strings.Contains(h, "://") {
		if u, err := url.Parse(h); err == nil && u.Hostname() != "" {
			return fmt.Errorf("give a host name, not a URL: use %s", u.Hostname())
		}
		return fmt.Errorf("give a host name, not a URL")
	}
	if strings.Contains(h, "*") {
		return fmt.Errorf("wildcards are not supported: list each host name")
	}

	addr, err := netip.ParseAddr(h)
	if err != nil {
		return nil
	}
	// Check judges the address exactly as it judges a base URL's host, so
	// a relay host it accepts here is one it will allow.
	host := addr.String()
	if addr.Is6() {
		host = "[" + host + "]"
	}
	err = NewPolicy([]string{h}, allowLoopback).Check(relayProvider, "https://"+host+"/v1")
	if err == nil {
		return nil
	}

	// Drop the policy's `base URL "…": ` prefix, which names a URL the
	// user never gave.
	msg := err.Error()
	if i := strings.Index(msg, `": `); strings.HasPrefix(msg, "base URL ") && i > 0 {
		msg = msg[i+3:]
	}
	// The policy's advice is for a base URL; CheckRelayHosts explains what
	// a relay host is instead.
	msg = strings.TrimSuffix(msg, ": use the provider's public host")
	return errors.New(msg)
}
