package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"maps"
	"strings"
	"text/tabwriter"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/storeurl"
	"github.com/keyturn/keyturn/keystore"
)

const updateUsage = `
Usage: rotator update SECRET [--base-url URL] [--provider NAME] [--issuer NAME]
         [--issuer-secret ID] [--required-models IDS] [--probe KIND]
         [--grace DURATION] [--schedule EXPR] [--window DURATION]
         [--no-schedule] [--output text|json]

Changes the settings tags or the rotation schedule of a managed secret on
the file store. Only the flags given change; an empty value, such as
--required-models "", removes that setting. The settings that result are
checked as 'rotator add' checks them, with the same exit codes, before
anything is written. It prints each change.

A new setting takes effect through the next validated rotation: the
current key (AWSCURRENT) keeps the settings it was validated with, which
its version records, and the next rotation proves its key against the new
ones. So a corrected --base-url is used from the next 'rotator rotate-now
SECRET' or scheduled rotation on. A rotation already in progress may keep
the settings it started with.

--no-schedule removes the schedule: the secret is then rotated only by
'rotator rotate-now'. A schedule given to a secret whose rotation is
disabled enables it.

It works on the file store only: on AWS, Terraform manages the tags and the
rotation rules. It rejects the secret of 'rotator dev', which dev sets up
at every start.

Example:
  rotator update prod/openai --base-url https://api.openai.com/v1
  rotator update prod/openai --schedule 'rate(7 days)' --window 2h
`

type updateFlags struct {
	storeFlags
	output     outputFlag
	values     *settingsValues
	noSchedule bool
	given      map[string]bool // flag names on the command line
}

func (a *app) update(ctx context.Context, args []string) error {
	f := updateFlags{output: outputText}
	fs := a.newFlagSet("update", updateUsage)
	f.registerStore(fs, fileStoreHelp)
	f.registerHostPolicy(fs)
	f.output.register(fs)
	f.values = registerSettingsFlags(fs, nil, "")
	fs.BoolVar(&f.noSchedule, "no-schedule", false, "remove the rotation schedule, so that only 'rotator rotate-now' rotates the secret")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	secretID, err := oneSecretArg("update", positional)
	if err != nil {
		return err
	}
	f.given = map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { f.given[fl.Name] = true })
	if err := f.checkGiven(); err != nil {
		return err
	}
	return a.runUpdate(ctx, secretID, &f)
}

// checkGiven rejects an update that changes nothing, or that both sets and
// removes the schedule.
func (f *updateFlags) checkGiven() error {
	changes := f.given["schedule"] || f.given["window"] || f.given["no-schedule"]
	for _, sf := range settingFlags {
		changes = changes || f.given[sf.flag]
	}
	if !changes {
		return cli.Usagef("update: nothing to change: pass at least one settings flag, such as --base-url URL or --schedule EXPR").
			WithHint("run 'rotator help update' for the flags")
	}
	if f.noSchedule && (f.given["schedule"] || f.given["window"]) {
		return cli.Usagef("update: --no-schedule removes the schedule, so it cannot be combined with --schedule or --window")
	}
	return nil
}

func (a *app) runUpdate(ctx context.Context, secretID string, f *updateFlags) error {
	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	if s.store.Kind == storeurl.AWS {
		return cli.WithCode(exitError, fmt.Errorf("update: store %s is on AWS, where Terraform manages the settings tags and rotation rules", s.store.Raw)).
			WithHint("change the secret's tags or its aws_secretsmanager_secret_rotation in Terraform")
	}
	store, closeStore, err := a.openStore(ctx, s, false)
	if err != nil {
		return err
	}
	defer closeStore()

	d, err := store.Describe(ctx, secretID)
	switch {
	case errors.Is(err, keystore.ErrNotFound):
		return notFoundError("update", secretID, s)
	case err != nil:
		return fmt.Errorf("update: %w", err)
	case !keystore.IsManaged(d.Tags):
		return notManagedError(ctx, store, "update", secretID)
	}
	if _, ok := d.Tags[devIntervalTag]; ok {
		return cli.WithCode(exitError, fmt.Errorf("update: %s is the secret of 'rotator dev', which sets its settings and interval at every start", secretID)).
			WithHint("restart 'rotator dev' with the --interval you want; to try update, add a secret of your own with 'rotator add'")
	}
	plan, err := f.plan(d, s.policy())
	if err != nil {
		return err
	}
	if err := plan.apply(ctx, store); err != nil {
		return err
	}
	return a.printUpdated(plan, f.output)
}

// updatePlan is the set of changes an update makes to one secret.
type updatePlan struct {
	secretID  string
	changes   []settingChange
	setTags   map[string]string
	untag     []string
	rotation  *keystore.Rotation // nil leaves the rotation as it is
	pendingID string             // a rotation in progress, which keeps its settings
}

// settingChange is one changed setting; an empty Old or New is unset.
type settingChange struct {
	Setting string `json:"setting"`
	Old     string `json:"old"`
	New     string `json:"new"`
}

// plan merges the flags into the secret's settings and checks the result.
func (f *updateFlags) plan(d keystore.Description, policy *provider.Policy) (*updatePlan, error) {
	p := &updatePlan{secretID: d.SecretID, setTags: map[string]string{}, pendingID: pendingVersion(d)}
	tags := maps.Clone(d.Tags)
	f.values.applyTags(tags, func(name string) bool { return f.given[name] })
	fromFlag := func(tag string) bool { return f.given[tagFlags()[tag]] }
	if err := checkSettingsTags("update", tags, fromFlag, policy); err != nil {
		return nil, err
	}
	for _, sf := range settingFlags {
		old, now := d.Tags[sf.tag], tags[sf.tag]
		if old == now {
			continue
		}
		p.changes = append(p.changes, settingChange{Setting: sf.flag, Old: old, New: now})
		if now == "" {
			p.untag = append(p.untag, sf.tag)
		} else {
			p.setTags[sf.tag] = now
		}
	}
	return p, f.planRotation(p, d.Rotation)
}

// planRotation adds the schedule change, if any, to p.
func (f *updateFlags) planRotation(p *updatePlan, current keystore.Rotation) error {
	if !f.given["schedule"] && !f.given["window"] && !f.noSchedule {
		return nil
	}
	rules := current.Rules
	switch {
	case f.noSchedule:
		rules = keystore.RotationRules{}
	case f.given["schedule"]:
		rules.ScheduleExpression = strings.TrimSpace(f.values.schedule)
		rules.AutomaticallyAfterDays = 0
	}
	if f.given["window"] {
		rules.Duration = strings.TrimSpace(f.values.window)
		if rules.ScheduleExpression == "" && rules.AutomaticallyAfterDays == 0 {
			return cli.Usagef("update: --window needs a schedule, and %s has none", p.secretID).
				WithHint("pass --schedule EXPR too, such as --schedule 'rate(7 days)' --window %s", rules.Duration)
		}
	}
	if !f.noSchedule {
		if err := checkRules("update", rules); err != nil {
			return err
		}
	}
	next := keystore.Rotation{Enabled: current.Enabled || !rules.IsZero(), LambdaARN: current.LambdaARN, Rules: rules}
	if next.Enabled == current.Enabled && next.Rules == current.Rules {
		return nil
	}
	p.rotation = &next
	if old, now := rulesText(current), rulesText(next); old != now {
		p.changes = append(p.changes, settingChange{Setting: "schedule", Old: old, New: now})
	}
	return nil
}

// rulesText words a rotation configuration for the list of changes.
func rulesText(r keystore.Rotation) string {
	var text string
	switch {
	case r.Rules.ScheduleExpression != "":
		text = r.Rules.ScheduleExpression
	case r.Rules.AutomaticallyAfterDays > 0:
		text = fmt.Sprintf("every %d days", r.Rules.AutomaticallyAfterDays)
	default:
		text = "none"
	}
	if r.Rules.Duration != "" {
		text += ", window " + r.Rules.Duration
	}
	if !r.Enabled {
		text += " (rotation disabled)"
	}
	return text
}

// apply writes the plan: tags first, then the rotation configuration.
func (p *updatePlan) apply(ctx context.Context, store keystore.Store) error {
	if len(p.setTags) > 0 {
		if err := store.Tag(ctx, p.secretID, p.setTags); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	if len(p.untag) > 0 {
		if err := store.Untag(ctx, p.secretID, p.untag); err != nil {
			return fmt.Errorf("update: %w", err)
		}
	}
	if p.rotation != nil {
		if err := store.SetRotation(ctx, p.secretID, *p.rotation); err != nil {
			return fmt.Errorf("update: the settings tags of %s were updated but its schedule was not: %w", p.secretID, err)
		}
	}
	return nil
}

type updatedJSON struct {
	SecretID string          `json:"secret_id"`
	Changes  []settingChange `json:"changes"`
	// Note is when the changed settings take effect.
	Note string `json:"note,omitempty"`
}

func (a *app) printUpdated(p *updatePlan, out outputFlag) error {
	note := p.note()
	if out == outputJSON {
		changes := p.changes
		if changes == nil {
			changes = []settingChange{}
		}
		return a.writeJSON(updatedJSON{SecretID: p.secretID, Changes: changes, Note: note})
	}
	if len(p.changes) == 0 {
		fmt.Fprintf(a.stdout, "%s is unchanged: its settings already have these values\n", p.secretID)
		return nil
	}
	fmt.Fprintf(a.stdout, "updated %s:\n", p.secretID)
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	for _, c := range p.changes {
		fmt.Fprintf(tw, "  %s\t%s -> %s\n", c.Setting, orUnset(c.Old), orUnset(c.New))
	}
	tw.Flush()
	if note != "" {
		fmt.Fprintln(a.stdout, note)
	}
	return nil
}

// note words when changed settings tags take effect, or returns "" when
// only the schedule changed.
func (p *updatePlan) note() string {
	if len(p.setTags)+len(p.untag) == 0 {
		return ""
	}
	what := "the new settings take effect"
	if _, ok := p.setTags[keystore.TagBaseURL]; ok {
		what = "the new settings, the base URL among them, take effect"
	}
	note := fmt.Sprintf("%s through the next validated rotation: the current key keeps the settings it was validated with; run 'rotator rotate-now %s' to rotate now",
		what, p.secretID)
	if p.pendingID != "" {
		note += fmt.Sprintf(" (the rotation in progress in version %s may keep the settings it started with)", p.pendingID)
	}
	return note
}

func orUnset(v string) string {
	if v == "" {
		return "(unset)"
	}
	return v
}
