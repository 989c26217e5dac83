package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/keyturn/keyturn/internal/cli"
	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

const (
	// devClientName names the router client that dev issues at each start.
	devClientName = "dev"
	// devKeyFileName is the file in the dev directory that holds the dev
	// client's key.
	devKeyFileName = "client.key"
)

// issueDevClient gives the router client named "dev" a new key, replacing
// the entry of an earlier start, and writes the key to DIR/client.key. It
// returns the file's path. The key is stored before the file is written,
// so the file never holds a key the router does not accept.
func (a *app) issueDevClient(ctx context.Context, store keystore.Store, dir string) (string, error) {
	path := filepath.Join(dir, devKeyFileName)
	key, hash, err := clientkeys.NewKey()
	if err != nil {
		return "", fmt.Errorf("dev: %w", err)
	}
	c := clientkeys.Client{Name: devClientName, Hash: hash, Created: a.clockNow().UTC().Truncate(time.Second)}
	if err := a.updateClients(ctx, store, clientkeys.DefaultSecretID, replaceDevClient(&c)); err != nil {
		return "", clientStoreError("dev: issue the dev client key", err)
	}
	if err := writeFileAtomic(path, key); err != nil {
		return "", fmt.Errorf("dev: write the dev client key: %w", err)
	}
	return path, nil
}

// checkKeyFilePath rejects a directory at DIR/client.key. Dev checks it
// before it writes anything to the store, since a key that cannot be
// written is lost, and the client it was issued for with it.
func checkKeyFilePath(dir string) error {
	path := filepath.Join(dir, devKeyFileName)
	if info, err := os.Lstat(path); err == nil && info.IsDir() {
		return cli.WithCode(exitError, fmt.Errorf("dev: %s is a directory, where dev writes its client key", path)).
			WithHint("remove or rename it, then start dev again")
	}
	return nil
}

// replaceDevClient returns the change that removes every other client
// named "dev" and adds c.
func replaceDevClient(c *clientkeys.Client) clientChange {
	add := addClient(c)
	return func(l clientkeys.List) (clientkeys.List, bool, error) {
		kept := l
		kept.Clients = slices.DeleteFunc(slices.Clone(l.Clients), func(have clientkeys.Client) bool {
			return have.Name == devClientName && have.Hash != c.Hash
		})
		next, added, err := add(kept)
		return next, added || len(kept.Clients) != len(l.Clients), err
	}
}

// writeFileAtomic writes key to path with mode 0600 through a temporary
// file in the same directory, synced and renamed over path, so that a
// reader sees the old key or the new one, never part of one.
func writeFileAtomic(path string, key keystore.Secret) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // fails harmlessly once renamed
	// CreateTemp creates the file with mode 0600; Chmod only makes sure
	// of it.
	err = tmp.Chmod(0o600)
	if err == nil {
		_, err = tmp.WriteString(key.Reveal() + "\n")
	}
	if err == nil {
		err = tmp.Sync()
	}
	if closeErr := tmp.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(filepath.Dir(path))
}

// syncDir flushes a directory entry change, such as a rename, to disk.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
