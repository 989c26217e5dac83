package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

const clientRevokeUsage = `
Usage: rotator client revoke ID|NAME [--secret ID] [--output text|json]

Removes a client from the list by its id or its name, so that the router
stops accepting its key once it reads the new version of the list: within
its cache refresh interval (cache.refresh, 5m by default), or up to
cache.max_stale (1h by default) while it cannot read the store. The key
cannot be restored: add the client again for a new key.

Example:
  rotator client revoke kc_0123456789ab
  rotator client revoke ci
`

func (a *app) clientRevoke(ctx context.Context, args []string) error {
	var f clientFlags
	fs := a.newFlagSet("client revoke", clientRevokeUsage)
	f.register(fs)
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	arg, err := clientRevokeArg(positional)
	if err != nil {
		return err
	}
	store, closeStore, err := a.openClientStore(ctx, "client revoke", &f)
	if err != nil {
		return err
	}
	defer closeStore()

	snap, err := readClients(ctx, store, f.secretID)
	if err != nil {
		return clientStoreError("client revoke", err)
	}
	c, err := lookupClient("client revoke", &f, snap, arg)
	if err != nil {
		return err
	}
	if err := a.updateClients(ctx, store, f.secretID, removeClient(c.ID)); err != nil {
		return clientStoreError("client revoke", err)
	}
	return a.printClientRevoked(&f, c)
}

func clientRevokeArg(positional []string) (string, error) {
	switch len(positional) {
	case 0:
		return "", cli.Usagef("client revoke: missing ID or NAME argument").
			WithHint("see the clients' ids and names with 'rotator client list'")
	case 1:
		if positional[0] == "" {
			return "", cli.Usagef("client revoke: the ID or NAME argument is empty").
				WithHint("see the clients' ids and names with 'rotator client list'")
		}
		return positional[0], nil
	}
	return "", cli.Usagef("client revoke: expected one ID or NAME argument, got %d arguments", len(positional)).
		WithHint("revoke one client at a time: run the command once for each")
}

// removeClient returns the change that removes the client with id. A list
// without that client shows the change made, by this command in an
// earlier attempt or by another revoke.
func removeClient(id string) clientChange {
	return func(l clientkeys.List) (clientkeys.List, bool, error) {
		i := slices.IndexFunc(l.Clients, func(c clientkeys.Client) bool { return c.ID == id })
		if i < 0 {
			return l, false, nil
		}
		next := l
		next.Clients = slices.Delete(slices.Clone(l.Clients), i, i+1)
		return next, true, nil
	}
}

type clientRevokedJSON struct {
	SecretID string `json:"secret_id"`
	ID       string `json:"id"`
	Name     string `json:"name"`
}

func (a *app) printClientRevoked(f *clientFlags, c clientkeys.Client) error {
	if f.output == outputJSON {
		return a.writeJSON(clientRevokedJSON{SecretID: f.secretID, ID: c.ID, Name: c.Name})
	}
	fmt.Fprintf(a.stdout, "revoked client %s (%s): removed it from %s\n", c.ID, orDash(c.Name), f.secretID)
	fmt.Fprintln(a.stdout, revokedKeyBound)
	return nil
}

// revokedKeyBound is how long routers may still accept a revoked key, with
// the router's cache defaults. Each router re-reads the list every
// cache.refresh. While it cannot read the store, it keeps the last list it
// read for up to cache.max_stale.
var revokedKeyBound = fmt.Sprintf("routers stop accepting its key within their cache refresh interval "+
	"(cache.refresh, %s by default), or up to cache.max_stale (%s by default) while they cannot read the store",
	shortDuration(keystore.DefaultRefreshInterval), shortDuration(keystore.DefaultMaxStale))

// shortDuration formats d as a config file would give it, such as 5m or
// 1h rather than 5m0s or 1h0m0s.
func shortDuration(d time.Duration) string {
	switch {
	case d%time.Hour == 0:
		return fmt.Sprintf("%dh", d/time.Hour)
	case d%time.Minute == 0:
		return fmt.Sprintf("%dm", d/time.Minute)
	}
	return d.String()
}
