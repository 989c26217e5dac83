package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gofrs/flock"
	"github.com/keyturn/keyturn/keystore"
)

// treeEntry is one file or directory under a store, for checking that an
// operation created or changed nothing.
type treeEntry struct {
	path string
	mode fs.FileMode
	size int64
}

func listTree(t *testing.T, root string) []treeEntry {
	t.Helper()
	var out []treeEntry
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		size := info.Size()
		if d.IsDir() {
			size = 0
		}
		out = append(out, treeEntry{path: rel, mode: info.Mode(), size: size})
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("walk %s: %v", root, err)
	}
	return out
}

func wantSameTree(t *testing.T, root string, before []treeEntry) {
	t.Helper()
	if after := listTree(t, root); !slices.Equal(after, before) {
		t.Errorf("files under %s changed:\nbefore %v\nafter  %v", root, before, after)
	}
}

func wantOpenErr(t *testing.T, err, kind error, parts ...string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("OpenFile: err = %v, want %v", err, kind)
	}
	var e *keystore.Error
	if !errors.As(err, &e) {
		t.Errorf("OpenFile: err = %T, want *keystore.Error", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("OpenFile: err = %q, want it to contain %q", err, p)
		}
	}
}

func TestOpenFileMissingDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo")
	_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	wantOpenErr(t, err, keystore.ErrNotFound,
		"no keyturn file store at "+dir, "check the store URL", "create one with rotator add")
	if _, statErr := os.Stat(dir); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("OpenFile without Create created %s", dir)
	}
}

func TestOpenFileBelowFile(t *testing.T) {
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "store")
	_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	wantOpenErr(t, err, keystore.ErrNotFound, "no keyturn file store at "+dir)
}

// TestOpenFileNotAStore opens directories that exist but hold no store, such
// as / or a home directory, and checks that nothing is created in them.
func TestOpenFileNotAStore(t *testing.T) {
	cases := map[string]map[string]string{
		"empty":       {},
		"other files": {"notes.txt": "x", "keyturn.lock": ""},
	}
	for name, files := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for f, content := range files {
				if err := os.WriteFile(filepath.Join(dir, f), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			before := listTree(t, dir)
			_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
			wantOpenErr(t, err, keystore.ErrNotFound, "no keyturn file store at "+dir, "rotator add")
			wantSameTree(t, dir, before)
		})
	}
}

func TestOpenFileNotAStoreWithIdentity(t *testing.T) {
	dir := t.TempDir()
	identity := writeIdentity(t, filepath.Join(t.TempDir(), "id.age"), 0o600)
	before := listTree(t, dir)
	_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, IdentityPath: identity})
	wantOpenErr(t, err, keystore.ErrNotFound, "no keyturn file store at "+dir)
	wantSameTree(t, dir, before)
}

// TestOpenFileCreateRejectsOtherDir checks that Create writes nothing into
// an existing directory that contains other files, such as / or a home
// directory, even with an identity kept elsewhere.
func TestOpenFileCreateRejectsOtherDir(t *testing.T) {
	identity := writeIdentity(t, filepath.Join(t.TempDir(), "id.age"), 0o600)
	cases := map[string]func(t *testing.T, dir string){
		"file":            func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "notes.txt")) },
		"hidden file":     func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, ".profile")) },
		"directory":       func(t *testing.T, dir string) { mkdir(t, filepath.Join(dir, "etc")) },
		"secrets is file": func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "secrets")) },
	}
	for name, fill := range cases {
		for _, identityPath := range []string{"", identity} {
			t.Run(name+"/identity "+strconv.Quote(identityPath), func(t *testing.T) {
				dir := t.TempDir()
				fill(t, dir)
				before := listTree(t, dir)
				_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, IdentityPath: identityPath, Create: true})
				wantOpenErr(t, err, keystore.ErrInvalidParameter,
					dir+" is not empty and is not a keyturn file store: choose an empty or new directory")
				wantSameTree(t, dir, before)
			})
		}
	}
}

// TestOpenFileCreateAcceptsStoreDir creates stores in an empty directory,
// a new one, and directories that contain any one of the files a store has.
func TestOpenFileCreateAcceptsStoreDir(t *testing.T) {
	cases := map[string]func(t *testing.T, dir string){
		"empty": func(*testing.T, string) {},
		"new":   func(t *testing.T, dir string) { removeAll(t, dir) },
		"secrets and more": func(t *testing.T, dir string) {
			mkdir(t, filepath.Join(dir, "secrets"))
			writeFile(t, filepath.Join(dir, "notes.txt"))
		},
		"lock and more": func(t *testing.T, dir string) {
			writeFile(t, filepath.Join(dir, "keyturn.lock"))
			writeFile(t, filepath.Join(dir, "serve.lock"))
		},
		"identity and more": func(t *testing.T, dir string) {
			writeIdentity(t, filepath.Join(dir, "identity.age"), 0o600)
			writeFile(t, filepath.Join(dir, "notes.txt"))
		},
	}
	for name, fill := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "store")
			mkdir(t, dir)
			fill(t, dir)
			s := openTestFileStore(t, dir)
			mustCreate(t, s, "keyturn/open/created", "value-a")
			mustGet(t, s, "keyturn/open/created", keystore.Current())
		})
	}
}

func TestOpenFileCreateReopensStore(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	mustCreate(t, s, "keyturn/open/kept", "value-a")
	s.Close()
	writeFile(t, filepath.Join(dir, "serve.lock"))
	r := openTestFileStore(t, dir)
	mustGet(t, r, "keyturn/open/kept", keystore.Current())
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mkdir(t *testing.T, path string) {
	t.Helper()
	if err := os.Mkdir(path, 0o700); err != nil {
		t.Fatal(err)
	}
}

func removeAll(t *testing.T, path string) {
	t.Helper()
	if err := os.RemoveAll(path); err != nil {
		t.Fatal(err)
	}
}

func TestOpenFileDirIsFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "store")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, create := range []bool{false, true} {
		_, err := keystore.OpenFile(keystore.FileOptions{Dir: path, Create: create})
		wantOpenErr(t, err, keystore.ErrInvalidParameter, path, "not a directory")
	}
}

// TestOpenFileExistingCreatesNothing reads and writes a store opened
// without Create and checks that opening and reading add no file, not even
// the lock file.
func TestOpenFileExistingCreatesNothing(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	const id = "keyturn/open/existing"
	token := mustCreate(t, s, id, "value-a")
	s.Close()
	if err := os.Remove(filepath.Join(dir, "keyturn.lock")); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, dir)

	r, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	if err != nil {
		t.Fatalf("OpenFile without Create: %v", err)
	}
	defer r.Close()
	if v := mustGet(t, r, id, keystore.Current()); v.VersionID != token {
		t.Errorf("Get: VersionID = %q, want %q", v.VersionID, token)
	}
	list, err := r.List(context.Background())
	if err != nil || len(list) != 1 {
		t.Errorf("List: %d descriptions, err = %v, want 1 and no error", len(list), err)
	}
	wantSameTree(t, dir, before)

	mustPut(t, r, id, "value-b")
	if _, err := os.Stat(filepath.Join(dir, "keyturn.lock")); err != nil {
		t.Errorf("a write did not create the lock file: %v", err)
	}
}

// TestOpenFileIdentityOnly opens a store that has an identity but no
// secrets directory: it is empty, and its first write creates the
// directory.
func TestOpenFileIdentityOnly(t *testing.T) {
	dir := t.TempDir()
	openTestFileStore(t, dir).Close()
	if err := os.Remove(filepath.Join(dir, "secrets")); err != nil {
		t.Fatal(err)
	}
	s, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	if err != nil {
		t.Fatalf("OpenFile: %v", err)
	}
	defer s.Close()
	list, err := s.List(context.Background())
	if err != nil || len(list) != 0 {
		t.Fatalf("List: %v, err = %v, want no descriptions and no error", list, err)
	}
	mustCreate(t, s, "keyturn/open/first", "value-a")
	mustGet(t, s, "keyturn/open/first", keystore.Current())
}

func TestOpenFileMissingIdentityNoSecrets(t *testing.T) {
	dir := t.TempDir()
	openTestFileStore(t, dir).Close()
	identity := filepath.Join(dir, "identity.age")
	if err := os.Remove(identity); err != nil {
		t.Fatal(err)
	}
	_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	wantOpenErr(t, err, keystore.ErrNotFound, identity, "does not exist", "restore it")
	if _, statErr := os.Stat(identity); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("OpenFile without Create generated %s", identity)
	}

	s, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: true})
	if err != nil {
		t.Fatalf("OpenFile with Create on a store without secrets: %v", err)
	}
	s.Close()
	if _, err := os.Stat(identity); err != nil {
		t.Errorf("OpenFile with Create did not generate the identity: %v", err)
	}
}

// TestOpenFileMissingIdentityWithSecrets checks that a store whose secrets
// are encrypted to a lost identity never gets a new one, which could read
// none of them.
func TestOpenFileMissingIdentityWithSecrets(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	mustCreate(t, s, "keyturn/open/orphan", fileCanary)
	s.Close()
	identity := filepath.Join(dir, "identity.age")
	if err := os.Remove(identity); err != nil {
		t.Fatal(err)
	}
	before := listTree(t, dir)

	for _, create := range []bool{false, true} {
		_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: create})
		wantOpenErr(t, err, keystore.ErrDecryption,
			identity, "is missing", "encrypted to it", "restore it", "identity file they were written with")
		if err != nil && strings.Contains(err.Error(), fileCanary) {
			t.Errorf("err = %q contains the planted key", err)
		}
		if create {
			// Create may add the lock file, but not an identity.
			if _, statErr := os.Stat(identity); !errors.Is(statErr, fs.ErrNotExist) {
				t.Fatalf("OpenFile with Create generated %s for a store with secrets", identity)
			}
		} else {
			wantSameTree(t, dir, before)
		}
	}
}

// TestOpenFileMessagesForOperators checks that OpenFile's errors speak of
// directories and files, not of FileOptions fields or command-line flags.
func TestOpenFileMessagesForOperators(t *testing.T) {
	base := t.TempDir()
	file := filepath.Join(base, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	badMode := writeIdentity(t, filepath.Join(base, "open.age"), 0o644)
	cases := map[string]keystore.FileOptions{
		"empty dir":        {},
		"missing store":    {Dir: filepath.Join(base, "missing")},
		"cannot create":    {Dir: filepath.Join(file, "store"), Create: true},
		"missing identity": {Dir: filepath.Join(base, "new"), IdentityPath: filepath.Join(base, "none.age"), Create: true},
		"identity mode":    {Dir: filepath.Join(base, "new"), IdentityPath: badMode, Create: true},
	}
	for name, opts := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := keystore.OpenFile(opts)
			if err == nil {
				t.Fatal("OpenFile succeeded, want an error")
			}
			msg := err.Error()
			for _, field := range []string{"Dir", "IdentityPath", "FileOptions", "set ", "leave ", "--", "age-keygen"} {
				if strings.Contains(msg, field) {
					t.Errorf("err = %q, want no %q", msg, field)
				}
			}
			if !strings.HasPrefix(msg, "OpenFile: ") {
				t.Errorf("err = %q, want it to start with the operation OpenFile", msg)
			}
		})
	}
}

// TestFileStoreListSkipsDamagedFiles damages one secret's file, plants a
// renamed copy and an unreadable hashed-name file, and checks that List
// still returns the readable secrets along with one error for each other
// file.
func TestFileStoreListSkipsDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	for _, id := range []string{"keyturn/list/c", "keyturn/list/a", "keyturn/list/b"} {
		mustCreate(t, s, id, fileCanary+"-"+id)
	}
	secrets := filepath.Join(dir, "secrets")
	damaged := filepath.Join(secrets, "keyturn~list~b.age")
	truncateFile(t, damaged)
	renamed := filepath.Join(secrets, "keyturn~renamed.age")
	copyFile(t, filepath.Join(secrets, "keyturn~list~a.age"), renamed)
	hashed := filepath.Join(secrets, "#"+strings.Repeat("0", 64)+".age")
	if err := os.WriteFile(hashed, []byte("not an age file"), 0o600); err != nil {
		t.Fatal(err)
	}

	list, err := s.List(context.Background())
	var got []string
	for _, d := range list {
		got = append(got, d.SecretID)
	}
	if want := []string{"keyturn/list/a", "keyturn/list/c"}; !slices.Equal(got, want) {
		t.Errorf("List: ids = %v, want %v", got, want)
	}
	if err == nil {
		t.Fatal("List: err = nil, want an error for each unreadable file")
	}
	if strings.Contains(err.Error(), fileCanary) {
		t.Errorf("List: err = %q contains the planted key", err)
	}
	errs := unwrapAll(t, err)
	if len(errs) != 3 {
		t.Fatalf("List: %d errors, want 3: %v", len(errs), err)
	}
	wantListErr(t, errs[0], keystore.ErrDecryption, "", hashed)
	wantListErr(t, errs[1], keystore.ErrDecryption, "keyturn/list/b", damaged)
	wantListErr(t, errs[2], keystore.ErrUnavailable, "keyturn/list/a", renamed)
}

func truncateFile(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data[:len(data)-20], 0o600); err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	data, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func unwrapAll(t *testing.T, err error) []*keystore.Error {
	t.Helper()
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		t.Fatalf("err = %T (%v), want a joined error", err, err)
	}
	var out []*keystore.Error
	for _, e := range joined.Unwrap() {
		var ke *keystore.Error
		if !errors.As(e, &ke) {
			t.Errorf("joined error %T (%v) is not a *keystore.Error", e, e)
			continue
		}
		out = append(out, ke)
	}
	return out
}

func wantListErr(t *testing.T, e *keystore.Error, kind error, secretID, path string) {
	t.Helper()
	if !errors.Is(e, kind) {
		t.Errorf("List error %q: want %v", e, kind)
	}
	if e.SecretID != secretID {
		t.Errorf("List error %q: SecretID = %q, want %q", e, e.SecretID, secretID)
	}
	if !strings.Contains(e.Error(), path) {
		t.Errorf("List error %q: want it to name %s", e, path)
	}
}

func TestFileStoreListAllDamaged(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	mustCreate(t, s, "keyturn/list/only", "value-a")
	truncateFile(t, filepath.Join(dir, "secrets", "keyturn~list~only.age"))
	list, err := s.List(context.Background())
	if len(list) != 0 {
		t.Errorf("List: %d descriptions, want none", len(list))
	}
	if !errors.Is(err, keystore.ErrDecryption) {
		t.Errorf("List: err = %v, want ErrDecryption", err)
	}
}

// TestFileStoreRemovesStaleTemps plants temporary files that interrupted
// writes would leave and checks that a reader keeps them and a writer
// removes those older than a minute.
func TestFileStoreRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	const id = "keyturn/temps"
	mustCreate(t, s, id, "value-a")
	s.Close()
	secrets := filepath.Join(dir, "secrets")
	old := time.Now().Add(-2 * time.Minute)
	stale := plantTemp(t, secrets, ".write-111.tmp", old)
	staleProbe := plantTemp(t, secrets, ".probe-222.tmp", old)
	fresh := plantTemp(t, secrets, ".write-333.tmp", time.Now())

	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	r, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	mustGet(t, r, id, keystore.Current())
	if _, err := r.List(context.Background()); err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, p := range []string{stale, staleProbe, fresh} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("a reader removed %s: %v", p, err)
		}
	}

	mustPut(t, r, id, "value-b")
	for _, p := range []string{stale, staleProbe} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a writer kept the stale %s: %v", p, err)
		}
	}
	if _, err := os.Stat(fresh); err != nil {
		t.Errorf("a writer removed %s, which is younger than a minute: %v", fresh, err)
	}
	if !strings.Contains(logs.String(), stale) {
		t.Errorf("logs do not record the removal of %s:\n%s", stale, logs.String())
	}
}

func TestFileStoreCreateRemovesStaleTemps(t *testing.T) {
	dir := t.TempDir()
	openTestFileStore(t, dir).Close()
	stale := plantTemp(t, filepath.Join(dir, "secrets"), ".write-444.tmp", time.Now().Add(-time.Hour))
	openTestFileStore(t, dir)
	if _, err := os.Stat(stale); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("OpenFile with Create kept the stale %s: %v", stale, err)
	}
}

func plantTemp(t *testing.T, dir, name string, modified time.Time) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, bytes.Repeat([]byte("x"), 10), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(path, modified, modified); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestOpenFileCreateLockTimeout(t *testing.T) {
	dir := t.TempDir()
	openTestFileStore(t, dir).Close()
	lockPath := filepath.Join(dir, "keyturn.lock")
	// A second flock.Flock is a separate open file, so its lock excludes
	// the store's as another process's would.
	held := flock.New(lockPath)
	if ok, err := held.TryLock(); !ok || err != nil {
		t.Fatalf("lock %s: locked %v, error %v", lockPath, ok, err)
	}
	t.Cleanup(func() { held.Close() })

	done := make(chan error, 1)
	go func() {
		s, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: true, OpenLockTimeout: 50 * time.Millisecond})
		if err == nil {
			s.Close()
		}
		done <- err
	}()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("OpenFile with Create still waits for the held lock after 20s")
	}
	wantKind(t, err, keystore.ErrUnavailable, "")
	if err != nil && !strings.Contains(err.Error(), lockPath) {
		t.Errorf("err = %q, want it to name the lock file %s", err, lockPath)
	}
	if err != nil && !strings.Contains(err.Error(), "another keyturn process holds it") {
		t.Errorf("err = %q, want it to say another keyturn process holds the lock", err)
	}
}
