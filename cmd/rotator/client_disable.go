package main

import (
	"context"
	"fmt"
	"slices"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

const clientDisableUsage = `
Usage: rotator client disable ID|NAME [--secret ID] [--output text|json]

Disables a client by its id or its name: the router rejects its key with
401 (the key is disabled) once it re-reads the client list, within its
cache refresh interval (cache.refresh, 5m by default). Unlike revoke, the
client keeps its id, name, limits and key, and 'rotator client enable'
lets the same key in again.

Example:
  rotator client disable ci
  rotator client enable ci
`

const clientEnableUsage = `
Usage: rotator client enable ID|NAME [--secret ID] [--output text|json]

Enables a client that 'rotator client disable' disabled, by its id or its
name: the router accepts its key again once it re-reads the client list,
within its cache refresh interval (cache.refresh, 5m by default).

Example:
  rotator client enable ci
  rotator client enable kc_0123456789ab
`

// clientSetDisabled runs client disable (disabled true) or client enable.
func (a *app) clientSetDisabled(ctx context.Context, args []string, disabled bool) error {
	cmd, usage := "client enable", clientEnableUsage
	if disabled {
		cmd, usage = "client disable", clientDisableUsage
	}
	var f clientFlags
	fs := a.newFlagSet(cmd, usage)
	f.register(fs)
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	arg, err := clientIDOrNameArg(cmd, positional)
	if err != nil {
		return err
	}
	store, closeStore, err := a.openClientStore(ctx, cmd, &f)
	if err != nil {
		return err
	}
	defer closeStore()

	snap, err := readClients(ctx, store, f.secretID)
	if err != nil {
		return clientStoreError(cmd, err)
	}
	c, err := lookupClient(cmd, &f, snap, arg)
	if err != nil {
		return err
	}
	changed := c.Disabled != disabled
	if changed {
		if err := a.updateClients(ctx, store, f.secretID, setClientDisabled(cmd, c.ID, disabled)); err != nil {
			return clientStoreError(cmd, err)
		}
	}
	c.Disabled = disabled
	return a.printClientDisabled(&f, c, changed)
}

// clientIDOrNameArg returns the ID|NAME argument of cmd.
func clientIDOrNameArg(cmd string, positional []string) (string, error) {
	switch {
	case len(positional) == 0:
		return "", cli.Usagef("%s: missing ID or NAME argument", cmd).
			WithHint("see the clients' ids and names with 'rotator client list'")
	case len(positional) > 1:
		return "", cli.Usagef("%s: expected one ID or NAME argument, got %d arguments", cmd, len(positional)).
			WithHint("change one client at a time: run the command once for each")
	case positional[0] == "":
		return "", cli.Usagef("%s: the ID or NAME argument is empty", cmd).
			WithHint("see the clients' ids and names with 'rotator client list'")
	}
	return positional[0], nil
}

// setClientDisabled returns the change that sets the disabled flag of the
// client with id. A list whose client already has the flag shows the
// change made. A client that another command revoked in the meantime is
// an error: there is nothing left to change.
func setClientDisabled(cmd, id string, disabled bool) clientChange {
	return func(l clientkeys.List) (clientkeys.List, bool, error) {
		i := slices.IndexFunc(l.Clients, func(c clientkeys.Client) bool { return c.ID == id })
		if i < 0 {
			return l, false, cli.WithCode(exitError, fmt.Errorf("%s: client %s was revoked while this command ran", cmd, id)).
				WithHint("see the clients with 'rotator client list'")
		}
		if l.Clients[i].Disabled == disabled {
			return l, false, nil
		}
		next := l
		next.Clients = slices.Clone(l.Clients)
		next.Clients[i].Disabled = disabled
		return next, true, nil
	}
}

// clientDisabledJSON is the --output json of disable and enable. Changed
// is false when the client already was as requested.
type clientDisabledJSON struct {
	SecretID string `json:"secret_id"`
	ID       string `json:"id"`
	Name     string `json:"name"`
	Disabled bool   `json:"disabled"`
	Changed  bool   `json:"changed"`
}

func (a *app) printClientDisabled(f *clientFlags, c clientkeys.Client, changed bool) error {
	if f.output == outputJSON {
		return a.writeJSON(clientDisabledJSON{SecretID: f.secretID, ID: c.ID, Name: c.Name, Disabled: c.Disabled, Changed: changed})
	}
	state, routers := "enabled", "accept"
	if c.Disabled {
		state, routers = "disabled", "reject"
	}
	if !changed {
		fmt.Fprintf(a.stdout, "client %s (%s) in %s is already %s: nothing changed\n", c.ID, orDash(c.Name), f.secretID, state)
		return nil
	}
	fmt.Fprintf(a.stdout, "%s client %s (%s) in %s\n", state, c.ID, orDash(c.Name), f.secretID)
	fmt.Fprintf(a.stdout, "routers %s its key once they re-read %s (at most cache.refresh, %s by default)\n",
		routers, f.secretID, shortDuration(keystore.DefaultRefreshInterval))
	return nil
}
