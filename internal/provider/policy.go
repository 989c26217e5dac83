package provider

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ErrNotAllowed matches every refusal of the host policy: a base URL whose
// host, scheme or address may not receive a key, and a connection refused at
// dial time. Use errors.Is.
var ErrNotAllowed = errors.New("not allowed by the host policy")

// ErrLoopbackNotAllowed matches the refusal of a loopback host or address
// by a policy that does not allow loopback. It matches ErrNotAllowed too.
var ErrLoopbackNotAllowed = fmt.Errorf("loopback %w", ErrNotAllowed)

// policyError is a refusal whose message names the URL or address and
// the fix. Its kind is ErrNotAllowed or an error that wraps it.
type policyError struct {
	kind error
	msg  string
}

func (e *policyError) Error() string { return e.msg }
func (e *policyError) Unwrap() error { return e.kind }

func reject(format string, args ...any) error {
	return &policyError{kind: ErrNotAllowed, msg: fmt.Sprintf(format, args...)}
}

func rejectLoopback(format string, args ...any) error {
	return &policyError{kind: ErrLoopbackNotAllowed, msg: fmt.Sprintf(format, args...)}
}

// builtinHosts is each adapter's allow-list. The openai adapter also accepts
// the policy's relay hosts; the others accept only their provider's host,
// because their request shapes are that provider's own.
var builtinHosts = map[string]string{
	"openai":     "api.openai.com",
	"anthropic":  "api.anthropic.com",
	"gemini":     "generativelanguage.googleapis.com",
	"openrouter": "openrouter.ai",
}

// relayProvider is the one adapter that relay hosts apply to.
const relayProvider = "openai"

// relayHint is the fix for a host missing from the allow-list.
const relayHint = "add the host to the relay hosts (KEYTURN_RELAY_HOSTS / --relay-host)"

// Policy decides where keys may be sent. Each adapter has a built-in host.
// Relay hosts extend the openai adapter's list for OpenAI-compatible
// relays. They come from the rotator's or router's own configuration, never
// from a secret's tags. Only https is allowed, except to loopback hosts
// (127.0.0.0/8, ::1, localhost) over http or https when the policy allows
// loopback. Link-local, private, cloud metadata, unspecified, multicast and
// reserved addresses are refused both in Check and when a connection is
// made, so a name that resolves to such an address is refused as well.
// Check also refuses, before any lookup, cloud metadata host names and
// hosts written as numbers other than a dotted-decimal IPv4 address, which
// some resolvers read as addresses.
//
// A Policy is safe for concurrent use.
type Policy struct {
	relayHosts    []string // normalized, sorted
	allowLoopback bool

	once      sync.Once
	transport *http.Transport
	client    *http.Client
}

// NewPolicy returns a policy that also allows extraHosts for the openai
// adapter, and loopback hosts for every adapter when allowLoopback is set
// (tests and rotator dev). Host names are compared case-insensitively and
// without a trailing dot. An entry with a scheme, port or path never
// matches, so validate user input with ParseRelayHosts first.
func NewPolicy(extraHosts []string, allowLoopback bool) *Policy {
	p := &Policy{allowLoopback: allowLoopback}
	for _, h := range extraHosts {
		if h = normalizeHost(h); h != "" && !slices.Contains(p.relayHosts, h) {
			p.relayHosts = append(p.relayHosts, h)
		}
	}
	slices.Sort(p.relayHosts)
	return p
}

// DefaultPolicy returns a policy that allows only the built-in hosts over
// https.
func DefaultPolicy() *Policy { return NewPolicy(nil, false) }

// RelayHosts returns the relay hosts, normalized and sorted.
func (p *Policy) RelayHosts() []string { return slices.Clone(p.relayHosts) }

// AllowsLoopback reports whether loopback hosts may receive keys.
func (p *Policy) AllowsLoopback() bool { return p.allowLoopback }

// ParseRelayHosts splits a list of relay hosts separated by commas or
// spaces, as KEYTURN_RELAY_HOSTS holds them, and checks that each is a bare
// host name or IP address. It rejects a cloud metadata host name, and a
// host of numbers only in any form but a dotted-decimal IPv4 address
// (2852039166, 0xa9fea9fe, 0251.0376.0251.0376, 10.1), which Check would
// refuse. Whether an IP address may receive keys is Check's decision.
func ParseRelayHosts(list string) ([]string, error) {
	fields := strings.FieldsFunc(list, isListSeparator)
	var hosts []string
	for _, f := range fields {
		if err := checkRelayHost(f); err != nil {
			return nil, err
		}
		hosts = append(hosts, normalizeHost(f))
	}
	return hosts, nil
}

func checkRelayHost(h string) error {
	if strings.Contains(h, "://") || strings.ContainsAny(h, "/:@?#[]") {
		if _, err := netip.ParseAddr(h); err == nil {
			return nil // an IPv6 address
		}
		return fmt.Errorf("invalid relay host %q: give a host name such as relay.example.com, without scheme, port or path", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
			return fmt.Errorf("invalid relay host %q: a host name has letters, digits, '-' and dots", h)
		}
	}
	host := normalizeHost(h)
	if isNumericForm(host) {
		return fmt.Errorf("invalid relay host %q: a number that resolvers may read as an IPv4 address "+
			"(2852039166 and 0xa9fea9fe are both 169.254.169.254): give a host name, "+
			"or an IPv4 address as four decimal numbers (a.b.c.d)", h)
	}
	if isMetadataName(host) {
		return fmt.Errorf("invalid relay host %q: a cloud metadata host name, and keyturn never sends keys there: give the relay's host name", h)
	}
	return nil
}

func normalizeHost(h string) string {
	h = strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Unmap().String()
	}
	return h
}

// Check returns nil if keys of providerName may be sent to baseURL, and
// otherwise an error matching ErrNotAllowed that names the URL and the
// fix.
func (p *Policy) Check(providerName, baseURL string) error {
	builtin, ok := builtinHosts[providerName]
	if !ok {
		return reject("unknown provider %q: use one of openai, anthropic, gemini, openrouter", providerName)
	}
	u, err := url.Parse(baseURL)
	if err != nil || u.Host == "" || u.Opaque != "" {
		return reject("base URL %q is not an absolute URL: use https://HOST/PATH", RedactURL(baseURL))
	}
	if u.User != nil {
		return reject("base URL %q carries credentials: remove the user info", RedactURL(baseURL))
	}
	if u.Scheme != "https" && u.Scheme != "http" {
		return reject("base URL %q: scheme %q is not allowed: use https", baseURL, u.Scheme)
	}
	host := normalizeHost(u.Hostname())
	if err := checkHostName(baseURL, host); err != nil {
		return err
	}
	if loopback, err := p.checkAddress(baseURL, host); err != nil || loopback {
		return err
	}
	if host != builtin && !(providerName == relayProvider && slices.Contains(p.relayHosts, host)) {
		return rejectHost(providerName, baseURL, host, builtin)
	}
	if u.Scheme != "https" {
		return reject("base URL %q: plain http to %s would expose the key: use https", baseURL, host)
	}
	return nil
}

// checkHostName refuses a host that names a refused address without being
// one: a numeric form other than dotted decimal, or a cloud metadata name.
func checkHostName(baseURL, host string) error {
	if isNumericForm(host) {
		return reject("base URL %q: host %s is a number that resolvers may read as an IPv4 address: "+
			"write an address as four decimal numbers (a.b.c.d), or use the provider's host name", baseURL, host)
	}
	if isMetadataName(host) {
		return reject("base URL %q: %s is a cloud metadata host name, and keyturn never sends keys there: use the provider's public host", baseURL, host)
	}
	return nil
}

// checkAddress refuses a host that is, or names, a refused address class.
// It reports loopback when host is a loopback host that the policy allows,
// over either scheme.
func (p *Policy) checkAddress(baseURL, host string) (loopback bool, err error) {
	class := hostClass(host)
	switch {
	case class == "":
		return false, nil
	case class == classLoopback && p.allowLoopback:
		return true, nil
	case class == classLoopback:
		return false, rejectLoopback("base URL %q: %s is a loopback host, which this policy refuses: loopback is allowed only in tests and rotator dev", baseURL, host)
	}
	return false, reject("base URL %q: %s is %s address, and keyturn never sends keys there: use the provider's public host", baseURL, host, article(class))
}

func rejectHost(providerName, baseURL, host, builtin string) error {
	if providerName == relayProvider {
		return reject("base URL %q: host %s is not allowed for provider %s: use %s, or %s", baseURL, host, providerName, builtin, relayHint)
	}
	return reject("base URL %q: host %s is not allowed for provider %s: its only host is %s (relay hosts apply to provider %s only)", baseURL, host, providerName, builtin, relayProvider)
}

// RedactURL returns raw with any user info (user:password@) replaced by
// REDACTED, for quoting a base URL in an error or a log. It works on text
// that does not parse as a URL too, because such text may still carry
// credentials.
func RedactURL(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		if u.User == nil {
			return raw
		}
		c := *u
		c.User = url.User("REDACTED")
		return c.String()
	}
	rest := raw
	prefix := ""
	if i := strings.Index(raw, "://"); i >= 0 {
		prefix, rest = raw[:i+3], raw[i+3:]
	}
	authority := rest
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority = rest[:i]
	}
	at := strings.LastIndex(authority, "@")
	if at < 0 {
		return raw
	}
	return prefix + "REDACTED" + rest[at:]
}

// Address classes that keyturn refuses. Loopback is refused unless the
// policy allows it.
const (
	classLoopback    = "loopback"
	classMetadata    = "cloud metadata"
	classPrivate     = "private"
	classLinkLocal   = "link-local"
	classUnspecified = "unspecified"
	classMulticast   = "multicast"
	classReserved    = "reserved"
	classShared      = "shared (carrier-grade NAT)"
)

// rejectedPrefixes are the classes that netip.Addr has no method for. The
// metadata addresses come first: they also fall in the link-local and
// private ranges, and naming them makes the refusal clearer.
var rejectedPrefixes = []struct {
	prefix netip.Prefix
	class  string
}{
	{netip.MustParsePrefix("169.254.169.254/32"), classMetadata},
	{netip.MustParsePrefix("fd00:ec2::254/128"), classMetadata},
	{netip.MustParsePrefix("0.0.0.0/8"), classUnspecified},
	{netip.MustParsePrefix("100.64.0.0/10"), classShared},
	{netip.MustParsePrefix("240.0.0.0/4"), classReserved},
}

// hostClass returns the refused class of a URL host (an IP address or a
// name), or "" for a host that may be public. Names are resolved only at
// dial time.
func hostClass(host string) string {
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return classLoopback
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	return addrClass(a)
}

// addrClass returns the refused class of an IP address, or "" for a public
// address.
// NOTE: IPv6 forms that embed an IPv4 address other than the IPv4-mapped
// one (6to4, NAT64) are judged as IPv6 addresses, so an embedded private
// IPv4 address there is not seen.
func addrClass(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	for _, r := range rejectedPrefixes {
		if r.prefix.Contains(a) {
			return r.class
		}
	}
	switch {
	case a.IsUnspecified():
		return classUnspecified
	case a.IsLoopback():
		return classLoopback
	case a.IsPrivate():
		return classPrivate
	case a.IsLinkLocalUnicast():
		return classLinkLocal
	case a.IsMulticast():
		return classMulticast
	}
	return ""
}

// controlDial runs after name resolution, before each connection, so it
// checks the address actually dialled. A public name that resolves to a
// refused address (DNS rebinding) is refused here.
func (p *Policy) controlDial(network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return reject("connection to %q refused: not an IP address and port", address)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return reject("connection to %q refused: not an IP address", address)
	}
	class := addrClass(a)
	switch {
	case class == "" || (class == classLoopback && p.allowLoopback):
		return nil
	case class == classLoopback:
		return rejectLoopback("connection to %s refused: %s is a loopback address, which this policy refuses", address, a.Unmap())
	}
	return reject("connection to %s refused: %s is %s address, and keyturn never sends keys there", address, a.Unmap(), article(class))
}

// RedirectError is returned (wrapped in a *url.Error) by the policy's
// client for any redirect, because following one could carry the key to
// another URL.
type RedirectError struct {
	Status int    // the redirect's HTTP status
	Host   string // the host of the Location, "" if it had none
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("redirect (%d) to host %q not followed: keyturn never follows redirects with a key: set keyturn:base-url to the final location", e.Status, e.Host)
}

// Transport returns the policy's shared transport: its dialer refuses
// connections to refused addresses, and it ignores HTTP_PROXY and
// HTTPS_PROXY, because a proxy would see where every key goes (and, over
// http, the key itself). Do not modify it.
func (p *Policy) Transport() *http.Transport {
	p.init()
	return p.transport
}

// Client returns the policy's shared client for key-bearing requests. It
// uses Transport and follows no redirects: a redirect ends the request with
// a *RedirectError. It sets no timeout; bound each request with its
// context.
func (p *Policy) Client() *http.Client {
	p.init()
	return p.client
}

func (p *Policy) init() {
	p.once.Do(func() {
		dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second, Control: p.controlDial}
		p.transport = &http.Transport{
			Proxy:                 nil,
			DialContext:           dialer.DialContext,
			ForceAttemptHTTP2:     true,
			TLSClientConfig:       &tls.Config{MinVersion: tls.VersionTLS12},
			TLSHandshakeTimeout:   10 * time.Second,
			MaxIdleConns:          16,
			IdleConnTimeout:       90 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
		p.client = &http.Client{Transport: p.transport, CheckRedirect: rejectRedirect}
	})
}

func rejectRedirect(req *http.Request, _ []*http.Request) error {
	e := &RedirectError{Host: req.URL.Hostname()}
	if req.Response != nil {
		e.Status = req.Response.StatusCode
	}
	return e
}
