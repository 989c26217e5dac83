package keystore

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"filippo.io/age"
)

// fileIdentity is the age key pair that a file store encrypts to and
// decrypts with.
type fileIdentity struct {
	path      string
	recipient age.Recipient
	// identities are all the identities in the file; the first X25519 or
	// hybrid identity gives the recipient.
	identities []age.Identity
	publicKey  string
}

// loadIdentity reads the identity file at path.
func loadIdentity(path string) (*fileIdentity, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Errorf(ErrNotFound, opOpenFile, "",
			"the identity file %s does not exist: check its path, or restore it from a backup; a new store needs no identity file named, because rotator add creates one in the store directory", path)
	}
	if err != nil {
		return nil, Errorf(ErrUnavailable, opOpenFile, "",
			"cannot read the identity file %s: %v: run as a user who can read it, such as its owner", path, err)
	}
	defer clear(data)
	if err := checkIdentityMode(path); err != nil {
		return nil, err
	}
	return parseIdentity(path, data)
}

// checkIdentityMode rejects an identity file that others can read, as ssh
// does for private keys.
func checkIdentityMode(path string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return Errorf(ErrUnavailable, opOpenFile, "",
			"cannot read the mode of the identity file %s: %v: run as a user who can read it, such as its owner", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return Errorf(ErrInvalidParameter, opOpenFile, "",
			"the identity file %s has mode %04o, so group or others can access it: run chmod 600 %s", path, perm, path)
	}
	return nil
}

func parseIdentity(path string, data []byte) (*fileIdentity, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, Errorf(ErrInvalidParameter, opOpenFile, "",
			"the identity file %s is not an age identity file (%s): it must contain a line starting with AGE-SECRET-KEY-1, as age-keygen writes",
			path, describeIdentityError(err))
	}
	id := &fileIdentity{path: path, identities: ids}
	for _, i := range ids {
		switch i := i.(type) {
		case *age.X25519Identity:
			id.recipient, id.publicKey = i.Recipient(), i.Recipient().String()
		case *age.HybridIdentity:
			id.recipient, id.publicKey = i.Recipient(), i.Recipient().String()
		}
		if id.recipient != nil {
			return id, nil
		}
	}
	return nil, Errorf(ErrInvalidParameter, opOpenFile, "",
		"the identity file %s contains no X25519 or hybrid identity (a line starting with AGE-SECRET-KEY-1 or AGE-SECRET-KEY-PQ-1): use the identity file the store's secrets were written with", path)
}

// describeIdentityError keeps the line number of an age parse error and
// drops the rest, which can quote characters of the key.
func describeIdentityError(err error) string {
	msg := err.Error()
	if prefix, _, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(prefix, "error at line ") {
		return "invalid key at line " + strings.TrimPrefix(prefix, "error at line ")
	}
	return msg
}

// generateIdentity writes a new X25519 identity to path with mode 0600. It
// never replaces a file: if another process created one first, it keeps
// that one.
func generateIdentity(path string) error {
	k, err := age.GenerateX25519Identity()
	if err != nil {
		return err
	}
	data := fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), k.Recipient(), k)
	defer clear(data)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := writeAndClose(f, data); err != nil {
		os.Remove(path)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// writeAndClose writes data to f, syncs and closes it.
func writeAndClose(f *os.File, data []byte) error {
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
