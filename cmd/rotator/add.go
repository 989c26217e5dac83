package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

const addUsage = `
Usage: rotator add SECRET --provider NAME --base-url URL [flags]

Creates a managed secret on the file store: its settings as tags, and
rotation enabled on the given schedule. The secret has no key yet: stage
one with 'rotator stage', then run 'rotator rotate-now' (or 'rotator serve').
It works on the file store only: on AWS, Terraform creates secrets.

Every setting is checked (provider, base URL against the host allow-list,
schedule) before anything is written. 'rotator update' changes them later.

Example:
  rotator add prod/openai --provider openai --base-url https://api.openai.com/v1 \
    --required-models "gpt-4o gpt-4o-mini" --schedule 'rate(30 days)' --window 3h
`

type addFlags struct {
	storeFlags
	output      outputFlag
	values      *settingsValues
	description string
}

func (a *app) add(ctx context.Context, args []string) error {
	f := addFlags{output: outputText}
	fs := a.newFlagSet("add", addUsage)
	f.registerStore(fs, fileStoreHelp)
	f.registerHostPolicy(fs)
	f.output.register(fs)
	f.values = registerSettingsFlags(fs, map[string]string{
		keystore.TagIssuer: keystore.IssuerStaged, keystore.TagProbe: keystore.ProbeModels, keystore.TagGrace: "24h",
	}, "rate(30 days)")
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
	if s.store.Kind == storeurl.AWS {
		return cli.WithCode(exitError, fmt.Errorf("add: store %s is on AWS: rotator add creates secrets on the file store only", s.store.Raw)).
			WithHint("on AWS, Terraform creates secrets with their settings tags and rotation rules")
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
	tags := map[string]string{}
	f.values.applyTags(tags, func(string) bool { return true })
	if err := checkSettingsTags("add", tags, func(string) bool { return true }, policy); err != nil {
		return nil, none, err
	}
	rules := keystore.RotationRules{
		ScheduleExpression: strings.TrimSpace(f.values.schedule), Duration: strings.TrimSpace(f.values.window),
	}
	if err := checkRules("add", rules); err != nil {
		return nil, none, err
	}
	if n := utf8.RuneCountInString(f.description); n > maxDescriptionLen {
		return nil, none, cli.Usagef("add: --description is %d characters long: the maximum is %d", n, maxDescriptionLen)
	}
	return tags, rules, nil
}

// createManaged creates the secret with its tags and enables rotation.
func createManaged(ctx context.Context, store keystore.Store, secretID, description string,
	tags map[string]string, rules keystore.RotationRules) error {
	_, err := store.Create(ctx, keystore.CreateInput{SecretID: secretID, Description: description, Tags: tags})
	if errors.Is(err, keystore.ErrExists) {
		return cli.WithCode(exitError, fmt.Errorf("add: secret %s already exists", secretID)).
			WithHint("choose another name, or see it with 'rotator status %s'", secretID)
	}
	if errors.Is(err, keystore.ErrInvalidParameter) {
		// Every parameter of Create comes from a flag or the SECRET argument.
		return cli.Usagef("add: %w", err)
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
