package main

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

const statusUsage = `
Usage: rotator status [SECRET...] [--output text|json]

Shows each managed secret (one with a keyturn:provider tag), or the named
ones: settings, versions and their labels, the last and next rotation, a
rotation stuck in progress, the last failure and whether a key is staged.
Never prints a key.

With --output json it prints one object:
  {"secrets": [{
    "secret_id": "prod/openai",
    "settings": {"provider": "openai", "base_url": "...", "issuer": "staged", ...},
    "settings_error": "...",              (only when the tags are invalid)
    "rotation": {"enabled": true, "schedule": "rate(30 days)", "window": "3h",
                 "dev_interval": "30s",   (only on the secret of 'rotator dev')
                 "schedule_error": "..."},
    "last_rotated": "2026-01-02T03:04:05Z",   (null if never)
    "next_rotation": "2026-02-01T00:00:00Z",  (null if not scheduled)
    "staged": {"version_id": "..."},          (null if none)
    "stuck": {"version_id": "...", "since": "..."},  (null unless a rotation is stuck)
    "last_failure": {"step": "testSecret", "at": "...", "version_id": "...",
                     "class": "rejected", "reason": "..."},  (null if none)
    "versions": [{"version_id": "...", "stages": ["AWSCURRENT"], "created": "..."}]
  }]}
Times are RFC 3339 in UTC.

Example:
  rotator status prod/openai --output json
`

type statusFlags struct {
	storeFlags
	output outputFlag
}

func (a *app) status(ctx context.Context, args []string) error {
	f := statusFlags{output: outputText}
	fs := a.newFlagSet("status", statusUsage)
	f.register(fs)
	f.output.register(fs)
	ids, err := parseArgs(fs, args)
	if err != nil {
		return err
	}

	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return err
	}
	store, closeStore, err := a.openStore(ctx, s)
	if err != nil {
		return err
	}
	defer closeStore()

	descs, err := describeManaged(ctx, store, ids)
	if err != nil {
		return err
	}
	now := a.clockNow()
	report := statusReport{Secrets: []secretStatus{}}
	for _, d := range descs {
		report.Secrets = append(report.Secrets, statusOf(ctx, store, d, now))
	}

	if f.output == outputJSON {
		return a.writeJSON(report)
	}
	a.printStatus(report, s.store.raw)
	return nil
}

// describeManaged describes the named secrets, or lists every managed one.
func describeManaged(ctx context.Context, store keystore.Store, ids []string) ([]keystore.Description, error) {
	if len(ids) == 0 {
		all, err := store.List(ctx)
		if err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		var managed []keystore.Description
		for _, d := range all {
			if keystore.IsManaged(d.Tags) {
				managed = append(managed, d)
			}
		}
		return managed, nil
	}
	var descs []keystore.Description
	for _, id := range ids {
		d, err := store.Describe(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("status: %w", err)
		}
		if !keystore.IsManaged(d.Tags) {
			return nil, fmt.Errorf("status: secret %s is not managed by keyturn: it has no %s tag", id, keystore.TagProvider)
		}
		descs = append(descs, d)
	}
	return descs, nil
}

type statusReport struct {
	Secrets []secretStatus `json:"secrets"`
}

type secretStatus struct {
	SecretID      string            `json:"secret_id"`
	Settings      keystore.Settings `json:"settings"`
	SettingsError string            `json:"settings_error,omitempty"`
	Rotation      rotationStatus    `json:"rotation"`
	LastRotated   *time.Time        `json:"last_rotated"`
	NextRotation  *time.Time        `json:"next_rotation"`
	Staged        *stagedStatus     `json:"staged"`
	Stuck         *stuckStatus      `json:"stuck"`
	LastFailure   *keystore.Failure `json:"last_failure"`
	Versions      []versionStatus   `json:"versions"`
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
}

type stuckStatus struct {
	VersionID string     `json:"version_id"`
	Since     *time.Time `json:"since"`
}

type versionStatus struct {
	VersionID string     `json:"version_id"`
	Stages    []string   `json:"stages"`
	Created   *time.Time `json:"created"`
}

// statusOf gathers one secret's status. Problems with the secret (invalid
// tags or schedule) are part of the status, not errors.
func statusOf(ctx context.Context, store keystore.Store, d keystore.Description, now time.Time) secretStatus {
	st := secretStatus{SecretID: d.SecretID, LastRotated: timePtr(d.LastRotated)}
	settings, err := keystore.SettingsFromTags(d.Tags)
	st.Settings = settings
	if err != nil {
		st.SettingsError = err.Error()
	}
	st.Rotation, st.NextRotation = rotationOf(d, now)
	if id := d.VersionWithStage(keystore.StageStaged); id != "" {
		st.Staged = &stagedStatus{VersionID: id}
	}
	st.Versions = versionsOf(ctx, store, d)
	if id := stuckPending(d); id != "" {
		st.Stuck = &stuckStatus{VersionID: id, Since: createdOf(st.Versions, id)}
	}
	st.LastFailure = lastFailure(ctx, store, d.SecretID)
	return st
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
	r.DevInterval = interval.String()
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
	if s.SettingsError != "" {
		row("settings", "INVALID: "+s.SettingsError)
	}
	row("schedule", scheduleText(s.Rotation))
	row("last rotated", optTime(s.LastRotated, "never"))
	row("next rotation", optTime(s.NextRotation, "-"))
	row("staged key", stagedText(s.Staged))
	if s.Stuck != nil {
		row("stuck rotation", fmt.Sprintf("AWSPENDING on %s since %s", s.Stuck.VersionID, optTime(s.Stuck.Since, "unknown")))
	}
	if f := s.LastFailure; f != nil {
		row("last failure", fmt.Sprintf("%s at %s, %s: %s (version %s)", f.Step, formatTime(f.At), f.Class, f.Reason, f.VersionID))
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

func issuerText(s keystore.Settings) string {
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

func stagedText(s *stagedStatus) string {
	if s == nil {
		return "none"
	}
	return "yes, version " + s.VersionID
}

func optTime(t *time.Time, none string) string {
	if t == nil {
		return none
	}
	return formatTime(*t)
}
