package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/keyturn/keyturn/internal/clientkeys"
)

const clientRevokeUsage = `
Usage: rotator client revoke ID|NAME [--secret ID] [--output text|json]

Removes a client from the list by its id or its name, so that the router
stops accepting its key once it reads the new version of the list. The key
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
	store, closeStore, err := a.openClientStore(ctx, "client revoke", &f, false)
	if err != nil {
		return err
	}
	defer closeStore()

	snap, err := readClients(ctx, store, f.secretID)
	if err != nil {
		return clientStoreError("client revoke", err)
	}
	c, err := findClient(&f, snap, arg)
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
		return "", usageErrorf("client revoke: missing ID or NAME argument").
			withHint("see the clients' ids and names with 'rotator client list'")
	case 1:
		if positional[0] == "" {
			return "", usageErrorf("client revoke: the ID or NAME argument is empty").
				withHint("see the clients' ids and names with 'rotator client list'")
		}
		return positional[0], nil
	}
	return "", usageErrorf("client revoke: expected one ID or NAME argument, got %d arguments", len(positional)).
		withHint("revoke one client at a time: run the command once for each")
}

// findClient returns the client whose id, or else whose name, is arg.
// Parse ensures that no name is another client's id, so at most one
// client matches.
func findClient(f *clientFlags, snap clientSnapshot, arg string) (clientkeys.Client, error) {
	if !snap.exists {
		return clientkeys.Client{}, withCode(exitError, fmt.Errorf("client revoke: no client %q: the secret %s does not exist, so there are no clients", arg, f.secretID)).
			withHint("check --store and --secret; 'rotator client list%s' shows the clients", f.secretFlag())
	}
	clients := snap.list.Clients
	i := slices.IndexFunc(clients, func(c clientkeys.Client) bool { return c.ID == arg })
	if i < 0 {
		i = slices.IndexFunc(clients, func(c clientkeys.Client) bool { return c.Name == arg })
	}
	if i < 0 {
		return clientkeys.Client{}, withCode(exitError, fmt.Errorf("client revoke: no client with id or name %q in %s", arg, f.secretID)).
			withHint("see the clients' ids and names with 'rotator client list%s'", f.secretFlag())
	}
	return clients[i], nil
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
	fmt.Fprintln(a.stdout, "routers stop accepting its key once they read the new version of the list")
	return nil
}
