package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/internal/provider"
	"github.com/keyturn/keyturn/internal/rotation"
	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

const statusUsage = `
Usage: rotator status [SECRET...] [--output text|json]

Shows each managed secret (one with a keyturn:provider tag), or the named
ones: settings, versions and their labels, the last and next rotation, a
rotation in progress, the last rejected key and whether a key is staged.
Never prints a key. A secret that cannot be read or is not found is
reported on stderr, after the others are shown, and the exit code is 1, or
4 when the store cannot be reached.

The last rejected key is the KEYTURN_REJECTED version, which records why
the provider rejected it and which rotation it came from. Transient
failures (timeouts, rate limits, outages) are not recorded in the store:
'rotator serve' logs them, and 'rotator rotate-now' reports them.

With --output json it prints one object:
  {"secrets": [{
    "secret_id": "prod/openai",
    "settings": {"provider": "openai", "base_url": "...", "issuer": "staged",
                 "grace": "24h", ...},
    "settings_error": "...",              (only when the tags are invalid)
    "rotation": {"enabled": true, "schedule": "rate(30 days)", "window": "3h",
                 "dev_interval": "30s",   (only on the secret of 'rotator dev')
                 "schedule_error": "..."},
    "last_rotated": "2026-01-02T03:04:05Z",   (null if never)
    "next_rotation": "2026-02-01T00:00:00Z",  (null if not scheduled)
    "due_now": false,                          (true once next_rotation has come)
    "staged": {"version_id": "...",            (null if none)
               "in_rotation": "..."},          (the rotation carrying this key, if any)
    "rotation_in_progress": {"version_id": "...", "since": "...",
                 "stale_at": "...", "stale": false},  (null if none;
                 stale_at only on the file store)
    "last_failure": {"rejected_version_id": "...", "rotation_token": "...",
                     "step": "testSecret", "at": "...",
                     "class": "rejected", "reason": "..."},  (null if none)
    "versions": [{"version_id": "...", "stages": ["AWSCURRENT"], "created": "..."}]
  }],
  "errors": [{"secret_id": "...", "message": "..."}]}  (secrets not shown)
Times are RFC 3339 in UTC; durations are Go durations such as 24h or 1h30m.

Example:
  rotator status prod/openai --output json
`

func (a *app) status(ctx context.Context, args []string) error {
	fs := a.newFlagSet("status", statusUsage)
	f := registerStoreOutputFlags(fs, true)
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := checkSecretArg("status", id); err != nil {
			return err
		}
	}

	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	store, closeStore, err := a.openStore(ctx, s, false)
	if err != nil {
		return err
	}
	defer closeStore()

	descs, problems := describeManaged(ctx, store, s, ids)
	r := statusReader{store: store, policy: s.policy(), now: a.clockNow(),
		engine: &rotation.Engine{Store: store, Now: a.clockNow}}
	report := statusReport{Secrets: []secretStatus{}, Errors: []statusError{}}
	for _, d := range descs {
		report.Secrets = append(report.Secrets, r.statusOf(ctx, d))
	}
	for _, p := range problems {
		report.Errors = append(report.Errors, statusError{SecretID: p.secretID, Message: p.err.Error()})
	}

	if f.output == outputJSON {
		if err := a.writeJSON(report); err != nil {
			return err
		}
	} else if len(descs) > 0 || len(problems) == 0 {
		a.printStatus(report, s.store.Raw)
	}
	return a.reportProblems(problems)
}

// statusProblem is a secret that status could not show, or a store that
// it could not list. Its secretID is empty when no single secret is at fault.
type statusProblem struct {
	secretID string
	err      error
}

// statusError is a statusProblem in the JSON output.
type statusError struct {
	SecretID string `json:"secret_id,omitempty"`
	Message  string `json:"message"`
}

// describeManaged describes the named secrets, or lists every managed one.
// It returns every description it could read, and a problem for each
// secret it could not read or that is not managed.
func describeManaged(ctx context.Context, store keystore.Store, s settings, ids []string) ([]keystore.Description, []statusProblem) {
	if len(ids) == 0 {
		all, err := store.List(ctx)
		var managed []keystore.Description
		for _, d := range all {
			if keystore.IsManaged(d.Tags) {
				managed = append(managed, d)
			}
		}
		return managed, listProblems(err)
	}
	var descs []keystore.Description
	var problems []statusProblem
	for _, id := range ids {
		d, err := store.Describe(ctx, id)
		switch {
		case errors.Is(err, keystore.ErrNotFound):
			problems = append(problems, statusProblem{id, notFoundError("status", id, s)})
		case err != nil:
			problems = append(problems, statusProblem{id, fmt.Errorf("status: %w", err)})
		case !keystore.IsManaged(d.Tags):
			problems = append(problems, statusProblem{id, notManagedError(ctx, store, "status", id)})
		default:
			descs = append(descs, d)
		}
	}
	return descs, problems
}

// listProblems splits the error of a List, which joins one error per
// secret it could not read, so that each is reported on its own line with
// the secret it names.
func listProblems(err error) []statusProblem {
	if err == nil {
		return nil
	}
	errs := []error{err}
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		errs = joined.Unwrap()
	}
	var problems []statusProblem
	for _, e := range errs {
		p := statusProblem{err: fmt.Errorf("status: %w", e)}
		var ke *keystore.Error
		if errors.As(e, &ke) {
			p.secretID = ke.SecretID
		}
		problems = append(problems, p)
	}
	return problems
}

// reportProblems prints each problem on stderr, as exit does for one, and
// returns an error that exits 1, or 4 if the store could not be reached.
func (a *app) reportProblems(problems []statusProblem) error {
	switch len(problems) {
	case 0:
		return nil
	case 1:
		return problems[0].err
	}
	code := exitError
	for _, p := range problems {
		if a.exit(p.err) == exitTransient {
			code = exitTransient
		}
	}
	return errSilent{code}
}

type statusReport struct {
	Secrets []secretStatus `json:"secrets"`
	Errors  []statusError  `json:"errors"`
}

type secretStatus struct {
	SecretID      string         `json:"secret_id"`
	Settings      settingsStatus `json:"settings"`
	SettingsError string         `json:"settings_error,omitempty"`
	// SettingsHint is the fix for SettingsError, when status has one.
	SettingsHint string `json:"settings_hint,omitempty"`
	// CurrentValidated is the settings the AWSCURRENT key was validated
	// with, as its version records them. It is nil when none are recorded.
	CurrentValidated *validatedStatus `json:"current_validated_with"`
	Rotation         rotationStatus   `json:"rotation"`
	LastRotated      *time.Time       `json:"last_rotated"`
	NextRotation     *time.Time       `json:"next_rotation"`
	// DueNow is true when the next rotation's time has come, as for a
	// secret that was never rotated.
	DueNow      bool            `json:"due_now"`
	Staged      *stagedStatus   `json:"staged"`
	InProgress  *pendingStatus  `json:"rotation_in_progress"`
	LastFailure *rejectedStatus `json:"last_failure"`
	Versions    []versionStatus `json:"versions"`
}

// settingsStatus is keystore.Settings with the grace period in the compact
// form of schedule.FormatDuration.
type settingsStatus struct {
	Provider       string   `json:"provider"`
	BaseURL        string   `json:"base_url"`
	Issuer         string   `json:"issuer,omitempty"`
	IssuerSecret   string   `json:"issuer_secret,omitempty"`
	RequiredModels []string `json:"required_models,omitempty"`
	Probe          string   `json:"probe,omitempty"`
	Grace          string   `json:"grace,omitempty"`
}

// validatedStatus is the provider and base URL the AWSCURRENT key was
// validated with. Differs is true when the tags name others, which take
// effect at the next validated rotation.
type validatedStatus struct {
	VersionID string `json:"version_id"`
	Provider  string `json:"provider"`
	BaseURL   string `json:"base_url"`
	Differs   bool   `json:"differs_from_tags"`
}

type rotationStatus struct {
	Enabled       bool   `json:"enabled"`
	Schedule      string `json:"schedule,omitempty"`
	Window        string `json:"window,omitempty"`
	DevInterval   string `json:"dev_interval,omitempty"` // rotator dev's; it stores no schedule
	ScheduleError string `json:"schedule_error,omitempty"`
}

type stagedStatus struct {
	VersionID string `json:"version_id"`
	// InRotation is the version of the rotation in progress that carries
	// the staged key, if one does.
	InRotation string `json:"in_rotation,omitempty"`
	// pendingEmpty is true while the rotation in progress has no key yet.
	pendingEmpty bool
}

// pendingStatus is a rotation in progress: AWSPENDING on a version that is
// not AWSCURRENT's.
type pendingStatus struct {
	VersionID string     `json:"version_id"`
	Since     *time.Time `json:"since"`
	// StaleAt is when a rotation on the file store is taken for abandoned
	// by a stopped rotator, and the next rotation resumes it. It is nil on
	// AWS, where Secrets Manager retries the steps.
	StaleAt *time.Time `json:"stale_at,omitempty"`
	Stale   bool       `json:"stale"`
	onAWS   bool
}

// rejectedStatus is the last_failure record of the KEYTURN_REJECTED
// version.
type rejectedStatus struct {
	// VersionID is the KEYTURN_REJECTED version, which holds the key.
	VersionID string `json:"rejected_version_id"`
	// RotationToken is the rotation the key was rejected in. That version
	// was cleared when the rotation ended, so it is not listed.
	RotationToken string    `json:"rotation_token"`
	Step          string    `json:"step"`
	At            time.Time `json:"at"`
	Class         string    `json:"class"`
	Reason        string    `json:"reason"`
}

type versionStatus struct {
	VersionID string     `json:"version_id"`
	Stages    []string   `json:"stages"`
	Created   *time.Time `json:"created"`
}

// statusReader gathers the status of secrets in one store.
type statusReader struct {
	store  keystore.Store
	policy *provider.Policy
	now    time.Time
	// engine reads the file store's rotations in progress, as the rotators
	// that would resume them judge them.
	engine *rotation.Engine
}

// statusOf gathers one secret's status. Problems with the secret (invalid
// tags or schedule) are part of the status, not errors.
func (r statusReader) statusOf(ctx context.Context, d keystore.Description) secretStatus {
	st := secretStatus{SecretID: d.SecretID, LastRotated: timePtr(d.LastRotated)}
	settings, err := keystore.SettingsFromTags(d.Tags)
	if err == nil {
		// The checks the rotation makes before it sends a key anywhere.
		err = provider.Validate(settings, r.policyFor(d))
	}
	st.Settings = settingsStatusOf(settings)
	if err != nil {
		st.SettingsError = err.Error()
		st.SettingsHint = settingsHint(err)
	}
	st.CurrentValidated = currentValidated(ctx, r.store, d.SecretID, settings)
	st.Rotation, st.NextRotation = rotationOf(d, r.now)
	st.DueNow = st.NextRotation != nil && !st.NextRotation.After(r.now)
	st.Versions = versionsOf(ctx, r.store, d)
	st.InProgress = r.pendingOf(ctx, d, st.Versions)
	if id := d.VersionWithStage(keystore.StageStaged); id != "" {
		st.Staged = &stagedStatus{VersionID: id}
		if st.InProgress != nil {
			r.stagedInRotation(ctx, d.SecretID, st.Staged, st.InProgress.VersionID)
		}
	}
	// NOTE: only rejections are recorded, in KEYTURN_REJECTED. A transient
	// failure leaves no trace in the store, so a secret whose rotations
	// keep timing out shows no last_failure here.
	st.LastFailure = lastRejected(ctx, r.store, d.SecretID)
	return st
}

// stagedInRotation records in staged whether the rotation in progress in
// version pending carries the staged key, or has taken no key yet.
func (r statusReader) stagedInRotation(ctx context.Context, secretID string, staged *stagedStatus, pending string) {
	pv, err := r.store.Get(ctx, secretID, keystore.ByVersion(pending))
	if errors.Is(err, keystore.ErrNotFound) {
		staged.pendingEmpty = true
		return
	}
	if err != nil {
		return
	}
	sv, err := r.store.Get(ctx, secretID, keystore.ByVersion(staged.VersionID))
	if err != nil {
		return
	}
	pendingValue, pErr := keystore.ParseValue(pv.Value)
	stagedValue, sErr := keystore.ParseValue(sv.Value)
	if pErr == nil && sErr == nil && pendingValue.APIKey.Equal(stagedValue.APIKey) {
		staged.InRotation = pending
	}
}

// policyFor returns the host policy a secret's rotator applies. The secret
// of `rotator dev` is rotated only by dev, which allows its loopback
// stand-in, so status judges it that way too.
func (r statusReader) policyFor(d keystore.Description) *provider.Policy {
	if _, ok := d.Tags[devIntervalTag]; ok && !r.policy.AllowsLoopback() {
		return provider.NewPolicy(r.policy.RelayHosts(), true)
	}
	return r.policy
}

// settingsHint returns how to fix a settings error, or "".
func settingsHint(err error) string {
	if errors.Is(err, provider.ErrLoopbackNotAllowed) {
		return "pass --allow-loopback (tests and rotator dev only)"
	}
	return ""
}

// currentValidated reads the settings the AWSCURRENT version records and
// compares them with tags, the secret's settings now.
func currentValidated(ctx context.Context, store keystore.Store, secretID string, tags keystore.Settings) *validatedStatus {
	v, err := store.Get(ctx, secretID, keystore.Current())
	if err != nil {
		return nil
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil || value.Settings.Provider == "" && value.Settings.BaseURL == "" {
		return nil
	}
	rec := value.Settings
	return &validatedStatus{
		VersionID: v.VersionID, Provider: rec.Provider, BaseURL: rec.BaseURL,
		Differs: rec.Provider != tags.Provider || rec.BaseURL != tags.BaseURL,
	}
}

func settingsStatusOf(s keystore.Settings) settingsStatus {
	out := settingsStatus{
		Provider: s.Provider, BaseURL: s.BaseURL, Issuer: s.Issuer, IssuerSecret: s.IssuerSecret,
		RequiredModels: s.RequiredModels, Probe: s.Probe,
	}
	if s.Grace != 0 {
		out.Grace = schedule.FormatDuration(time.Duration(s.Grace))
	}
	return out
}

// pendingOf describes the rotation in progress, if any. On the file store
// the engine gives its start and the time it goes stale.
func (r statusReader) pendingOf(ctx context.Context, d keystore.Description, versions []versionStatus) *pendingStatus {
	id := pendingVersion(d)
	if id == "" {
		return nil
	}
	ps := &pendingStatus{VersionID: id, Since: createdOf(versions, id), onAWS: d.Rotation.LambdaARN != ""}
	if ps.onAWS {
		return ps
	}
	p, ok, err := r.engine.PendingRotation(ctx, d)
	if err != nil || !ok || p.VersionID != id {
		return ps
	}
	ps.Since, ps.StaleAt, ps.Stale = timePtr(p.Since), timePtr(p.StaleAt), p.StaleIn <= 0
	return ps
}

// lastRejected returns the last_failure of the KEYTURN_REJECTED version,
// or nil.
func lastRejected(ctx context.Context, store keystore.Store, secretID string) *rejectedStatus {
	id, f := readRejected(ctx, store, secretID)
	if f == nil {
		return nil
	}
	return &rejectedStatus{
		VersionID: id, RotationToken: f.VersionID,
		Step: f.Step, At: f.At.UTC(), Class: f.Class, Reason: f.Reason,
	}
}

// rotationOf describes the schedule and the next rotation: the store's if
// it reports one, else the schedule's from the last rotation.
func rotationOf(d keystore.Description, now time.Time) (rotationStatus, *time.Time) {
	r := rotationStatus{Enabled: d.Rotation.Enabled, Window: d.Rotation.Rules.Duration}
	rules := d.Rotation.Rules
	if interval, ok := d.Tags[devIntervalTag]; ok && rules.IsZero() {
		return devRotationOf(r, d, interval, now)
	}
	switch {
	case rules.ScheduleExpression != "":
		r.Schedule = rules.ScheduleExpression
	case rules.AutomaticallyAfterDays > 0:
		r.Schedule = fmt.Sprintf("every %d days", rules.AutomaticallyAfterDays)
	}
	if !d.Rotation.Enabled || rules.IsZero() {
		return r, nil
	}
	sched, err := schedule.Parse(rules)
	if err != nil {
		r.ScheduleError = err.Error()
	}
	if !d.NextRotation.IsZero() {
		return r, timePtr(d.NextRotation)
	}
	if err != nil {
		return r, nil
	}
	return r, timePtr(sched.Next(d.LastRotated, now))
}

// devRotationOf describes the rotation of the secret of `rotator dev`,
// whose interval is in devIntervalTag.
func devRotationOf(r rotationStatus, d keystore.Description, tag string, now time.Time) (rotationStatus, *time.Time) {
	interval, err := time.ParseDuration(tag)
	if err != nil || interval < time.Second {
		r.ScheduleError = fmt.Sprintf("invalid %s tag %q: use a Go duration of 1s or more, or run 'rotator dev' again to reset it",
			devIntervalTag, tag)
		return r, nil
	}
	sched := schedule.Every(interval)
	r.Schedule = sched.String()
	r.DevInterval = schedule.FormatDuration(interval)
	if !r.Enabled {
		return r, nil
	}
	return r, timePtr(sched.Next(d.LastRotated, now))
}

// versionsOf lists the labelled versions, newest first where the creation
// time is known. An empty version (a rotation's AWSPENDING before
// createSecret) has no creation time.
func versionsOf(ctx context.Context, store keystore.Store, d keystore.Description) []versionStatus {
	out := []versionStatus{}
	for id, stages := range d.Versions {
		if len(stages) == 0 {
			continue
		}
		vs := versionStatus{VersionID: id, Stages: sortedStages(stages)}
		if v, err := store.Get(ctx, d.SecretID, keystore.ByVersion(id)); err == nil {
			vs.Created = timePtr(v.Created)
		}
		out = append(out, vs)
	}
	slices.SortFunc(out, newestFirst)
	return out
}

// newestFirst orders versions by creation time, newest first; empty
// versions, which have no creation time, come first as the newest.
func newestFirst(a, b versionStatus) int {
	switch {
	case a.Created == nil && b.Created == nil:
		return strings.Compare(a.VersionID, b.VersionID)
	case a.Created == nil:
		return -1
	case b.Created == nil:
		return 1
	}
	if c := b.Created.Compare(*a.Created); c != 0 {
		return c
	}
	return strings.Compare(a.VersionID, b.VersionID)
}

var stageOrder = map[string]int{
	keystore.StageCurrent: 0, keystore.StagePending: 1, keystore.StagePrevious: 2,
	keystore.StageStaged: 3, keystore.StageRejected: 4,
}

func sortedStages(stages []string) []string {
	out := append([]string(nil), stages...)
	sort.Slice(out, func(i, j int) bool {
		oi, iok := stageOrder[out[i]]
		oj, jok := stageOrder[out[j]]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return out[i] < out[j]
	})
	return out
}

func createdOf(versions []versionStatus, id string) *time.Time {
	for _, v := range versions {
		if v.VersionID == id {
			return v.Created
		}
	}
	return nil
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func (a *app) printStatus(r statusReport, store string) {
	if len(r.Secrets) == 0 {
		fmt.Fprintf(a.stdout, "no managed secrets in %s\n", store)
		fmt.Fprintln(a.stdout, "add one with 'rotator add SECRET --provider NAME --base-url URL'")
		return
	}
	for i, s := range r.Secrets {
		if i > 0 {
			fmt.Fprintln(a.stdout)
		}
		a.printSecretStatus(s)
	}
}

func (a *app) printSecretStatus(s secretStatus) {
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	fmt.Fprintln(tw, s.SecretID)
	row("provider", s.Settings.Provider+"  "+s.Settings.BaseURL)
	row("issuer", issuerText(s.Settings))
	if c := s.CurrentValidated; c != nil {
		row("current key", validatedText(c))
	}
	if s.SettingsError != "" {
		row("settings", "INVALID: "+s.SettingsError)
	}
	if s.SettingsHint != "" {
		row("", "hint: "+s.SettingsHint)
	}
	row("schedule", scheduleText(s.Rotation))
	row("last rotated", optTime(s.LastRotated, "never"))
	row("next rotation", nextRotationText(s))
	row("staged key", stagedText(s.Staged, s.InProgress))
	if p := s.InProgress; p != nil {
		row("in progress", pendingText(s.SecretID, p))
	}
	if f := s.LastFailure; f != nil {
		row("last rejected key", fmt.Sprintf("version %s (%s), from rotation %s: %s at %s, %s: %s",
			f.VersionID, keystore.StageRejected, f.RotationToken, f.Step, formatTime(f.At), f.Class, f.Reason))
	}
	if len(s.Versions) == 0 {
		row("versions", "none yet")
	}
	tw.Flush()
	a.printVersions(s.Versions)
}

func (a *app) printVersions(versions []versionStatus) {
	if len(versions) == 0 {
		return
	}
	tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  VERSION\tSTAGES\tCREATED")
	for _, v := range versions {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", v.VersionID, strings.Join(v.Stages, ","), optTime(v.Created, "empty"))
	}
	tw.Flush()
}

func validatedText(c *validatedStatus) string {
	text := fmt.Sprintf("validated with %s  %s", c.Provider, c.BaseURL)
	if c.Differs {
		text += " (the tags above differ: they take effect at the next validated rotation)"
	}
	return text
}

func issuerText(s settingsStatus) string {
	if s.IssuerSecret == "" {
		return s.Issuer
	}
	return fmt.Sprintf("%s (admin key in %s)", s.Issuer, s.IssuerSecret)
}

func scheduleText(r rotationStatus) string {
	if !r.Enabled {
		return "rotation disabled"
	}
	var text string
	switch {
	case r.DevInterval != "":
		text = fmt.Sprintf("every %s while 'rotator dev' runs", r.DevInterval)
	case r.Schedule != "":
		text = r.Schedule
	case r.ScheduleError == "":
		text = "none (rotate with rotate-now)"
	}
	if r.Window != "" {
		text += ", window " + r.Window
	}
	switch {
	case r.ScheduleError == "":
	case text == "":
		text = "INVALID: " + r.ScheduleError
	default:
		text += " (INVALID: " + r.ScheduleError + ")"
	}
	return text
}

// pendingText describes a rotation in progress and what will end it.
func pendingText(secretID string, p *pendingStatus) string {
	text := fmt.Sprintf("version %s (%s)", p.VersionID, keystore.StagePending)
	if p.Since != nil {
		text += " since " + formatTime(*p.Since)
	}
	switch {
	case p.onAWS:
		return text + ": not finished; Secrets Manager retries a failed rotation, and the rotation function's logs show why a step failed"
	case p.StaleAt == nil:
		return text + fmt.Sprintf("; if no rotator is working on it, 'rotator abandon %s' drops it", secretID)
	case p.Stale:
		return text + fmt.Sprintf(", stale since %s: the next rotation resumes it, or 'rotator abandon %s' drops it",
			formatTime(*p.StaleAt), secretID)
	}
	return text + fmt.Sprintf(" (resumed after %s if its rotator stopped)", formatTime(*p.StaleAt))
}

func stagedText(s *stagedStatus, p *pendingStatus) string {
	switch {
	case s == nil:
		return "none"
	case s.InRotation != "":
		return fmt.Sprintf("yes, version %s (being rotated in version %s)", s.VersionID, s.InRotation)
	case p != nil && s.pendingEmpty:
		return fmt.Sprintf("yes, version %s (the rotation in progress in version %s has not taken a key yet)", s.VersionID, p.VersionID)
	}
	return "yes, version " + s.VersionID
}

// nextRotationText words the next rotation: "due now" once its time has
// come, rather than a time in the past.
func nextRotationText(s secretStatus) string {
	if s.DueNow {
		return "due now"
	}
	return optTime(s.NextRotation, "-")
}

func optTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return formatTime(*t)
}
