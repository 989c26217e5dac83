package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
)

// FileOptions configures a file store.
type FileOptions struct {
	// Dir is the store directory. It is created with mode 0700 if missing.
	Dir string
	// IdentityPath is the age identity file that secrets are encrypted to.
	// Empty means Dir/identity.age, which is generated with mode 0600 on
	// first use. A path given here must exist.
	IdentityPath string
	// Logger receives the store's events; nil discards them.
	Logger *slog.Logger
}

// FileStore is the embedded default Store: a directory holding one
// age-encrypted file per secret, with Secrets Manager's label rules.
//
// Everything about a secret (tags, versions and their labels, rotation
// settings, times) is in its encrypted file, named after the secret id.
// Several processes may share a directory: every read-modify-write holds a
// lock file in it and re-reads the secret under the lock, and every write
// replaces the file atomically, so readers take no lock.
type FileStore struct {
	dir      string
	secrets  string
	identity *fileIdentity
	log      *slog.Logger

	// mu serializes this process's writers before they take the file lock,
	// which does not exclude holders within one process.
	mu     sync.Mutex
	lock   *flock.Flock
	closed atomic.Bool
}

var _ Store = (*FileStore)(nil)

const (
	defaultIdentityName = "identity.age"
	lockFileName        = "keyturn.lock"
	secretsDirName      = "secrets"
	lockRetryDelay      = 5 * time.Millisecond
)

// OpenFile opens the file store in opts.Dir, creating the directory and the
// identity if needed.
func OpenFile(opts FileOptions) (*FileStore, error) {
	if opts.Dir == "" {
		return nil, Errorf(ErrInvalidParameter, "OpenFile", "", "store directory is empty: set Dir")
	}
	s := &FileStore{
		dir:     opts.Dir,
		secrets: filepath.Join(opts.Dir, secretsDirName),
		log:     opts.Logger,
		lock:    flock.New(filepath.Join(opts.Dir, lockFileName), flock.SetPermissions(0o600)),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if err := s.makeDirs(); err != nil {
		return nil, err
	}
	if err := s.openIdentity(opts.IdentityPath); err != nil {
		return nil, err
	}
	s.log.Debug("opened file store", "dir", s.dir, "identity", s.identity.path, "recipient", s.identity.publicKey)
	return s, nil
}

func (s *FileStore) makeDirs() error {
	for _, d := range []string{s.dir, s.secrets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return Errorf(ErrUnavailable, "OpenFile", "",
				"cannot create store directory %s: %v: set Dir to a directory this user can write", d, err)
		}
	}
	probe, err := os.CreateTemp(s.secrets, ".probe-*.tmp")
	if err != nil {
		return Errorf(ErrUnavailable, "OpenFile", "",
			"cannot write to store directory %s: %v: make it writable by this user, or set Dir to another directory", s.secrets, err)
	}
	probe.Close()
	os.Remove(probe.Name())
	return nil
}

// openIdentity loads the identity under the store lock, so that two
// processes opening a new store agree on one generated identity.
func (s *FileStore) openIdentity(path string) error {
	generate := path == ""
	if generate {
		path = filepath.Join(s.dir, defaultIdentityName)
	}
	unlock, err := s.acquire(context.Background(), "OpenFile", "")
	if err != nil {
		return err
	}
	defer unlock()
	s.identity, err = loadIdentity(path, generate, func(msg string, args ...any) { s.log.Info(msg, args...) })
	return err
}

// Close releases the store. Operations after Close fail with ErrUnavailable.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	return s.lock.Close()
}

// acquire takes the in-process mutex and the directory's lock file. The
// returned function releases both.
func (s *FileStore) acquire(ctx context.Context, op, secretID string) (func(), error) {
	s.mu.Lock()
	if err := s.checkOpen(op, secretID); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	ok, err := s.lock.TryLockContext(ctx, lockRetryDelay)
	if !ok || err != nil {
		s.mu.Unlock()
		if err == nil {
			err = ctx.Err()
		}
		return nil, &Error{Op: op, SecretID: secretID, Kind: ErrUnavailable, Err: err,
			Msg: fmt.Sprintf("cannot lock %s", s.lock.Path())}
	}
	return func() {
		if err := s.lock.Unlock(); err != nil {
			s.log.Error("cannot unlock the file store", "path", s.lock.Path(), "err", err)
		}
		s.mu.Unlock()
	}, nil
}

func (s *FileStore) checkOpen(op, secretID string) error {
	if s.closed.Load() {
		return Errorf(ErrUnavailable, op, secretID, "the file store is closed")
	}
	return nil
}

func (s *FileStore) secretPath(id string) string {
	return filepath.Join(s.secrets, encodeFileName(id))
}

// read loads a secret's record. A missing secret is ErrNotFound.
func (s *FileStore) read(op, id string) (*secretRecord, error) {
	path := s.secretPath(id)
	r, err := s.readPath(op, id, path)
	if err != nil {
		return nil, err
	}
	if r.ID != id {
		return nil, Errorf(ErrUnavailable, op, id,
			"secret file %s holds secret %s: a file was renamed or copied by hand, so move it back", path, r.ID)
	}
	return r, nil
}

func (s *FileStore) readPath(op, id, path string) (*secretRecord, error) {
	if err := s.checkOpen(op, id); err != nil {
		return nil, err
	}
	sealed, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Errorf(ErrNotFound, op, id, "secret not found")
	}
	if err != nil {
		return nil, &Error{Op: op, SecretID: id, Kind: ErrUnavailable, Msg: "cannot read the secret's file", Err: err}
	}
	r, err := openRecord(sealed, s.identity.identities)
	if errors.Is(err, errWrongIdentity) {
		return nil, Errorf(ErrDecryption, op, id,
			"file %s is encrypted to another age identity than %s (%s): open the store with the identity file it was written with",
			path, s.identity.path, s.identity.publicKey)
	}
	if err != nil {
		return nil, Errorf(ErrDecryption, op, id,
			"cannot decrypt file %s with identity %s: %v: restore the file from a backup", path, s.identity.path, err)
	}
	return r, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxSecretFileSize+1))
	if err == nil && len(data) > maxSecretFileSize {
		err = fmt.Errorf("file is larger than %d bytes", maxSecretFileSize)
	}
	return data, err
}

// write replaces a secret's file atomically: a temporary file in the same
// directory, fsync, rename, fsync of the directory.
func (s *FileStore) write(op string, r *secretRecord) error {
	if n := r.prune(); n > 0 {
		s.log.Debug("pruned unlabelled versions", "secret", r.ID, "deleted", n)
	}
	sealed, err := sealRecord(r, s.identity.recipient)
	if err != nil {
		return &Error{Op: op, SecretID: r.ID, Kind: ErrUnavailable, Msg: "cannot encrypt the secret", Err: err}
	}
	if err := writeFileAtomic(s.secretPath(r.ID), sealed); err != nil {
		return &Error{Op: op, SecretID: r.ID, Kind: ErrUnavailable, Msg: "cannot write the secret's file", Err: err}
	}
	return nil
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".write-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// update runs a read-modify-write of one secret under the lock. change
// reports whether it modified the record; unchanged records are not
// written.
func (s *FileStore) update(ctx context.Context, op, id string, change func(r *secretRecord, now time.Time) (bool, error)) error {
	unlock, err := s.acquire(ctx, op, id)
	if err != nil {
		return err
	}
	defer unlock()
	r, err := s.read(op, id)
	if err != nil {
		return err
	}
	now := time.Now().UTC()
	changed, err := change(r, now)
	if err != nil || !changed {
		return err
	}
	r.LastChanged = now
	return s.write(op, r)
}

// Get reads one version; see Store.
func (s *FileStore) Get(ctx context.Context, secretID string, ref Ref) (Version, error) {
	const op = "GetSecretValue"
	if err := checkSecretID(op, secretID); err != nil {
		return Version{}, err
	}
	r, err := s.read(op, secretID)
	if err != nil {
		return Version{}, err
	}
	v, err := r.get(ref)
	if err != nil {
		return Version{}, err
	}
	return Version{
		SecretID: secretID, VersionID: v.ID, Stages: append([]string(nil), v.Stages...),
		Value: v.Value, Created: v.Created,
	}, nil
}

// Describe returns tags, labels and rotation settings; see Store.
func (s *FileStore) Describe(ctx context.Context, secretID string) (Description, error) {
	const op = "DescribeSecret"
	if err := checkSecretID(op, secretID); err != nil {
		return Description{}, err
	}
	r, err := s.read(op, secretID)
	if err != nil {
		return Description{}, err
	}
	return r.describe(), nil
}

// List returns the description of every secret, sorted by id.
func (s *FileStore) List(ctx context.Context) ([]Description, error) {
	const op = "ListSecrets"
	if err := s.checkOpen(op, ""); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.secrets)
	if err != nil {
		return nil, &Error{Op: op, Kind: ErrUnavailable, Msg: "cannot list " + s.secrets, Err: err}
	}
	var out []Description
	for _, e := range entries {
		if !e.Type().IsRegular() || !isSecretFileName(e.Name()) {
			continue
		}
		r, err := s.readEntry(op, e.Name())
		if errors.Is(err, ErrNotFound) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return nil, err
		}
		out = append(out, r.describe())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].SecretID < out[j].SecretID })
	return out, nil
}

// readEntry reads the secret file name in the secrets directory and checks
// that the id inside matches the name.
func (s *FileStore) readEntry(op, name string) (*secretRecord, error) {
	id, _ := decodeFileName(name)
	path := filepath.Join(s.secrets, name)
	r, err := s.readPath(op, id, path)
	if err != nil {
		return nil, err
	}
	if encodeFileName(r.ID) != name {
		return nil, Errorf(ErrUnavailable, op, r.ID,
			"secret file %s holds secret %s: a file was renamed or copied by hand, so move it back", path, r.ID)
	}
	return r, nil
}
