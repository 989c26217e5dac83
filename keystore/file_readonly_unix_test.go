//go:build unix

package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

const (
	readOnlyDirEnv = "KEYTURN_FILE_STORE_READONLY_DIR"
	readOnlyID     = "keyturn/read-only"
	// nobodyID is the uid and gid of the user nobody on Debian and most Linux
	// systems.
	nobodyID = 65534
)

// TestFileStoreReadOnlyUser checks that a user who may read but not write a
// store can open and read it, and that its writes fail with an error naming
// the directory. It does so on a store with its lock file and on one
// without. Permission bits do not bind root, so as root the checks run in a
// child process (this test binary again) as the user nobody, who then owns
// the stores with their write bits cleared.
func TestFileStoreReadOnlyUser(t *testing.T) {
	if os.Getenv(readOnlyDirEnv) != "" {
		t.Skip("running as the child process")
	}
	base := t.TempDir()
	stores := filepath.Join(base, "stores")
	for _, name := range []string{"locked", "no-lock"} {
		dir := filepath.Join(stores, name)
		s := openTestFileStore(t, dir)
		mustCreate(t, s, readOnlyID, "value-a")
		s.Close()
	}
	if err := os.Remove(filepath.Join(stores, "no-lock", "keyturn.lock")); err != nil {
		t.Fatal(err)
	}

	if os.Geteuid() != 0 {
		clearWriteBits(t, stores, -1)
		checkReadOnlyStores(t, stores)
		return
	}
	clearWriteBits(t, stores, nobodyID)
	before := listTree(t, stores)
	out := runAsNobody(t, base, stores)
	if !strings.Contains(out, "read-only checks ran") {
		t.Fatalf("the child process did not run its checks:\n%s", out)
	}
	wantSameTree(t, stores, before)
}

// TestFileStoreReadOnlyChild is the child of TestFileStoreReadOnlyUser; it
// does nothing in a normal run.
func TestFileStoreReadOnlyChild(t *testing.T) {
	stores := os.Getenv(readOnlyDirEnv)
	if stores == "" {
		t.Skip("runs only as the child of TestFileStoreReadOnlyUser")
	}
	checkReadOnlyStores(t, stores)
	fmt.Println("read-only checks ran")
}

func checkReadOnlyStores(t *testing.T, stores string) {
	t.Helper()
	before := listTree(t, stores)
	for _, name := range []string{"locked", "no-lock"} {
		t.Run(name, func(t *testing.T) { checkReadOnlyStore(t, filepath.Join(stores, name)) })
	}
	wantSameTree(t, stores, before)
}

func checkReadOnlyStore(t *testing.T, dir string) {
	s, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	if err != nil {
		t.Fatalf("OpenFile as a read-only user: %v", err)
	}
	defer s.Close()
	if v := mustGet(t, s, readOnlyID, keystore.Current()); v.Value.Reveal() != "value-a" {
		t.Error("Get as a read-only user: value differs")
	}
	mustDescribe(t, s, readOnlyID)
	list, err := s.List(context.Background())
	if err != nil || len(list) != 1 {
		t.Errorf("List as a read-only user: %d descriptions, err = %v, want 1 and no error", len(list), err)
	}

	err = s.Put(context.Background(), keystore.PutInput{SecretID: readOnlyID, Value: keystore.NewSecret("value-b")})
	wantReadOnlyErr(t, "Put", err, dir)
	_, err = s.Create(context.Background(), keystore.CreateInput{SecretID: "keyturn/read-only/new"})
	wantReadOnlyErr(t, "Create", err, dir)
}

func wantReadOnlyErr(t *testing.T, operation string, err error, dir string) {
	t.Helper()
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("%s as a read-only user: err = %v, want ErrUnavailable", operation, err)
		return
	}
	if !strings.Contains(err.Error(), "cannot write to the store directory "+dir+":") {
		t.Errorf("%s as a read-only user: err = %q, want it to name the directory %s", operation, err, dir)
	}
	if !errors.Is(err, fs.ErrPermission) {
		t.Errorf("%s as a read-only user: err = %v, want it to wrap fs.ErrPermission", operation, err)
	}
}

// clearWriteBits makes every directory under root 0500 and every file 0400,
// owned by uid (and the same gid) unless uid is -1. A cleanup restores the
// write bits so that the test can remove the directory.
func clearWriteBits(t *testing.T, root string, uid int) {
	t.Helper()
	t.Cleanup(func() { chmodTree(t, root, 0o700, 0o600) })
	if uid >= 0 {
		err := filepath.WalkDir(root, func(path string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(path, uid, uid)
		})
		if err != nil {
			t.Fatalf("chown %s: %v", root, err)
		}
	}
	chmodTree(t, root, 0o500, 0o400)
}

func chmodTree(t *testing.T, root string, dirMode, fileMode fs.FileMode) {
	t.Helper()
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
			return nil
		}
		return os.Chmod(path, fileMode)
	})
	// Directories last and deepest first, so the walk can still read them.
	for i := len(dirs) - 1; i >= 0 && err == nil; i-- {
		err = os.Chmod(dirs[i], dirMode)
	}
	if err != nil {
		t.Errorf("chmod %s: %v", root, err)
	}
}

// runAsNobody runs TestFileStoreReadOnlyChild as the user nobody on the
// stores in dir, and returns its output. The test binary is copied into base,
// because that user cannot reach the build directory.
func runAsNobody(t *testing.T, base, dir string) string {
	t.Helper()
	exe := copyTestBinary(t, base)
	for _, d := range []string{filepath.Dir(base), base} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(exe, "-test.run=^TestFileStoreReadOnlyChild$", "-test.count=1", "-test.v")
	cmd.Env = append(childEnv(), readOnlyDirEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobodyID, Gid: nobodyID}}
	cmd.Dir = base
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Start()
	if errors.Is(err, fs.ErrPermission) {
		t.Skipf("cannot start a process as nobody (uid %d), so no user is denied writes: %v", nobodyID, err)
	}
	if err != nil {
		t.Fatalf("start the child process as nobody: %v", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child process as nobody: %v\n%s", err, out.String())
	}
	return out.String()
}

func copyTestBinary(t *testing.T, dir string) string {
	t.Helper()
	src, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	dst := filepath.Join(dir, "keystore.test")
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o755)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
	return dst
}

// childEnv is this process's environment without the variables that would
// make the child write coverage or temporary files where the user nobody may
// not write.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "GOCOVERDIR=") || strings.HasPrefix(kv, "TMPDIR=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}
