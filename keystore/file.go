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
	"sync"
	"sync/atomic"
	"time"

	"github.com/gofrs/flock"
)

// FileOptions configures a file store.
type FileOptions struct {
	// Dir is the store directory.
	Dir string
	// IdentityPath is the age identity file that secrets are encrypted to.
	// Empty means Dir/identity.age, which Create generates with mode 0600
	// when the store contains no secrets yet. A path given here must exist.
	IdentityPath string
	// Create lets OpenFile create a missing store: the directory (mode
	// 0700), its secrets directory, the lock file and the identity. False
	// opens only an existing store, and OpenFile then writes nothing.
	Create bool
	// Logger receives the store's events; nil discards them.
	Logger *slog.Logger
	// OpenLockTimeout bounds how long OpenFile with Create waits for the
	// store's lock file while another process holds it. Zero means
	// DefaultOpenLockTimeout.
	OpenLockTimeout time.Duration
}

// DefaultOpenLockTimeout is how long OpenFile with Create waits for the
// lock file by default. A writer holds the lock only while it writes one
// secret, so a wait this long most likely means another process is stuck.
const DefaultOpenLockTimeout = 30 * time.Second

// FileStore is the embedded default Store: a directory holding one
// age-encrypted file per secret, with Secrets Manager's label rules.
//
// Everything about a secret (tags, versions and their labels, rotation
// settings, times) is in its encrypted file, named after the secret id.
// Several processes may share a directory: every read-modify-write holds a
// lock file in it and re-reads the secret under the lock, and every write
// replaces the file atomically, so readers take no lock and need no write
// permission. Only a write needs to write to the directory, so a user who
// may only read it can open and read the store.
type FileStore struct {
	dir      string
	secrets  string
	identity *fileIdentity
	log      *slog.Logger
	// openLockTimeout bounds OpenFile's wait for the lock.
	openLockTimeout time.Duration

	// mu serializes this process's writers before they take the file lock,
	// which does not exclude holders within one process. It also guards
	// swept.
	mu   sync.Mutex
	lock *flock.Flock
	// swept records that this process removed stale temporary files, which
	// it does the first time it takes the lock.
	swept  bool
	closed atomic.Bool
}

var _ Store = (*FileStore)(nil)

const (
	defaultIdentityName = "identity.age"
	lockFileName        = "keyturn.lock"
	secretsDirName      = "secrets"
	lockRetryDelay      = 5 * time.Millisecond
)

func newFileStore(opts FileOptions) *FileStore {
	s := &FileStore{
		dir:     opts.Dir,
		secrets: filepath.Join(opts.Dir, secretsDirName),
		log:     opts.Logger,
		lock:    flock.New(filepath.Join(opts.Dir, lockFileName), flock.SetPermissions(0o600)),
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	s.openLockTimeout = opts.OpenLockTimeout
	if s.openLockTimeout <= 0 {
		s.openLockTimeout = DefaultOpenLockTimeout
	}
	return s
}

// Close releases the store. Operations after Close fail with ErrUnavailable.
func (s *FileStore) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed.Store(true)
	return s.lock.Close()
}

// acquire takes the in-process mutex and the directory's lock file,
// creating the lock file if it is missing. The returned function releases
// both. The first lock this process takes also removes stale temporary
// files.
func (s *FileStore) acquire(ctx context.Context, op, secretID string) (func(), error) {
	s.mu.Lock()
	if err := s.checkOpen(op, secretID); err != nil {
		s.mu.Unlock()
		return nil, err
	}
	ok, err := s.lock.TryLockContext(ctx, lockRetryDelay)
	if !ok || err != nil {
		s.mu.Unlock()
		return nil, s.lockErr(ctx, op, secretID, err)
	}
	if !s.swept {
		s.swept = true
		s.removeStaleTemps()
	}
	return func() {
		if err := s.lock.Unlock(); err != nil {
			s.log.Error("cannot unlock the file store", "path", s.lock.Path(), "err", err)
		}
		s.mu.Unlock()
	}, nil
}

func (s *FileStore) lockErr(ctx context.Context, op, secretID string, err error) *Error {
	switch {
	case err == nil || ctx.Err() != nil:
		return &Error{Op: op, SecretID: secretID, Kind: ErrUnavailable, Err: ctx.Err(),
			Msg: fmt.Sprintf("stopped waiting for the lock file %s, which another keyturn process may hold while it writes: retry", s.lock.Path())}
	case isUnwritable(err):
		return s.unwritableErr(op, secretID, err)
	default:
		return &Error{Op: op, SecretID: secretID, Kind: ErrUnavailable, Err: err,
			Msg: fmt.Sprintf("cannot lock the store with %s: check that its file system supports file locks, then retry", s.lock.Path())}
	}
}

func (s *FileStore) checkOpen(op, secretID string) error {
	if s.closed.Load() {
		return Errorf(ErrUnavailable, op, secretID, "the file store is closed: open it again")
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
			"secret file %s contains secret %s: a file was renamed or copied by hand, so move it back", path, r.ID)
	}
	return r, nil
}

func (s *FileStore) readPath(op, id, path string) (*secretRecord, error) {
	if err := s.checkOpen(op, id); err != nil {
		return nil, err
	}
	sealed, err := readLimited(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, Errorf(ErrNotFound, op, id, "secret not found: check the secret id")
	}
	if err != nil {
		return nil, &Error{Op: op, SecretID: id, Kind: ErrUnavailable, Err: err,
			Msg: fmt.Sprintf("cannot read the secret's file %s: run as a user who can read it, such as the store's owner", path)}
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
// directory, fsync, rename, fsync of the directory. It creates the secrets
// directory if an existing store lacks it.
func (s *FileStore) write(op string, r *secretRecord) error {
	if n := r.prune(); n > 0 {
		s.log.Debug("pruned unlabelled versions", "secret", r.ID, "deleted", n)
	}
	sealed, err := sealRecord(r, s.identity.recipient)
	if err != nil {
		return &Error{Op: op, SecretID: r.ID, Kind: ErrUnavailable, Msg: "cannot encrypt the secret: retry", Err: err}
	}
	if err := os.Mkdir(s.secrets, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return s.writeErr(op, r.ID, err)
	}
	if err := writeFileAtomic(s.secretPath(r.ID), sealed); err != nil {
		return s.writeErr(op, r.ID, err)
	}
	return nil
}

func (s *FileStore) writeErr(op, secretID string, err error) *Error {
	if isUnwritable(err) {
		return s.unwritableErr(op, secretID, err)
	}
	return &Error{Op: op, SecretID: secretID, Kind: ErrUnavailable, Err: err,
		Msg: fmt.Sprintf("cannot write the secret's file in %s: check free space and the file system, then retry", s.secrets)}
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".write-*.tmp")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeAndClose(tmp, data); err != nil {
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
