package main

import (
	"flag"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

// settingFlag ties a flag of add and update to the settings tag it sets.
type settingFlag struct {
	flag, tag, usage string
}

// settingFlags lists the flags of the settings tags, in the order add and
// update print them. Each flag is the tag's name without keyturn:.
var settingFlags = []settingFlag{
	{"provider", keystore.TagProvider, "provider adapter `NAME`: " + strings.Join(keystore.Providers, ", ") + " (openai also covers OpenAI-compatible relays)"},
	{"base-url", keystore.TagBaseURL, "the provider's API root `URL`, such as https://api.openai.com/v1"},
	{"issuer", keystore.TagIssuer, "`KIND` of issuer, where new keys come from: staged (a person stages each key) or dev (minted at the stand-in provider)"},
	{"issuer-secret", keystore.TagIssuerSecret, "`ID` of the secret holding the issuer's admin or management key (needed by every issuer but staged)"},
	{"required-models", keystore.TagRequiredModels, "space-separated model `IDS` the key must list, such as \"gpt-4o gpt-4o-mini\""},
	{"probe", keystore.TagProbe, "`KIND` of check that proves a key: models (list models) or inference (a one-token request)"},
	{"grace", keystore.TagGrace, "how long an old key stays valid after it stops being current, as a `DURATION` such as 24h or 90m"},
}

// settingsValues are the values of the settings flags by tag, and of
// --schedule and --window.
type settingsValues struct {
	tags     map[string]*string
	schedule string
	window   string
}

// registerSettingsFlags registers the settings flags on fs with the given
// defaults by tag, and --schedule and --window with defaultSchedule.
func registerSettingsFlags(fs *flag.FlagSet, defaults map[string]string, defaultSchedule string) *settingsValues {
	v := &settingsValues{tags: map[string]*string{}}
	for _, sf := range settingFlags {
		v.tags[sf.tag] = fs.String(sf.flag, defaults[sf.tag], sf.usage)
	}
	fs.StringVar(&v.schedule, "schedule", defaultSchedule, "rotation schedule `EXPR`: rate(N hours|days) or cron(0 H DOM MON DOW *) in UTC, at most every 4 hours")
	fs.StringVar(&v.window, "window", "", "`DURATION` of the window in which a scheduled rotation starts, such as 3h (default: the schedule's)")
	return v
}

// applyTags sets in tags the value of each settings flag for which given
// returns true, and deletes the tag of a flag given an empty value.
func (v *settingsValues) applyTags(tags map[string]string, given func(flagName string) bool) {
	for _, sf := range settingFlags {
		if !given(sf.flag) {
			continue
		}
		value := strings.TrimSpace(*v.tags[sf.tag])
		if sf.tag == keystore.TagRequiredModels {
			value = strings.Join(strings.Fields(value), " ")
		}
		if value == "" {
			delete(tags, sf.tag)
			continue
		}
		tags[sf.tag] = value
	}
}

// checkSettingsTags checks the settings tags that cmd (add or update) is
// about to write, the way the rotation engine will read them. Every failure
// is a usage error. Errors name the flag of a tag for which fromFlag
// returns true, and the tag otherwise.
func checkSettingsTags(cmd string, tags map[string]string, fromFlag func(tag string) bool, policy *provider.Policy) error {
	name := func(tag string) string {
		if fromFlag(tag) {
			return "--" + strings.TrimPrefix(tag, keystore.TagPrefix)
		}
		return "tag " + tag
	}
	if err := checkIssuer(cmd, tags[keystore.TagIssuer], name(keystore.TagIssuer)); err != nil {
		return err
	}
	for _, tag := range []string{keystore.TagProvider, keystore.TagBaseURL} {
		if tags[tag] == "" {
			return cli.Usagef("%s: missing %s: %s", cmd, name(tag), requiredSettingText(tag))
		}
	}
	settings, err := keystore.SettingsFromTags(tags)
	if err != nil {
		return cli.Usagef("%s: %s", cmd, flagNamesFor(err.Error(), fromFlag)).
			WithHint("run 'rotator help %s' for the flags", cmd)
	}
	if err := checkBaseURLTag(cmd, name(keystore.TagBaseURL), settings.BaseURL); err != nil {
		return err
	}
	if err := provider.Validate(settings, policy); err != nil {
		return cli.Usagef("%s: %s", cmd, flagNamesFor(err.Error(), fromFlag)).
			WithHint("keys go only to the providers' own hosts over https; add a relay with --relay-host HOST, or allow a loopback test server with --allow-loopback")
	}
	return nil
}

// requiredSettingText describes the value a required setting takes.
func requiredSettingText(tag string) string {
	if tag == keystore.TagProvider {
		return "use one of " + strings.Join(keystore.Providers, ", ")
	}
	return "give the provider's API root, such as https://api.openai.com/v1"
}

// flagNamesFor rewrites the settings tags that msg names as the flags that
// set them, for the tags the user gave as flags.
func flagNamesFor(msg string, fromFlag func(tag string) bool) string {
	for tag, flagName := range tagFlags() {
		if !fromFlag(tag) {
			continue
		}
		// The tag must end where the name does, so that keyturn:issuer
		// does not match the start of keyturn:issuer-secret.
		re := regexp.MustCompile(`\btag ` + regexp.QuoteMeta(tag) + `([^\w-]|$)`)
		msg = re.ReplaceAllString(msg, "--"+flagName+"$1")
	}
	return msg
}

// tagFlags maps each settings tag to its flag name.
func tagFlags() map[string]string {
	m := map[string]string{}
	for _, sf := range settingFlags {
		m[sf.tag] = sf.flag
	}
	return m
}

// checkIssuer rejects an unknown issuer before the settings checks, which
// would otherwise ask for the issuer secret of an issuer that does not
// exist. An empty issuer is the default, staged.
func checkIssuer(cmd, issuer, name string) error {
	if issuer == "" || issuer == keystore.IssuerStaged || slices.Contains(knownIssuers, issuer) {
		return nil
	}
	return cli.Usagef("%s: %s: unknown issuer %q: use %s or %s",
		cmd, name, issuer, keystore.IssuerStaged, strings.Join(knownIssuers, ", "))
}

// checkBaseURLTag rejects a base URL that cannot be a tag value. Secrets
// Manager's tag values may not contain [ or ], and both stores apply that
// rule, so a URL with an IPv6 address such as http://[::1]:8080 can never be
// stored.
func checkBaseURLTag(cmd, name, baseURL string) error {
	if !strings.ContainsAny(baseURL, "[]") {
		return nil
	}
	return cli.Usagef("%s: %s %q cannot be stored: tag values may not contain [ or ] (Secrets Manager's tag character rule), so an IPv6 address cannot be part of a base URL", cmd, name, baseURL).
		WithHint("use the IPv4 loopback address instead, such as http://127.0.0.1:PORT/v1, or a host name")
}

// checkRules checks rotation rules that come from --schedule and --window.
func checkRules(cmd string, rules keystore.RotationRules) error {
	if _, err := schedule.Parse(rules); err != nil {
		flags := fmt.Sprintf("--schedule %q", rules.ScheduleExpression)
		if rules.ScheduleExpression == "" && rules.AutomaticallyAfterDays > 0 {
			flags = fmt.Sprintf("the stored schedule of every %d days", rules.AutomaticallyAfterDays)
		}
		if rules.Duration != "" {
			flags += fmt.Sprintf(" --window %q", rules.Duration)
		}
		return cli.Usagef("%s: %s: %v", cmd, flags, err)
	}
	return nil
}
