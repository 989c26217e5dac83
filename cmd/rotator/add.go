package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

const addUsage = `
Usage: rotator add SECRET --provider NAME --base-url URL [flags]

Creates a managed secret on the file store: its settings as tags, and
rotation enabled on the given schedule. The secret has no key yet: stage
one with 'rotator stage', then run 'rotator rotate-now' (or 'rotator serve').
On AWS, Terraform creates secrets; this command rejects aws:// stores.

Every setting is checked (provider, base URL against the host allow-list,
schedule) before anything is written.

Example:
  rotator add prod/openai --provider openai --base-url https://api.openai.com/v1 \
    --required-models "gpt-4o gpt-4o-mini" --schedule 'rate(30 days)' --window 3h
`

type addFlags struct {
	storeFlags
	output         outputFlag
	settings       keystore.Settings
	requiredModels string
	grace          string
	schedule       string
	window         string
	description    string
}

func (a *app) add(ctx context.Context, args []string) error {
	f := addFlags{output: outputText}
	fs := a.newFlagSet("add", addUsage)
	f.register(fs)
	f.output.register(fs)
	fs.StringVar(&f.settings.Provider, "provider", "", "provider adapter `NAME`: "+strings.Join(keystore.Providers, ", ")+" (openai also covers OpenAI-compatible relays)")
	fs.StringVar(&f.settings.BaseURL, "base-url", "", "the provider's API root `URL`, such as https://api.openai.com/v1")
	fs.StringVar(&f.settings.Issuer, "issuer", keystore.IssuerStaged, "where new keys come from: staged (a person stages each key) or dev (minted at the stand-in provider)")
	fs.StringVar(&f.settings.IssuerSecret, "issuer-secret", "", "`ID` of the secret holding the issuer's admin or management key (needed by every issuer but staged)")
	fs.StringVar(&f.requiredModels, "required-models", "", "space-separated model `IDS` the key must list, such as \"gpt-4o gpt-4o-mini\"")
	fs.StringVar(&f.settings.Probe, "probe", keystore.ProbeModels, "how a key is proven: models (list models) or inference (a one-token request)")
	fs.StringVar(&f.grace, "grace", "24h", "`DURATION` an old key stays valid after it stops being current, such as 24h or 90m")
	fs.StringVar(&f.schedule, "schedule", "rate(30 days)", "rotation schedule `EXPR`: rate(N hours|days) or cron(0 H DOM MON DOW *) in UTC, at most every 4 hours")
	fs.StringVar(&f.window, "window", "", "`DURATION` of the window in which a scheduled rotation starts, such as 3h (default: the schedule's)")
	fs.StringVar(&f.description, "description", "", "free-text description of the secret")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	secretID, err := oneSecretArg("add", positional)
	if err != nil {
		return err
	}
	return a.runAdd(ctx, secretID, &f)
}

func (a *app) runAdd(ctx context.Context, secretID string, f *addFlags) error {
	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	if s.store.kind == storeAWS {
		return withCode(exitError, fmt.Errorf("add: store %s is on AWS: rotator add creates secrets on the file store only", s.store.raw)).
			withHint("on AWS, Terraform creates secrets with their settings tags and rotation rules")
	}
	tags, rules, err := f.validate(s.policy())
	if err != nil {
		return err
	}
	store, closeStore, err := a.openStore(ctx, s, true)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := createManaged(ctx, store, secretID, f.description, tags, rules); err != nil {
		return err
	}
	return a.printAdded(secretID, tags, rules, f.output)
}

// maxDescriptionLen is Secrets Manager's limit on a secret's description,
// in characters, which both stores apply.
const maxDescriptionLen = 2048

// validate builds the tags and rules add will write and checks them the way
// the rotation engine will read them. Every failure is a usage error,
// because each comes from a flag value.
func (f *addFlags) validate(policy *provider.Policy) (map[string]string, keystore.RotationRules, error) {
	var none keystore.RotationRules
	if err := f.checkIssuer(); err != nil {
		return nil, none, err
	}
	st := f.settings
	st.RequiredModels = strings.Fields(f.requiredModels)
	tags := st.Tags()
	tags[keystore.TagGrace] = strings.TrimSpace(f.grace)
	settings, err := keystore.SettingsFromTags(tags)
	if err != nil {
		return nil, none, usageErrorf("add: %v", err).withHint("run 'rotator help add' for the flags")
	}
	if err := checkBaseURLTag(settings.BaseURL); err != nil {
		return nil, none, err
	}
	if err := provider.Validate(settings, policy); err != nil {
		return nil, none, usageErrorf("add: %w", err).
			withHint("keys go only to the providers' own hosts over https; add a relay with --relay-host HOST, or allow a loopback test server with --allow-loopback")
	}
	rules, err := f.rules()
	if err != nil {
		return nil, none, err
	}
	if n := utf8.RuneCountInString(f.description); n > maxDescriptionLen {
		return nil, none, usageErrorf("add: --description is %d characters long: the maximum is %d", n, maxDescriptionLen)
	}
	return tags, rules, nil
}

// checkIssuer rejects an unknown --issuer before the settings checks, which
// would otherwise ask for the --issuer-secret of an issuer that does not
// exist.
func (f *addFlags) checkIssuer() error {
	issuer := f.settings.Issuer
	if issuer == keystore.IssuerStaged || slices.Contains(knownIssuers, issuer) {
		return nil
	}
	return usageErrorf("add: unknown issuer %q: use %s or %s",
		issuer, keystore.IssuerStaged, strings.Join(knownIssuers, ", "))
}

// checkBaseURLTag rejects a base URL that cannot be a tag value. Secrets
// Manager's tag values may not contain [ or ], and both stores apply that
// rule, so a URL with an IPv6 address such as http://[::1]:8080 can never be
// stored.
func checkBaseURLTag(baseURL string) error {
	if !strings.ContainsAny(baseURL, "[]") {
		return nil
	}
	return usageErrorf("add: --base-url %q cannot be stored: tag values may not contain [ or ] (Secrets Manager's tag character rule), so an IPv6 address cannot be part of a base URL", baseURL).
		withHint("use the IPv4 loopback address instead, such as http://127.0.0.1:PORT/v1, or a host name")
}

// rules builds the rotation rules from --schedule and --window and checks
// them.
func (f *addFlags) rules() (keystore.RotationRules, error) {
	rules := keystore.RotationRules{ScheduleExpression: strings.TrimSpace(f.schedule), Duration: strings.TrimSpace(f.window)}
	if _, err := schedule.Parse(rules); err != nil {
		flags := fmt.Sprintf("--schedule %q", rules.ScheduleExpression)
		if f.window != "" {
			flags += fmt.Sprintf(" --window %q", f.window)
		}
		return keystore.RotationRules{}, usageErrorf("add: %s: %v", flags, err)
	}
	return rules, nil
}

// createManaged creates the secret with its tags and enables rotation.
func createManaged(ctx context.Context, store keystore.Store, secretID, description string,
	tags map[string]string, rules keystore.RotationRules) error {
	_, err := store.Create(ctx, keystore.CreateInput{SecretID: secretID, Description: description, Tags: tags})
	if errors.Is(err, keystore.ErrExists) {
		return withCode(exitError, fmt.Errorf("add: secret %s already exists", secretID)).
			withHint("choose another name, or see it with 'rotator status %s'", secretID)
	}
	if errors.Is(err, keystore.ErrInvalidParameter) {
		// Every parameter of Create comes from a flag or the SECRET argument.
		return usageErrorf("add: %w", err)
	}
	if err != nil {
		return fmt.Errorf("add: %w", err)
	}
	if err := store.SetRotation(ctx, secretID, keystore.Rotation{Enabled: true, Rules: rules}); err != nil {
		return fmt.Errorf("add: secret %s was created but its rotation could not be enabled: %w", secretID, err)
	}
	return nil
}

type addedJSON struct {
	SecretID string            `json:"secret_id"`
	Tags     map[string]string `json:"tags"`
	Schedule string            `json:"schedule"`
	Window   string            `json:"window,omitempty"`
}

func (a *app) printAdded(secretID string, tags map[string]string, rules keystore.RotationRules, out outputFlag) error {
	if out == outputJSON {
		return a.writeJSON(addedJSON{SecretID: secretID, Tags: tags, Schedule: rules.ScheduleExpression, Window: rules.Duration})
	}
	fmt.Fprintf(a.stdout, "added %s (provider %s, issuer %s, schedule %s)\n",
		secretID, tags[keystore.TagProvider], tags[keystore.TagIssuer], rules.ScheduleExpression)
	if tags[keystore.TagIssuer] == keystore.IssuerStaged {
		fmt.Fprintf(a.stdout, "next: stage its first key with 'rotator stage %s --file KEYFILE --validate', then 'rotator rotate-now %s'\n", secretID, secretID)
	}
	return nil
}
