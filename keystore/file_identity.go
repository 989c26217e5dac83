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

// loadIdentity reads the identity file at path. If the file is missing and
// generate is set, it creates one first, as age-keygen would.
func loadIdentity(path string, generate bool, log func(msg string, args ...any)) (*fileIdentity, error) {
	const op = "OpenFile"
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && generate {
		data, err = generateIdentity(path)
		if err != nil {
			return nil, Errorf(ErrUnavailable, op, "",
				"cannot create identity file %s: %v: make the store directory writable, or set IdentityPath to an existing identity", path, err)
		}
		log("generated age identity for the file store", "path", path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Errorf(ErrNotFound, op, "",
			"identity file %s does not exist: create it with age-keygen -o %s, or leave IdentityPath empty to generate one in the store directory", path, path)
	}
	if err != nil {
		return nil, Errorf(ErrUnavailable, op, "", "cannot read identity file %s: %v", path, err)
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
		return Errorf(ErrUnavailable, "OpenFile", "", "cannot stat identity file %s: %v", path, err)
	}
	if perm := info.Mode().Perm(); perm&0o077 != 0 {
		return Errorf(ErrInvalidParameter, "OpenFile", "",
			"identity file %s has mode %04o, so group or others can access it: run chmod 600 %s", path, perm, path)
	}
	return nil
}

func parseIdentity(path string, data []byte) (*fileIdentity, error) {
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		return nil, Errorf(ErrInvalidParameter, "OpenFile", "",
			"identity file %s is not an age identity file (%s): it must hold a line starting with AGE-SECRET-KEY-1, as age-keygen writes",
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
	return nil, Errorf(ErrInvalidParameter, "OpenFile", "",
		"identity file %s holds no X25519 or hybrid identity: generate one with age-keygen", path)
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
// never replaces a file: if another process created one first, it reads
// that one.
func generateIdentity(path string) ([]byte, error) {
	k, err := age.GenerateX25519Identity()
	if err != nil {
		return nil, err
	}
	data := fmt.Appendf(nil, "# created: %s\n# public key: %s\n%s\n",
		time.Now().UTC().Format(time.RFC3339), k.Recipient(), k)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		clear(data)
		return os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return data, syncDir(filepath.Dir(path))
}
