package provider

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/keyturn/keyturn/keystore"
)

// builtinRoots are the API roots of the built-in hosts: a base URL on one
// of these hosts with another path would make every request miss.
var builtinRoots = map[string][]string{
	"api.openai.com":                    {"/v1"},
	"api.anthropic.com":                 {"/v1"},
	"generativelanguage.googleapis.com": {"/v1beta", "/v1"},
	"openrouter.ai":                     {"/api/v1"},
}

// Validate checks settings before they are saved: their shape, that the
// host policy lets their base URL receive keys, that a built-in host's base
// URL is its API root, and that an inference probe has a model to call.
// A nil policy is DefaultPolicy().
func Validate(settings keystore.Settings, policy *Policy) error {
	if err := settings.Validate(); err != nil {
		return err
	}
	if policy == nil {
		policy = DefaultPolicy()
	}
	if err := policy.Check(settings.Provider, settings.BaseURL); err != nil {
		return fmt.Errorf("tag %s: %w", keystore.TagBaseURL, err)
	}
	if err := checkRoot(settings.BaseURL); err != nil {
		return err
	}
	if settings.Probe == keystore.ProbeInference && len(settings.RequiredModels) == 0 {
		return errNoProbeModel
	}
	return nil
}

func checkRoot(baseURL string) error {
	u, err := url.Parse(baseURL)
	if err != nil {
		return fmt.Errorf("tag %s: %q is not a URL", keystore.TagBaseURL, baseURL)
	}
	roots, ok := builtinRoots[normalizeHost(u.Hostname())]
	if !ok {
		return nil
	}
	if slices.Contains(roots, strings.TrimRight(u.Path, "/")) {
		return nil
	}
	return fmt.Errorf("tag %s: %q is not the API root of %s: use https://%s%s",
		keystore.TagBaseURL, baseURL, u.Hostname(), u.Hostname(), roots[0])
}
