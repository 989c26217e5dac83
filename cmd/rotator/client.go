package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

const clientUsage = `
Usage: rotator client add|list|revoke|disable|enable [flags]

Manages the keys that clients use to call the router. Each client has an
id, a unique name, optional rate limits and a key that starts with kt-.
The keys are stored as SHA-256 hashes in one secret (keyturn/router-clients
unless --secret names another), which the router reads at run time: a change
takes effect without restarting the router.

Commands:
  add NAME         create a client and its key; the key is shown only once
  list             show the clients and their limits, never their keys
  revoke ID|NAME   remove a client, so that its key stops working
  disable ID|NAME  reject a client's key until it is enabled again
  enable ID|NAME   accept a disabled client's key again

Run 'rotator client COMMAND -h' for a command's flags. Every command takes
the store flags (--store, --identity) and works on either store.

Example:
  rotator client add ci --rps 5 --burst 10 --key-file ci.key
  rotator client list
  rotator client disable ci
  rotator client revoke ci
`

// client dispatches the client subcommands.
func (a *app) client(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return cli.Usagef("client: missing command: use add, list, revoke, disable or enable").
			WithHint("run 'rotator help client' for what each does")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(a.stdout, strings.TrimLeft(clientUsage, "\n"))
		return flag.ErrHelp
	case "add":
		return a.clientAdd(ctx, args[1:])
	case "list":
		return a.clientList(ctx, args[1:])
	case "revoke":
		return a.clientRevoke(ctx, args[1:])
	case "disable":
		return a.clientSetDisabled(ctx, args[1:], true)
	case "enable":
		return a.clientSetDisabled(ctx, args[1:], false)
	}
	return cli.Usagef("client: unknown command %q: use add, list, revoke, disable or enable", args[0]).
		WithHint("run 'rotator help client' for what each does")
}

// clientFlags are the flags every client subcommand takes.
type clientFlags struct {
	storeFlags
	output   outputFlag
	secretID string
}

// register registers the store flags (without the host policy: client
// commands send no key to a provider), --output and --secret.
func (f *clientFlags) register(fs *flag.FlagSet) {
	f.output = outputText
	f.registerStore(fs, anyStoreHelp)
	f.output.register(fs)
	fs.StringVar(&f.secretID, "secret", clientkeys.DefaultSecretID, "`ID` of the secret that holds the client list")
}

// checkSecret checks --secret with the secret name rule of package
// keystore. An ARN, which the AWS store also accepts, is left to the store.
func (f *clientFlags) checkSecret(cmd string) error {
	id := f.secretID
	switch {
	case strings.TrimSpace(id) == "":
		return cli.Usagef("%s: --secret is empty: name the secret that holds the client list, such as %s", cmd, clientkeys.DefaultSecretID)
	case strings.HasPrefix(id, "arn:"):
		return nil
	case len(id) > keystore.MaxSecretIDLen:
		return cli.Usagef("%s: --secret is %d characters long: the maximum is %d", cmd, len(id), keystore.MaxSecretIDLen)
	}
	for i, r := range id {
		if !keystore.IsSecretIDRune(r) {
			return cli.Usagef("%s: invalid --secret %q: character %q at byte %d is not allowed: use letters, digits and %s",
				cmd, id, r, i, keystore.SecretIDPunctuation)
		}
	}
	return nil
}

// secretFlag returns " --secret ID" when --secret names a secret other
// than the default, for commands suggested in hints.
func (f *clientFlags) secretFlag() string {
	if f.secretID == clientkeys.DefaultSecretID {
		return ""
	}
	return " --secret " + f.secretID
}

// openClientStore checks --secret, resolves the store and opens it. It
// never creates a file store, because a mistyped store URL would then get
// clients that no router reads: only add and dev create one.
func (a *app) openClientStore(ctx context.Context, cmd string, f *clientFlags) (keystore.Store, func(), error) {
	if err := f.checkSecret(cmd); err != nil {
		return nil, nil, err
	}
	s, err := a.resolve(&f.storeFlags)
	if err != nil {
		return nil, nil, err
	}
	return a.openStore(ctx, s, false)
}
