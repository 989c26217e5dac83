package upstream

import (
	"errors"
	"fmt"
	"net/url"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/keystore"
)

// UnusableError is the error of a version that keyturn does not send a key
// with: its value does not parse, it records no provider or base URL, or
// its base URL is not allowed. Error returns the public message of the
// client's 502, which names the secret, the version and the fix but never
// the base URL's host.
type UnusableError struct {
	SecretID  string
	VersionID string
	// Reason is a fixed phrase for the cause, such as "base URL refused by
	// the host policy: loopback not allowed", for health reports.
	Reason string
	// Host and Detail are for the log only: the base URL's host, and the
	// reason in full, which names the URL without user info. Both are ""
	// when the base URL was not checked.
	Host, Detail string

	msg string
}

func (e *UnusableError) Error() string { return e.msg }

// Reasons of an UnusableError.
const (
	reasonMalformed     = "value malformed"
	reasonNoSettings    = "no provider or base URL recorded"
	reasonQuery         = "base URL has a query or fragment"
	reasonRefused       = "base URL refused by the host policy"
	reasonLoopback      = reasonRefused + ": loopback not allowed"
	reasonNotListed     = reasonRefused + ": host not on the allow-list"
	reasonNotProviderOf = reasonRefused + ": not the provider's host"
)

func malformedValue(v keystore.Version, err error) *UnusableError {
	return &UnusableError{SecretID: v.SecretID, VersionID: v.VersionID, Reason: reasonMalformed,
		msg: fmt.Sprintf("version %s of secret %q cannot be used: %v: "+
			"stage a valid value with 'rotator stage %s --file KEYFILE --validate' and run 'rotator rotate-now %s'",
			v.VersionID, v.SecretID, err, v.SecretID, v.SecretID)}
}

func missingSettings(v keystore.Version) *UnusableError {
	return &UnusableError{SecretID: v.SecretID, VersionID: v.VersionID, Reason: reasonNoSettings,
		msg: fmt.Sprintf("version %s of secret %q records no settings.provider or settings.base_url, "+
			"so keyturn does not know where its key may be sent: run 'rotator rotate-now %s', "+
			"which records the settings the new key was validated with",
			v.VersionID, v.SecretID, v.SecretID)}
}

// baseURLNotAllowed returns the error of a version whose base URL the
// router does not send keys to. reason is one of the reasons above; detail
// names the URL without user info.
func baseURLNotAllowed(secretID, versionID, baseURL, reason, detail string) *UnusableError {
	return &UnusableError{SecretID: secretID, VersionID: versionID, Reason: reason,
		Host: redactedHost(baseURL), Detail: detail, msg: notAllowedMessage(secretID, versionID, reason)}
}

// notAllowedMessage is the client's message for a base URL that keyturn
// does not send keys to. It names no host: where a secret's key goes is for
// the operator, whose log line has the host and the reason.
func notAllowedMessage(secretID, versionID, reason string) string {
	prefix := fmt.Sprintf("keyturn does not send the key of secret %q (version %s) to its base URL", secretID, versionID)
	rotate := fmt.Sprintf("set %s to an allowed provider API root and run 'rotator rotate-now %s'", keystore.TagBaseURL, secretID)
	switch reason {
	case reasonLoopback:
		return prefix + ", a loopback host, because this router does not allow loopback: " +
			"set allow_loopback: true in the router config, or KEYTURN_ALLOW_LOOPBACK=true, for tests and development only. " +
			"Otherwise " + rotate
	case reasonNotListed:
		return prefix + ", because its host is not on this router's allow-list: " +
			"add the host, which the router's log names, to relay_hosts in the router config, or " + rotate
	}
	return prefix + ": the router's log has the reason: " + rotate
}

// policyReason returns the reason for the host policy's refusal err of
// baseURL for adapter. The policy's errors distinguish only loopback, so a
// refusal of another kind is checked again with the host added as a relay
// host. If that policy allows the URL, the host is all that was wrong.
func (p *Proxy) policyReason(adapter, baseURL string, err error) string {
	if errors.Is(err, provider.ErrLoopbackNotAllowed) {
		return reasonLoopback
	}
	u, parseErr := url.Parse(baseURL)
	if parseErr != nil || u.Hostname() == "" {
		return reasonRefused
	}
	relaxed := provider.NewPolicy([]string{u.Hostname()}, p.policy.AllowsLoopback())
	if relaxed.Check(relayAdapter, baseURL) != nil {
		return reasonRefused
	}
	if adapter == relayAdapter {
		return reasonNotListed
	}
	return reasonNotProviderOf
}

// relayAdapter is the adapter that the policy's relay hosts apply to.
const relayAdapter = "openai"
