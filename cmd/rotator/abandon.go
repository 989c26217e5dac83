package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/keystore"
)

const abandonUsage = `
Usage: rotator abandon SECRET [--output text|json]

Drops the rotation of SECRET that is in progress: removes AWSPENDING from
the version that holds it, when that version is not AWSCURRENT's. The
secret's keys are unchanged: AWSCURRENT stays where it is, and a staged key
stays staged for the next rotation.

It revokes nothing. If an issuer minted the pending key, the key stays
valid at the provider until you revoke it there.

With no rotation in progress it does nothing, says so, and exits 0.

Use it for a rotation that no rotator is working on, such as one left by a
rotator that was killed, when you do not want to wait for it to go stale
('rotator status SECRET' shows when it does). A rotator still working on
it, or on AWS the rotation function at Secrets Manager's next retry, fails
at its next step, because the version is no longer AWSPENDING.

Example:
  rotator abandon prod/openai
`

func (a *app) abandon(ctx context.Context, args []string) error {
	fs := a.newFlagSet("abandon", abandonUsage)
	f := registerStoreOutputFlags(fs, false)
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	secretID, err := oneSecretArg("abandon", positional)
	if err != nil {
		return err
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

	versionID, err := abandonRotation(ctx, store, s, secretID)
	if err != nil {
		return err
	}
	return a.printAbandoned(secretID, versionID, f.output)
}

// abandonRotation removes AWSPENDING from the version of the rotation in
// progress and returns that version, or "" when no rotation is in
// progress, which leaves nothing to do.
func abandonRotation(ctx context.Context, store keystore.Store, s settings, secretID string) (string, error) {
	d, err := store.Describe(ctx, secretID)
	if errors.Is(err, keystore.ErrNotFound) {
		return "", notFoundError("abandon", secretID, s)
	}
	if err != nil {
		return "", fmt.Errorf("abandon: %w", err)
	}
	versionID := pendingVersion(d)
	if versionID == "" {
		return "", nil
	}
	err = store.UpdateStage(ctx, keystore.StageInput{
		SecretID: secretID, Stage: keystore.StagePending, RemoveFromVersion: versionID,
	})
	if errors.Is(err, keystore.ErrInvalidParameter) {
		// The label moved between Describe and UpdateStage: the rotation
		// ended, or another rotator resumed it under a new version.
		return "", cli.WithCode(exitError, fmt.Errorf("abandon: %s moved off version %s of %s while abandoning: %w",
			keystore.StagePending, versionID, secretID, err)).
			WithHint("see where it is now with 'rotator status %s'", secretID)
	}
	if err != nil {
		return "", fmt.Errorf("abandon: %w", err)
	}
	return versionID, nil
}

type abandonedJSON struct {
	SecretID string `json:"secret_id"`
	// VersionID is the version that lost AWSPENDING. It is empty when no
	// rotation was in progress, so nothing was abandoned.
	VersionID string `json:"version_id"`
	Revoked   bool   `json:"revoked"`
}

func (a *app) printAbandoned(secretID, versionID string, out outputFlag) error {
	if out == outputJSON {
		return a.writeJSON(abandonedJSON{SecretID: secretID, VersionID: versionID})
	}
	if versionID == "" {
		fmt.Fprintf(a.stdout, "nothing to abandon: %s has no rotation in progress (no version other than AWSCURRENT's has %s)\n",
			secretID, keystore.StagePending)
		return nil
	}
	fmt.Fprintf(a.stdout, "abandoned the rotation of %s: removed %s from version %s\n", secretID, keystore.StagePending, versionID)
	fmt.Fprintln(a.stdout, "nothing was revoked: if an issuer minted that version's key, revoke it at the provider")
	return nil
}
