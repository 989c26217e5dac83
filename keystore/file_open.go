package keystore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"filippo.io/age"
)

const (
	opOpenFile = "OpenFile"
	// staleTempAge is how old a temporary file must be before a writer
	// removes it as the leftover of an interrupted write.
	staleTempAge = time.Minute
)

// OpenFile opens the file store in opts.Dir.
//
// Without opts.Create, OpenFile creates nothing, writes nothing and takes no
// lock, so a user who may only read the directory can read the store. A
// directory that is missing, or that has neither an identity.age nor a
// secrets directory, is then an error matching ErrNotFound. With
// opts.Create, OpenFile creates the directory, its secrets directory, the
// lock file and, when opts.IdentityPath is empty, the identity. It creates
// a store only in a new or empty directory, or in one that already holds a
// store (an identity.age, a secrets directory or a keyturn.lock): any other
// existing directory is an error matching ErrInvalidParameter.
//
// OpenFile never generates an identity for a store that already holds
// secrets: if Dir/identity.age is missing while secret files exist, it
// returns an error matching ErrDecryption, because those secrets are
// encrypted to the missing identity and a new one could read none of them.
// For the same reason it returns an error matching ErrDecryption, and
// writes nothing, when the store holds secrets and the identity decrypts
// none of them: writing with it would leave the store encrypted to two
// identities.
func OpenFile(opts FileOptions) (*FileStore, error) {
	if opts.Dir == "" {
		return nil, Errorf(ErrInvalidParameter, opOpenFile, "",
			"no store directory given: name the directory of the file store")
	}
	s := newFileStore(opts)
	if err := s.prepareDir(opts.Create); err != nil {
		return nil, err
	}
	if err := s.openIdentity(opts.IdentityPath, opts.Create); err != nil {
		return nil, err
	}
	if err := s.checkIdentityMatches(); err != nil {
		return nil, err
	}
	s.log.Debug("opened file store", "dir", s.dir, "identity", s.identity.path, "recipient", s.identity.publicKey)
	return s, nil
}

// prepareDir checks that the store directory exists and is a keyturn store,
// or, when create is set, creates it or checks that it may hold a new store.
func (s *FileStore) prepareDir(create bool) error {
	info, err := os.Stat(s.dir)
	missing := errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
	switch {
	case missing && !create:
		return s.noStore()
	case err != nil && !missing:
		return s.unreadableDirErr(err)
	case err == nil && !info.IsDir():
		return Errorf(ErrInvalidParameter, opOpenFile, "",
			"the store directory %s is a file, not a directory: check the store URL", s.dir)
	}
	if !create {
		return s.checkIsStore()
	}
	if !missing {
		if err := s.checkCanCreateIn(); err != nil {
			return err
		}
	}
	return s.makeDirs()
}

// checkCanCreateIn accepts an existing directory for a new store only if it
// is empty or already a keyturn store, so that a mistyped store URL such as
// file:/// adds no store files among other files.
func (s *FileStore) checkCanCreateIn() error {
	isStore, err := s.hasStoreFiles()
	if err != nil || isStore {
		return err
	}
	f, err := os.Open(s.dir)
	if err != nil {
		return s.unreadableDirErr(err)
	}
	defer f.Close()
	names, err := f.Readdirnames(1)
	if len(names) == 0 && errors.Is(err, io.EOF) {
		return nil
	}
	if err != nil {
		return s.unreadableDirErr(err)
	}
	return Errorf(ErrInvalidParameter, opOpenFile, "",
		"%s is not empty and is not a keyturn file store: choose an empty or new directory", s.dir)
}

// hasStoreFiles reports whether the directory contains an identity.age, a
// secrets directory or a keyturn.lock. Every store that keyturn created, or
// began to create, has at least one of them.
func (s *FileStore) hasStoreFiles() (bool, error) {
	info, err := os.Stat(s.secrets)
	if err == nil && info.IsDir() {
		return true, nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, syscall.ENOTDIR) {
		return false, s.unreadableDirErr(err)
	}
	for _, name := range []string{defaultIdentityName, lockFileName} {
		_, err := os.Lstat(filepath.Join(s.dir, name))
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return false, s.unreadableDirErr(err)
		}
	}
	return false, nil
}

func (s *FileStore) unreadableDirErr(err error) error {
	return Errorf(ErrUnavailable, opOpenFile, "",
		"cannot open the store directory %s: %v: make it readable by this user", s.dir, err)
}

func (s *FileStore) noStore() error {
	return Errorf(ErrNotFound, opOpenFile, "",
		"no keyturn file store at %s: check the store URL, or create one with rotator add", s.dir)
}

// checkIsStore accepts a directory with an identity.age or a secrets
// directory, which every store that keyturn created has.
func (s *FileStore) checkIsStore() error {
	for _, p := range []string{s.secrets, filepath.Join(s.dir, defaultIdentityName)} {
		_, err := os.Lstat(p)
		if err == nil {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return s.unreadableDirErr(err)
		}
	}
	return s.noStore()
}

func (s *FileStore) makeDirs() error {
	for _, d := range []string{s.dir, s.secrets} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return Errorf(ErrUnavailable, opOpenFile, "",
				"cannot create the store directory %s: %v: choose a directory this user can create", d, err)
		}
	}
	return nil
}

// openIdentity loads the identity. Only with create does it take the store
// lock, so that two processes creating one store agree on one generated
// identity.
func (s *FileStore) openIdentity(path string, create bool) error {
	if path != "" {
		var err error
		s.identity, err = loadIdentity(path)
		return err
	}
	path = filepath.Join(s.dir, defaultIdentityName)
	if !create {
		return s.openDefaultIdentity(path, false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.openLockTimeout)
	defer cancel()
	unlock, err := s.acquire(ctx, opOpenFile, "")
	if err != nil && ctx.Err() != nil {
		return s.openLockTimeoutErr(ctx.Err())
	}
	if err != nil {
		return err
	}
	defer unlock()
	return s.openDefaultIdentity(path, true)
}

func (s *FileStore) openLockTimeoutErr(err error) *Error {
	return &Error{Op: opOpenFile, Kind: ErrUnavailable, Err: err,
		Msg: fmt.Sprintf("timed out after %s waiting for the lock file %s: another keyturn process holds it. "+
			"Let that process finish or stop it, then retry", s.openLockTimeout, s.lock.Path())}
}

// openDefaultIdentity loads Dir/identity.age, generating it first if it is
// missing, generate is set and the store holds no secrets.
func (s *FileStore) openDefaultIdentity(path string, generate bool) error {
	_, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := s.checkNoSecrets(path); err != nil {
			return err
		}
		if !generate {
			return Errorf(ErrNotFound, opOpenFile, "",
				"the identity file %s does not exist: restore it from a backup, or open the store with the identity file its secrets were written with", path)
		}
		if err := generateIdentity(path); err != nil {
			return Errorf(ErrUnavailable, opOpenFile, "",
				"cannot create the identity file %s: %v: make the store directory %s writable by this user, or open the store with an existing identity file",
				path, err, s.dir)
		}
		s.log.Info("generated age identity for the file store", "path", path)
	}
	s.identity, err = loadIdentity(path)
	return err
}

// checkNoSecrets fails if the secrets directory contains a secret file,
// because those are encrypted to the missing identity at path.
func (s *FileStore) checkNoSecrets(path string) error {
	entries, err := os.ReadDir(s.secrets)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return Errorf(ErrUnavailable, opOpenFile, "",
			"cannot list the secrets directory %s: %v: make it readable by this user", s.secrets, err)
	}
	for _, e := range entries {
		if isSecretFileName(e.Name()) {
			return Errorf(ErrDecryption, opOpenFile, "",
				"the identity file %s is missing, but the secrets in %s are encrypted to it: restore it from a backup, or open the store with the identity file they were written with",
				path, s.secrets)
		}
	}
	return nil
}

// checkIdentityMatches fails if the store holds secrets and the identity
// decrypts none of them. It reads only each file's age header, and stops at
// the first file the identity opens. A file that cannot be read or is not
// an age file proves nothing either way, so it is skipped. Only files
// encrypted to other identities count against the identity.
func (s *FileStore) checkIdentityMatches() error {
	entries, err := os.ReadDir(s.secrets)
	if err != nil {
		return nil // no secrets yet, or an unreadable directory that reads report
	}
	foreign := 0
	for _, e := range entries {
		if !e.Type().IsRegular() || !isSecretFileName(e.Name()) {
			continue
		}
		switch s.identityOpens(filepath.Join(s.secrets, e.Name())) {
		case headerOpens:
			return nil
		case headerForeign:
			foreign++
		}
	}
	if foreign == 0 {
		return nil
	}
	return Errorf(ErrDecryption, opOpenFile, "",
		"the identity file %s decrypts none of the secrets in %s (%s): open the store with the identity file its secrets were written with",
		s.identity.path, s.dir, countFiles(foreign, "is", "are")+" encrypted to another identity")
}

// headerMatch is the result of trying an identity on one secret file's age
// header.
type headerMatch int

const (
	headerUnknown headerMatch = iota // unreadable, or not an age file
	headerOpens
	headerForeign // encrypted to another identity
)

func (s *FileStore) identityOpens(path string) headerMatch {
	f, err := os.Open(path)
	if err != nil {
		return headerUnknown
	}
	defer f.Close()
	// Decrypt unwraps the file key from the header and returns before it
	// reads the payload.
	_, err = age.Decrypt(io.LimitReader(f, maxSecretFileSize), s.identity.identities...)
	var noMatch *age.NoIdentityMatchError
	switch {
	case err == nil:
		return headerOpens
	case errors.As(err, &noMatch):
		return headerForeign
	}
	return headerUnknown
}

// countFiles words n secret files with the verb that agrees with n.
func countFiles(n int, singular, plural string) string {
	if n == 1 {
		return "1 secret file " + singular
	}
	return fmt.Sprintf("%d secret files %s", n, plural)
}

// removeStaleTemps deletes the temporary files that interrupted writes left
// in the secrets directory. The caller holds the store lock, so no keyturn
// write is in flight. The age check also spares a file that a writer
// outside the lock may be creating right now.
func (s *FileStore) removeStaleTemps() {
	entries, err := os.ReadDir(s.secrets)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot list the secrets directory to remove temporary files", "dir", s.secrets, "err", err)
		}
		return
	}
	cutoff := time.Now().Add(-staleTempAge)
	for _, e := range entries {
		if !isTempFileName(e.Name()) || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil || info.ModTime().After(cutoff) {
			continue
		}
		path := filepath.Join(s.secrets, e.Name())
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("cannot remove a temporary file left by an interrupted write", "path", path, "err", err)
			continue
		}
		s.log.Info("removed a temporary file left by an interrupted write", "path", path, "modified", info.ModTime())
	}
}

// Temporary files: .write-*.tmp from writeFileAtomic, and .probe-*.tmp from
// keyturn releases that tested the directory for writing when opening it.
func isTempFileName(name string) bool {
	if !strings.HasSuffix(name, ".tmp") {
		return false
	}
	return strings.HasPrefix(name, ".write-") || strings.HasPrefix(name, ".probe-")
}

// isUnwritable reports whether err means that this user may not write the
// file or directory.
func isUnwritable(err error) bool {
	return errors.Is(err, fs.ErrPermission) || errors.Is(err, syscall.EROFS)
}

// unwritableErr reports a write to a store that this user may only read.
// It names the store directory, and err names the file that was refused.
func (s *FileStore) unwritableErr(op, secretID string, err error) *Error {
	return &Error{Op: op, SecretID: secretID, Kind: ErrUnavailable, Err: err,
		Msg: "cannot write to the store directory " + s.dir + ": run this command as a user who may write there"}
}
