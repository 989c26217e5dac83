package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

const clientAddUsage = `
Usage: rotator client add NAME [--rps N] [--burst N] [--monthly-quota N]
                          [--key-file PATH] [--secret ID] [--output text|json]

Creates a router client called NAME with a new key, and stores the key's
SHA-256 hash in the client list. It creates the secret if it is missing,
but never the store: 'rotator add' creates a file store.
The key itself is stored nowhere: it is printed once on standard output, or
with --key-file written to a new file that only you can read (mode 0600),
and then only the file's path is printed. This is the only place keyturn
ever shows a key.

NAME is 1 to 64 printable characters, unique in the list and not another
client's id. Without --rps the client has no rate limit; without
--monthly-quota it has no quota. Without --burst the router lets a client
send max(1, ceil(rps)) requests at once, such as 1 for --rps 0.5 and 5 for
--rps 5.

Routers accept the new key at once: a router that sees a kt- key it does
not know re-reads the client list, at most once a second.

Example:
  rotator client add ci --rps 5 --burst 10 --key-file ci.key
  rotator client add billing --monthly-quota 100000 --output json
`

type clientAddFlags struct {
	clientFlags
	rps, burst, quota string
	keyFile           string
}

func (a *app) clientAdd(ctx context.Context, args []string) error {
	var f clientAddFlags
	fs := a.newFlagSet("client add", clientAddUsage)
	f.register(fs)
	fs.StringVar(&f.rps, "rps", "", "rate limit of `N` requests per second, such as 5 or 0.5 (default: no limit)")
	fs.StringVar(&f.burst, "burst", "", "`N` requests the client may send at once on top of --rps (default: max(1, ceil(rps)))")
	fs.StringVar(&f.quota, "monthly-quota", "", "at most `N` requests per calendar month (default: no quota)")
	fs.StringVar(&f.keyFile, "key-file", "", "write the key to a new file at `PATH` (not -), created with mode 0600, instead of printing it; an existing file is never replaced")
	positional, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	c, err := f.newClient(positional)
	if err != nil {
		return err
	}
	return a.runClientAdd(ctx, &f, c)
}

// newClient builds the client that the flags and the NAME argument
// describe, without its id and key. Every failure is a usage error.
func (f *clientAddFlags) newClient(positional []string) (clientkeys.Client, error) {
	const cmd = "client add"
	var c clientkeys.Client
	name, err := clientNameArg(positional)
	if err != nil {
		return c, err
	}
	c.Name = name
	if c.RPS, err = parseRate(f.rps); err != nil {
		return c, err
	}
	burst, err := parseCount("burst", f.burst, "requests allowed at once", 32)
	if err != nil {
		return c, err
	}
	c.Burst = int(burst)
	if c.MonthlyQuota, err = parseCount("monthly-quota", f.quota, "requests per month", 64); err != nil {
		return c, err
	}
	if c.Burst > 0 && c.RPS == 0 {
		return c, cli.Usagef("%s: --burst %d needs a rate limit: a burst is how far a client may go over its rate", cmd, c.Burst).
			WithHint("add --rps N, such as --rps 5 --burst %d, or leave out --burst", c.Burst)
	}
	return c, nil
}

// clientNameArg returns the NAME argument of client add.
func clientNameArg(positional []string) (string, error) {
	const cmd = "client add"
	switch len(positional) {
	case 0:
		return "", cli.Usagef("%s: missing NAME argument", cmd).
			WithHint("usage: rotator client add NAME [flags], such as rotator client add ci")
	case 1:
	default:
		return "", cli.Usagef("%s: expected one NAME argument, got %d arguments", cmd, len(positional)).
			WithHint("quote a name with spaces, such as rotator client add 'billing service'")
	}
	if err := clientkeys.CheckName(positional[0]); err != nil {
		return "", cli.Usagef("%s: NAME %s", cmd, err)
	}
	return positional[0], nil
}

// maxRate is the largest --rps accepted: a million requests per second is
// far above what one router serves, so a larger value is a typo.
const maxRate = 1e6

// parseRate reads --rps; "" is no limit.
func parseRate(v string) (float64, error) {
	if v == "" {
		return 0, nil
	}
	rps, err := strconv.ParseFloat(v, 64)
	switch {
	case err != nil || math.IsNaN(rps) || math.IsInf(rps, 0):
		return 0, cli.Usagef("client add: --rps %q is not a number: give requests per second, such as 5 or 0.5", v)
	case rps < 0:
		return 0, cli.Usagef("client add: --rps %s is negative: give 0 or more requests per second (0 is no limit)", v)
	case rps > maxRate:
		return 0, cli.Usagef("client add: --rps %s is over the maximum of %g requests per second: leave out --rps for no limit", v, float64(maxRate))
	}
	return rps, nil
}

// parseCount reads a whole-number flag that fits in bits bits; "" is 0.
func parseCount(name, v, unit string, bits int) (int64, error) {
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseInt(v, 10, bits)
	switch {
	case err != nil && errors.Is(err, strconv.ErrRange):
		return 0, cli.Usagef("client add: --%s %s is out of range: the maximum is %d %s", name, v, int64(1)<<(bits-1)-1, unit)
	case err != nil:
		return 0, cli.Usagef("client add: --%s %q is not a whole number: give a number of %s, such as 100", name, v, unit)
	case n < 0:
		return 0, cli.Usagef("client add: --%s %s is negative: give 0 or more %s", name, v, unit)
	}
	return n, nil
}

// runClientAdd writes the key file, if any, before it opens the store, so
// that a path that cannot be used leaves the store untouched. It removes
// the file again when the client cannot be stored.
func (a *app) runClientAdd(ctx context.Context, f *clientAddFlags, c clientkeys.Client) error {
	if err := f.checkSecret("client add"); err != nil {
		return err
	}
	if f.keyFile == "-" {
		return cli.Usagef("client add: --key-file - is not supported: a key file must be a path").
			WithHint("leave out --key-file to print the key once on standard output, or give a path such as ./ci.key")
	}
	key, hash, err := clientkeys.NewKey()
	if err != nil {
		return err
	}
	c.Hash = hash
	c.Created = a.clockNow().UTC().Truncate(time.Second)
	keyPath, err := writeKeyFile(f.keyFile, key)
	if err != nil {
		return err
	}

	if err := a.storeNewClient(ctx, f, &c); err != nil {
		if keyPath != "" {
			_ = os.Remove(keyPath)
		}
		return err
	}
	return a.printClientAdded(f, c, key, keyPath)
}

func (a *app) storeNewClient(ctx context.Context, f *clientAddFlags, c *clientkeys.Client) error {
	store, closeStore, err := a.openClientStore(ctx, "client add", &f.clientFlags)
	if err != nil {
		return err
	}
	defer closeStore()
	if err := a.updateClients(ctx, store, f.secretID, addClient(c)); err != nil {
		return clientStoreError("client add", err)
	}
	return nil
}

// addClient returns the change that appends c to the list, giving it an
// id no other client has. A list that already holds c's hash shows the
// change made, by this command in an earlier attempt.
func addClient(c *clientkeys.Client) clientChange {
	return func(l clientkeys.List) (clientkeys.List, bool, error) {
		for _, have := range l.Clients {
			if have.Hash == c.Hash {
				return l, false, nil
			}
			if err := checkNameFree(c.Name, have); err != nil {
				return l, false, err
			}
		}
		if err := assignClientID(c, l); err != nil {
			return l, false, err
		}
		next := l
		next.Clients = append(slices.Clone(l.Clients), *c)
		return next, true, nil
	}
}

// checkNameFree rejects name when it is the name or the id of the client
// have. Revoke, disable and enable take either, so a name must not be
// another client's id.
func checkNameFree(name string, have clientkeys.Client) error {
	switch name {
	case have.Name:
		return cli.WithCode(exitError, fmt.Errorf("client add: a client named %q already exists (id %s)", name, have.ID)).
			WithHint("choose another name, or revoke that client first with 'rotator client revoke %s'", have.ID)
	case have.ID:
		return cli.WithCode(exitError, fmt.Errorf("client add: %q is the id of an existing client (named %s), and a name may not be another client's id", name, orDash(have.Name))).
			WithHint("choose another name; 'rotator client list' shows the clients")
	}
	return nil
}

// assignClientID gives c a new id unless it has one that no client in l
// uses as its id or name.
func assignClientID(c *clientkeys.Client, l clientkeys.List) error {
	inUse := func(id string) bool {
		return slices.ContainsFunc(l.Clients, func(have clientkeys.Client) bool { return have.ID == id || have.Name == id })
	}
	for c.ID == "" || inUse(c.ID) {
		id, err := clientkeys.NewClientID()
		if err != nil {
			return err
		}
		c.ID = id
	}
	return nil
}

// writeKeyFile writes key to a new file at path with mode 0600 and returns
// its absolute path. It never replaces a file, because one that exists may
// hold another key. An empty path writes nothing.
func writeKeyFile(path string, key keystore.Secret) (string, error) {
	if path == "" {
		return "", nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", fmt.Errorf("client add: --key-file %s: %w", path, err)
	}
	fh, err := os.OpenFile(abs, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", keyFileError(path, err)
	}
	_, err = fh.WriteString(key.Reveal() + "\n")
	if err == nil {
		err = fh.Sync()
	}
	if closeErr := fh.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		_ = os.Remove(abs)
		return "", fmt.Errorf("client add: write --key-file %s: %w", path, err)
	}
	return abs, nil
}

// keyFileError words a key file that cannot be created.
func keyFileError(path string, err error) error {
	switch {
	case errors.Is(err, fs.ErrExist):
		return cli.WithCode(exitError, fmt.Errorf("client add: --key-file %s already exists", path)).
			WithHint("give a path that does not exist yet: rotator client add never replaces a file, which may hold another key")
	case errors.Is(err, fs.ErrNotExist):
		return cli.WithCode(exitError, fmt.Errorf("client add: cannot create --key-file %s: its directory does not exist", path)).
			WithHint("create the directory first, or give a path in an existing one")
	case errors.Is(err, fs.ErrPermission):
		return cli.WithCode(exitError, fmt.Errorf("client add: cannot create --key-file %s: permission denied", path)).
			WithHint("give a path in a directory you can write to")
	}
	return cli.WithCode(exitError, fmt.Errorf("client add: cannot create --key-file %s: %w", path, err))
}

// clientAddedJSON is add's --output json. Key holds the revealed key, the
// only place keyturn prints one; it is empty when the key went to a file.
type clientAddedJSON struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Key     string `json:"key,omitempty"`
	KeyFile string `json:"key_file,omitempty"`
}

func (a *app) printClientAdded(f *clientAddFlags, c clientkeys.Client, key keystore.Secret, keyPath string) error {
	out := clientAddedJSON{ID: c.ID, Name: c.Name, KeyFile: keyPath}
	if keyPath == "" {
		out.Key = key.Reveal()
	}
	if f.output == outputJSON {
		if err := a.writeJSON(out); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(a.stdout, "added client %s (%s) to %s\n", c.ID, c.Name, f.secretID)
		if keyPath != "" {
			fmt.Fprintf(a.stdout, "its key is in %s (mode 0600)\n", keyPath)
		} else {
			fmt.Fprintf(a.stdout, "key: %s\n", out.Key)
		}
	}
	if keyPath == "" {
		fmt.Fprintln(a.stderr, "rotator: warning: the key is shown only once: keyturn stores only its hash, so save it now (or use --key-file PATH)")
	}
	return nil
}
