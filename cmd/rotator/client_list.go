package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

const clientListUsage = `
Usage: rotator client list [--secret ID] [--output text|json]

Lists the router's clients: id, name, when each was added, its rate limit
(requests per second), burst, monthly quota (requests) and whether it is
disabled. A dash means no limit. A client with a rate limit and no burst
of its own gets the router's default burst, the rate limit rounded up
and at least 1, shown with "(default)". It never shows a key or a key's
hash.

Example:
  rotator client list
  rotator client list --store aws://us-east-1 --output json
`

func (a *app) clientList(ctx context.Context, args []string) error {
	var f clientFlags
	fs := a.newFlagSet("client list", clientListUsage)
	f.register(fs)
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(positional) > 0 {
		return cli.Usagef("client list: takes no arguments, got %d", len(positional)).
			WithHint("list shows every client; name another secret with --secret ID")
	}
	store, closeStore, err := a.openClientStore(ctx, "client list", &f)
	if err != nil {
		return err
	}
	defer closeStore()

	snap, err := readClients(ctx, store, f.secretID)
	if err != nil {
		return clientStoreError("client list", err)
	}
	return a.printClients(&f, snap)
}

// clientJSON is one client in list's --output json: every field of the
// client but its hash.
type clientJSON struct {
	ID      string    `json:"id"`
	Name    string    `json:"name"`
	Created time.Time `json:"created_at,omitzero"`
	RPS     float64   `json:"rps"`
	Burst   int       `json:"burst"`
	// EffectiveBurst is the burst the router applies: Burst, or the
	// default when Burst is 0. It is 0 without a rate limit.
	EffectiveBurst int   `json:"effective_burst"`
	MonthlyQuota   int64 `json:"monthly_quota"`
	Disabled       bool  `json:"disabled"`
}

type clientListJSON struct {
	SecretID string `json:"secret_id"`
	// Exists is false when the secret does not exist yet.
	Exists  bool         `json:"exists"`
	Clients []clientJSON `json:"clients"`
}

func (a *app) printClients(f *clientFlags, snap clientSnapshot) error {
	if f.output == outputJSON {
		out := clientListJSON{SecretID: f.secretID, Exists: snap.exists, Clients: []clientJSON{}}
		for _, c := range snap.list.Clients {
			out.Clients = append(out.Clients, clientJSON{
				ID: c.ID, Name: c.Name, Created: c.Created, RPS: c.RPS, Burst: c.Burst,
				EffectiveBurst: c.EffectiveBurst(), MonthlyQuota: c.MonthlyQuota, Disabled: c.Disabled,
			})
		}
		return a.writeJSON(out)
	}
	switch {
	case !snap.exists:
		fmt.Fprintf(a.stdout, "no clients: the secret %s does not exist yet\n", f.secretID)
		fmt.Fprintf(a.stdout, "next: add the first client with 'rotator client add NAME%s'\n", f.secretFlag())
		return nil
	case len(snap.list.Clients) == 0:
		fmt.Fprintf(a.stdout, "no clients in %s\n", f.secretID)
		fmt.Fprintf(a.stdout, "next: add one with 'rotator client add NAME%s'\n", f.secretFlag())
		return nil
	}
	return a.printClientTable(snap.list.Clients)
}

func (a *app) printClientTable(clients []clientkeys.Client) error {
	tw := tabwriter.NewWriter(a.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tCREATED\tRPS\tBURST\tMONTHLY QUOTA\tDISABLED")
	for _, c := range clients {
		disabled := "no"
		if c.Disabled {
			disabled = "yes"
		}
		rps := "-"
		if c.RPS > 0 {
			rps = strconv.FormatFloat(c.RPS, 'g', -1, 64)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, orDash(c.Name), formatTime(c.Created), rps,
			burstText(c), countOrDash(c.MonthlyQuota), disabled)
	}
	if err := tw.Flush(); err != nil {
		return fmt.Errorf("write client list: %w", err)
	}
	return nil
}

// burstText is the BURST column: the effective burst, marked when it is
// the router's default.
func burstText(c clientkeys.Client) string {
	b := c.EffectiveBurst()
	switch {
	case b == 0:
		return "-"
	case c.Burst == 0:
		return strconv.Itoa(b) + " (default)"
	}
	return strconv.Itoa(b)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func countOrDash(n int64) string {
	if n == 0 {
		return "-"
	}
	return strconv.FormatInt(n, 10)
}

// clientStoreError gives a failed read or write of the client list its
// exit code and hint. Errors that have them already pass unchanged.
func clientStoreError(cmd string, err error) error {
	var ce *cli.Error
	switch {
	case errors.As(err, &ce):
		return err
	case errors.Is(err, keystore.ErrUnavailable):
		return cli.WithCode(exitTransient, fmt.Errorf("%s: %w", cmd, err)).
			WithHint("the store could not be reached; run the command again later")
	case errors.Is(err, keystore.ErrDecryption):
		return cli.WithCode(exitError, fmt.Errorf("%s: %w", cmd, err)).
			WithHint("pass --identity PATH or set KEYTURN_IDENTITY to the age identity the store's secrets are encrypted to")
	}
	return cli.WithCode(exitError, fmt.Errorf("%s: %w", cmd, err))
}
