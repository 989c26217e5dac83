package main

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/google/uuid"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

// clientSnapshot is the client list as one read of the secret found it.
type clientSnapshot struct {
	exists bool // whether the secret exists
	// current and previous are the versions that held AWSCURRENT and
	// AWSPREVIOUS; current is "" while the secret has no value.
	current, previous string
	list              clientkeys.List
}

// readClients reads the client list from the AWSCURRENT version of
// secretID. A missing secret, or one without a value yet (as Terraform
// may create it), is an empty list.
func readClients(ctx context.Context, store keystore.Store, secretID string) (clientSnapshot, error) {
	d, err := store.Describe(ctx, secretID)
	if errors.Is(err, keystore.ErrNotFound) {
		return clientSnapshot{}, nil
	}
	if err != nil {
		return clientSnapshot{}, err
	}
	if keystore.IsManaged(d.Tags) {
		return clientSnapshot{}, providerSecretError(secretID, "it has the "+keystore.TagProvider+" tag")
	}
	snap := clientSnapshot{
		exists:   true,
		current:  d.VersionWithStage(keystore.StageCurrent),
		previous: d.VersionWithStage(keystore.StagePrevious),
	}
	if snap.current == "" {
		return snap, nil
	}
	snap.list, err = readClientVersion(ctx, store, secretID, snap.current)
	return snap, err
}

// readClientVersion reads and parses one version of the client list.
func readClientVersion(ctx context.Context, store keystore.Store, secretID, versionID string) (clientkeys.List, error) {
	v, err := store.Get(ctx, secretID, keystore.ByVersion(versionID))
	if err != nil {
		return clientkeys.List{}, err
	}
	l, err := clientkeys.Parse([]byte(v.Value.Reveal()))
	if err != nil && isProviderValue(v.Value) {
		return clientkeys.List{}, providerSecretError(secretID, "its value contains an api_key")
	}
	if err != nil {
		return clientkeys.List{}, cli.WithCode(exitError, fmt.Errorf("secret %s version %s: %w", secretID, versionID, err)).
			WithHint("correct the value by hand, or move %s back to an earlier version: rotator client never writes a list it cannot read",
				keystore.StageCurrent)
	}
	return l, nil
}

// providerSecretError reports a --secret that names a provider secret,
// which a client command must never read as, or overwrite with, a client
// list. why says how the secret was recognized.
func providerSecretError(secretID, why string) error {
	return cli.WithCode(exitError, fmt.Errorf("%s is a provider secret (%s), not a router client list: pass --secret with the clients secret, default %s",
		secretID, why, clientkeys.DefaultSecretID)).
		WithHint("use the secret that the router config's clients_secret names; 'rotator status %s' shows the provider secret", secretID)
}

// isProviderValue reports whether value is a provider secret's value: a
// JSON object with an api_key.
func isProviderValue(value keystore.Secret) bool {
	_, err := keystore.ParseValue(value)
	return err == nil
}

// clientChange applies one change to a client list. It reports changed
// false when the list already shows the change, which ends the update.
// An update may call it again on a newer list after a conflict.
type clientChange func(clientkeys.List) (next clientkeys.List, changed bool, err error)

// maxClientWrites bounds the attempts of one update while other writers
// keep changing the secret.
const maxClientWrites = 10

// errClientConflict reports a write that lost to another one based on the
// same version of the list.
var errClientConflict = errors.New("another write changed the client list first")

// updateClients applies change to the client list of secretID and writes
// the result as a new AWSCURRENT version, creating the secret if it is
// missing.
//
// Writers that run at once do not lose each other's change. Each write's
// token, which becomes its version id, is derived from the versions it was
// based on. A store accepts a token only once, so when two writers start
// from the same version, one fails with ErrExists and reapplies its change
// to a fresh read. A writer that bypasses this, such as a hand-made
// PutSecretValue between the read and the write, is found afterwards,
// because the version written then follows another version than the one
// read. The change is then applied again to that version's list.
func (a *app) updateClients(ctx context.Context, store keystore.Store, secretID string, change clientChange) error {
	snap, err := readClients(ctx, store, secretID)
	if err != nil {
		return err
	}
	for range maxClientWrites {
		next, changed, err := change(snap.list)
		if err != nil || !changed {
			return err
		}
		written, err := writeClients(ctx, store, secretID, snap, next)
		if errors.Is(err, errClientConflict) {
			if snap, err = readClients(ctx, store, secretID); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return err
		}
		var done bool
		snap, done, err = checkClientWrite(ctx, store, secretID, snap, written)
		if err != nil {
			// The write succeeded; only the check for a writer outside
			// keyturn failed, which is no reason to withhold the result.
			fmt.Fprintf(a.stderr, "rotator: warning: wrote version %s of %s but could not check it afterwards: %v\n", written, secretID, err)
			return nil
		}
		if done {
			return nil
		}
	}
	return cli.WithCode(exitTransient, fmt.Errorf("secret %s changed during each of %d attempts to write the client list", secretID, maxClientWrites)).
		WithHint("other writers kept changing it at the same time: run the command again")
}

// clientsDescription describes a client list secret that add creates.
const clientsDescription = "keyturn router clients: SHA-256 hashes of their keys and their limits, managed with 'rotator client'"

// writeClients writes l as the child of the snapshot's version and returns
// the new version id. It returns errClientConflict when another writer
// wrote a child of the same version first.
func writeClients(ctx context.Context, store keystore.Store, secretID string, snap clientSnapshot, l clientkeys.List) (string, error) {
	data, err := l.Encode()
	if err != nil {
		return "", fmt.Errorf("encode the client list of %s: %w", secretID, err)
	}
	if len(data) > maxValueBytes {
		return "", cli.WithCode(exitError, fmt.Errorf("the client list of %s would be %d bytes long, over the %d-byte limit of a secret value",
			secretID, len(data), maxValueBytes)).WithHint("revoke clients that are no longer used, or keep some clients in another secret with --secret")
	}
	token := childToken(secretID, snap)
	value := keystore.NewSecret(string(data))
	if snap.exists {
		err = store.Put(ctx, keystore.PutInput{SecretID: secretID, Token: token, Value: value})
	} else {
		_, err = store.Create(ctx, keystore.CreateInput{SecretID: secretID, Description: clientsDescription, Value: value, Token: token})
	}
	if errors.Is(err, keystore.ErrExists) {
		return "", errClientConflict
	}
	return token, err
}

// clientTokenSpace is the UUID namespace of the tokens writeClients
// derives; any fixed UUID does, as long as it never changes.
var clientTokenSpace = uuid.MustParse("3b0a5c1e-8f0d-4d8e-9c47-6a2f71e4b9d3")

// childToken returns the token of the version that follows the snapshot's
// AWSCURRENT and AWSPREVIOUS versions: the same for every writer that read
// the same versions. AWSPREVIOUS is part of it so that a list whose
// AWSCURRENT was moved back to an earlier version gets a fresh token.
//
// NOTE: moving AWSCURRENT back and forth between the same two versions
// reuses a token, and every write then fails with errClientConflict until
// the labels are moved on.
func childToken(secretID string, snap clientSnapshot) string {
	name := secretID + "\x00" + snap.current + "\x00" + snap.previous
	return uuid.NewSHA1(clientTokenSpace, []byte(name)).String()
}

// checkClientWrite checks that the version written did not drop another
// writer's change. It returns done when the version written is complete,
// and otherwise the snapshot to apply the change to again.
func checkClientWrite(ctx context.Context, store keystore.Store, secretID string, base clientSnapshot, written string) (clientSnapshot, bool, error) {
	d, err := store.Describe(ctx, secretID)
	if err != nil {
		return clientSnapshot{}, false, err
	}
	current, previous := d.VersionWithStage(keystore.StageCurrent), d.VersionWithStage(keystore.StagePrevious)
	if current != written {
		// A later write came after this one. If it was based on this one,
		// the next round finds the change already made and stops.
		next, err := readClients(ctx, store, secretID)
		return next, false, err
	}
	if previous == "" || previous == base.current {
		return clientSnapshot{}, true, nil
	}
	// A version that no keyturn writer derived came between the read and
	// the write, so the version written lacks its changes.
	list, err := readClientVersion(ctx, store, secretID, previous)
	if err != nil {
		return clientSnapshot{}, false, err
	}
	return clientSnapshot{exists: true, current: written, previous: previous, list: list}, false, nil
}

// lookupClient returns the client whose id, or else whose name, is arg.
// No name is another client's id, so at most one client matches.
func lookupClient(cmd string, f *clientFlags, snap clientSnapshot, arg string) (clientkeys.Client, error) {
	if !snap.exists {
		return clientkeys.Client{}, cli.WithCode(exitError, fmt.Errorf("%s: no client %q: the secret %s does not exist, so there are no clients", cmd, arg, f.secretID)).
			WithHint("check --store and --secret; 'rotator client list%s' shows the clients", f.secretFlag())
	}
	clients := snap.list.Clients
	i := slices.IndexFunc(clients, func(c clientkeys.Client) bool { return c.ID == arg })
	if i < 0 {
		i = slices.IndexFunc(clients, func(c clientkeys.Client) bool { return c.Name == arg })
	}
	if i < 0 {
		return clientkeys.Client{}, cli.WithCode(exitError, fmt.Errorf("%s: no client with id or name %q in %s", cmd, arg, f.secretID)).
			WithHint("see the clients' ids and names with 'rotator client list%s'", f.secretFlag())
	}
	return clients[i], nil
}
