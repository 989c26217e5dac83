package keystore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"
	"github.com/google/uuid"
	"github.com/keyturn/keyturn/keystore"
)

// fileCanary is a planted key that must never reach a file, a log line or
// an error in plain text.
const fileCanary = "sk-file-canary-4c2e8a7d19f0"

func TestFileStoreContract(t *testing.T) {
	runStoreContract(t, func(t *testing.T) keystore.Store { return openTestFileStore(t, t.TempDir()) })
}

func openTestFileStore(t *testing.T, dir string) *keystore.FileStore {
	t.Helper()
	s, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: true})
	if err != nil {
		t.Fatalf("OpenFile %s: %v", dir, err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestFileStoreEncryptsAtRest(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	const id = "keyturn/rest/openai"
	mustCreate(t, s, id, `{"api_key":"`+fileCanary+`"}`)
	token := mustBeginRotation(t, s, id)
	err := s.Put(context.Background(), keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret(fileCanary + "-next"), Stages: []string{keystore.StagePending}})
	if err != nil {
		t.Fatalf("Put: %v", err)
	}

	files := 0
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(fileCanary)) {
			t.Errorf("file %s contains the planted key in plain text", path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	if files < 2 {
		t.Errorf("found %d files under %s, want at least the identity and one secret", files, dir)
	}
}

func TestFileStoreIdentityCreated0600(t *testing.T) {
	dir := t.TempDir()
	openTestFileStore(t, dir)
	path := filepath.Join(dir, "identity.age")
	info, err := os.Stat(path)
	if err != nil {
		t.Fatalf("stat identity: %v", err)
	}
	if perm := info.Mode().Perm(); perm != 0o600 {
		t.Errorf("identity mode = %04o, want 0600", perm)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read identity: %v", err)
	}
	ids, err := age.ParseIdentities(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("identity does not parse as an age identity file: %v", err)
	}
	if _, ok := ids[0].(*age.X25519Identity); !ok {
		t.Errorf("identity type = %T, want *age.X25519Identity", ids[0])
	}
}

func TestFileStoreIdentityReusedOnReopen(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	const id = "keyturn/reopen"
	token := mustCreate(t, s, id, "value-a")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s = openTestFileStore(t, dir)
	v := mustGet(t, s, id, keystore.Current())
	if v.VersionID != token {
		t.Errorf("Get after reopen: VersionID = %q, want %q", v.VersionID, token)
	}
	if v.Value.Reveal() != "value-a" {
		t.Error("Get after reopen: value differs")
	}
}

func TestFileStoreWrongIdentity(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	mustCreate(t, s, "keyturn/wrong/identity", fileCanary)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	before := listTree(t, dir)

	other := writeIdentity(t, filepath.Join(t.TempDir(), "other.age"), 0o600)
	for _, create := range []bool{false, true} {
		_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, IdentityPath: other, Create: create})
		if !errors.Is(err, keystore.ErrDecryption) {
			t.Fatalf("OpenFile with another identity (create %t): err = %v, want ErrDecryption", create, err)
		}
		msg := err.Error()
		for _, want := range []string{other, dir, "decrypts none of the secrets", "1 secret file is encrypted to another identity"} {
			if !strings.Contains(msg, want) {
				t.Errorf("err = %q, want it to contain %q", msg, want)
			}
		}
		if strings.Contains(msg, fileCanary) {
			t.Errorf("err = %q contains the planted key", msg)
		}
	}
	wantSameTree(t, dir, before)
}

// A store that already mixes identities opens with either one, and reading
// a secret encrypted to the other names the file and the identity.
func TestFileStoreMixedIdentities(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	mustCreate(t, s, "keyturn/mine", "value-mine")
	otherDir := t.TempDir()
	o := openTestFileStore(t, otherDir)
	const id = "keyturn/theirs"
	mustCreate(t, o, id, fileCanary)
	name := keystore.EncodeFileName(id)
	data, err := os.ReadFile(filepath.Join(otherDir, "secrets", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets", name), data, 0o600); err != nil {
		t.Fatal(err)
	}

	s2 := openTestFileStore(t, dir)
	_, err = s2.Get(context.Background(), id, keystore.Current())
	wantKind(t, err, keystore.ErrDecryption, id)
	if err == nil {
		return
	}
	msg := err.Error()
	if !strings.Contains(msg, filepath.Join(dir, "identity.age")) {
		t.Errorf("err = %q, want it to name the identity path", msg)
	}
	if strings.Contains(strings.ToLower(msg), "corrupt") {
		t.Errorf("err = %q, want no claim that the file is corrupt", msg)
	}
	if strings.Contains(msg, fileCanary) {
		t.Errorf("err = %q contains the planted key", msg)
	}
	_, err = s2.List(context.Background())
	if !errors.Is(err, keystore.ErrDecryption) {
		t.Errorf("List with a mixed store: err = %v, want ErrDecryption", err)
	}
}

// An identity that matches no file proves nothing when no file is an age
// file for it to be judged against.
func TestFileStoreIdentityCheckSkipsDamagedFiles(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	const id = "keyturn/damaged"
	mustCreate(t, s, id, "value")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	path := filepath.Join(dir, "secrets", keystore.EncodeFileName(id))
	if err := os.WriteFile(path, []byte("not an age file"), 0o600); err != nil {
		t.Fatal(err)
	}
	other := writeIdentity(t, filepath.Join(t.TempDir(), "other.age"), 0o600)
	s2, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, IdentityPath: other})
	if err != nil {
		t.Fatalf("OpenFile: %v, want the damaged file left to reads", err)
	}
	s2.Close()
}

func writeIdentity(t *testing.T, path string, mode os.FileMode) string {
	t.Helper()
	k, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(k.String()+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFileStoreIdentityBadMode(t *testing.T) {
	path := writeIdentity(t, filepath.Join(t.TempDir(), "id.age"), 0o644)
	_, err := keystore.OpenFile(keystore.FileOptions{Dir: t.TempDir(), IdentityPath: path, Create: true})
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Fatalf("OpenFile with a 0644 identity: err = %v, want ErrInvalidParameter", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("err = %q, want it to name %s", err, path)
	}
	if !strings.Contains(err.Error(), "chmod 600 "+path) {
		t.Errorf("err = %q, want it to say chmod 600 %s", err, path)
	}
}

func TestFileStoreIdentityBadContents(t *testing.T) {
	const planted = "QQQPLANTEDQQQ"
	cases := map[string]string{
		"empty":     "",
		"text":      "hello " + planted + "\n",
		"bad key":   "AGE-SECRET-KEY-1" + planted + "\n",
		"only ssh":  "-----BEGIN OPENSSH PRIVATE KEY-----\n" + planted + "\n",
		"recipient": "age1qyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqszqgpqyqs3290gq\n",
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "id.age")
			if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := keystore.OpenFile(keystore.FileOptions{Dir: t.TempDir(), IdentityPath: path, Create: true})
			if !errors.Is(err, keystore.ErrInvalidParameter) {
				t.Fatalf("err = %v, want ErrInvalidParameter", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("err = %q, want it to name %s", err, path)
			}
			if strings.Contains(err.Error(), planted) {
				t.Errorf("err = %q quotes the identity file's content", err)
			}
		})
	}
}

func TestFileStoreIdentityMissingPath(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing.age")
	_, err := keystore.OpenFile(keystore.FileOptions{Dir: t.TempDir(), IdentityPath: path, Create: true})
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), path) {
		t.Errorf("err = %q, want it to name %s", err, path)
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, fs.ErrNotExist) {
		t.Errorf("OpenFile created %s; a given identity path must not be generated", path)
	}
}

func TestFileStoreUnwritableDir(t *testing.T) {
	// A directory below a regular file cannot be created, even by root, for
	// whom permission bits do not apply.
	parent := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(parent, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "store")
	_, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: true})
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if !strings.Contains(err.Error(), dir) {
		t.Errorf("err = %q, want it to name %s", err, dir)
	}
	if !strings.Contains(err.Error(), "choose a directory this user can create") {
		t.Errorf("err = %q, want it to say what to do", err)
	}
	var e *keystore.Error
	if !errors.As(err, &e) {
		t.Errorf("err = %T, want *keystore.Error", err)
	}
}

func TestFileStoreEmptyDir(t *testing.T) {
	_, err := keystore.OpenFile(keystore.FileOptions{})
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Fatalf("err = %v, want ErrInvalidParameter", err)
	}
	if !strings.Contains(err.Error(), "no store directory given") {
		t.Errorf("err = %q, want it to say that no store directory was given", err)
	}
}

func TestFileStoreInvalidSecretID(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ctx := context.Background()
	cases := map[string]string{
		"empty":     "",
		"too long":  strings.Repeat("a", 513),
		"space":     "keyturn/has space",
		"semicolon": "keyturn;x",
		"non-ascii": "keyturn/ünï",
		"newline":   "keyturn/a\nb",
		"tilde":     "keyturn~x",
		"caret":     "keyturn^x",
		"hash":      "#keyturn",
	}
	for name, id := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := s.Create(ctx, keystore.CreateInput{SecretID: id, Value: keystore.NewSecret("v")})
			if !errors.Is(err, keystore.ErrInvalidParameter) {
				t.Fatalf("Create: err = %v, want ErrInvalidParameter", err)
			}
			var e *keystore.Error
			if !errors.As(err, &e) {
				t.Fatalf("Create: err = %T, want *keystore.Error", err)
			}
			if id != "" && e.SecretID == "" {
				t.Errorf("Create: err = %q: SecretID is empty, want the quoted id", err)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("Create: err = %q contains a raw newline", err)
			}
			_, err = s.Get(ctx, id, keystore.Current())
			if !errors.Is(err, keystore.ErrInvalidParameter) {
				t.Errorf("Get: err = %v, want ErrInvalidParameter", err)
			}
		})
	}
}

func TestFileStoreValidSecretIDs(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ids := []string{
		"keyturn/admin/openai",
		"a+b=c.d@e-f_g",
		"Keyturn/Admin",
		"keyturn/admin",
		".", "..", "/", "//x//",
		strings.Repeat("A", 512),
		strings.Repeat("a/", 256),
	}
	for _, id := range ids {
		mustCreate(t, s, id, "value-"+id)
	}
	list, err := s.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if len(list) != len(ids) {
		t.Fatalf("List: %d secrets, want %d", len(list), len(ids))
	}
	for _, id := range ids {
		v := mustGet(t, s, id, keystore.Current())
		if v.Value.Reveal() != "value-"+id {
			t.Errorf("Get %.40q: value of another secret", id)
		}
	}
}

func FuzzFileName(f *testing.F) {
	for _, id := range []string{"keyturn/admin/openai", "A", "a/B/c", ".", "+=@-_"} {
		f.Add(id)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if !validID(id) {
			return // the store rejects the id before it needs a file name
		}
		name := keystore.EncodeFileName(id)
		if strings.ContainsAny(name, "/\\\x00") {
			t.Fatalf("EncodeFileName(%q) = %q contains a path separator or NUL", id, name)
		}
		if len(name) > 255 {
			t.Fatalf("EncodeFileName(%q) is %d bytes long", id, len(name))
		}
		if strings.HasPrefix(name, "#") {
			return
		}
		got, ok := keystore.DecodeFileName(name)
		if !ok || got != id {
			t.Fatalf("DecodeFileName(EncodeFileName(%q)) = %q, %v", id, got, ok)
		}
		// Lowercase names keep distinct ids apart on case-insensitive file
		// systems, because the encoding is reversible.
		if name != strings.ToLower(name) {
			t.Fatalf("EncodeFileName(%q) = %q has uppercase letters", id, name)
		}
	})
}

func validID(id string) bool {
	if id == "" || len(id) > 512 {
		return false
	}
	for _, r := range id {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || strings.ContainsRune("/_+=.@-", r)) {
			return false
		}
	}
	return true
}

func TestFileStoreTokenLength(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ctx := context.Background()
	const id = "keyturn/tokens"
	mustCreate(t, s, id, "value-a")
	for _, n := range []int{1, 31, 65} {
		token := strings.Repeat("t", n)
		err := s.Put(ctx, keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret("v")})
		if !errors.Is(err, keystore.ErrInvalidParameter) {
			t.Errorf("Put with a %d-character token: err = %v, want ErrInvalidParameter", n, err)
		}
		_, err = s.BeginRotation(ctx, id, token)
		if !errors.Is(err, keystore.ErrInvalidParameter) {
			t.Errorf("BeginRotation with a %d-character token: err = %v, want ErrInvalidParameter", n, err)
		}
		_, err = s.Create(ctx, keystore.CreateInput{SecretID: id + "/x", Token: token, Value: keystore.NewSecret("v")})
		if !errors.Is(err, keystore.ErrInvalidParameter) {
			t.Errorf("Create with a %d-character token: err = %v, want ErrInvalidParameter", n, err)
		}
	}
	for _, n := range []int{32, 64} {
		token := strings.Repeat(strconv.Itoa(n), n)[:n]
		err := s.Put(ctx, keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret("v" + token), Stages: []string{"X" + token}})
		if err != nil {
			t.Errorf("Put with a %d-character token: %v", n, err)
		}
	}
	err := s.Put(ctx, keystore.PutInput{SecretID: id, Value: keystore.NewSecret("v-generated")})
	if err != nil {
		t.Errorf("Put without a token: %v", err)
	}
	if v := mustGet(t, s, id, keystore.Current()); uuid.Validate(v.VersionID) != nil {
		t.Errorf("Put without a token: version id %q is not a UUID", v.VersionID)
	}
}

func TestFileStoreTagRules(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ctx := context.Background()
	const id = "keyturn/tag-rules"
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id}); err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		tags map[string]string
		name string // what the error must name
	}{
		"long key":       {map[string]string{strings.Repeat("k", 129): "v"}, "128"},
		"long value":     {map[string]string{"team": strings.Repeat("v", 257)}, `"team"`},
		"bad key char":   {map[string]string{"team!": "v"}, `"team!"`},
		"bad value char": {map[string]string{"team": "a,b"}, `"team"`},
		"reserved":       {map[string]string{"aws:cloudformation": "v"}, `"aws:cloudformation"`},
		"empty key":      {map[string]string{"": "v"}, "empty"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			err := s.Tag(ctx, id, c.tags)
			if !errors.Is(err, keystore.ErrInvalidParameter) {
				t.Fatalf("Tag: err = %v, want ErrInvalidParameter", err)
			}
			if !strings.Contains(err.Error(), c.name) {
				t.Errorf("Tag: err = %q, want it to contain %s", err, c.name)
			}
			_, err = s.Create(ctx, keystore.CreateInput{SecretID: id + "/new", Tags: c.tags})
			if !errors.Is(err, keystore.ErrInvalidParameter) {
				t.Errorf("Create: err = %v, want ErrInvalidParameter", err)
			}
		})
	}

	ok := map[string]string{"keyturn:base-url": "https://api.openai.com/v1", "name": "Ünïcode letters 42 _.:/=+-@", "empty": ""}
	if err := s.Tag(ctx, id, ok); err != nil {
		t.Errorf("Tag with valid tags: %v", err)
	}
}

func TestFileStoreTagLimit(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ctx := context.Background()
	const id = "keyturn/tag-limit"
	tags := map[string]string{}
	for i := range 50 {
		tags[fmt.Sprintf("t%02d", i)] = "v"
	}
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id, Tags: tags}); err != nil {
		t.Fatalf("Create with 50 tags: %v", err)
	}
	if err := s.Tag(ctx, id, map[string]string{"t00": "replaced"}); err != nil {
		t.Errorf("Tag replacing one of 50: %v", err)
	}
	err := s.Tag(ctx, id, map[string]string{"t50": "v"})
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Fatalf("Tag a 51st tag: err = %v, want ErrInvalidParameter", err)
	}
	if !strings.Contains(err.Error(), "51") {
		t.Errorf("Tag a 51st tag: err = %q, want it to give the count", err)
	}
	if n := len(mustDescribe(t, s, id).Tags); n != 50 {
		t.Errorf("after the rejected Tag: %d tags, want 50", n)
	}
}

func TestFileStoreInvalidStages(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ctx := context.Background()
	const id = "keyturn/stage-rules"
	a := mustCreate(t, s, id, "value-a")
	many := make([]string, 21)
	for i := range many {
		many[i] = fmt.Sprintf("S%d", i)
	}
	cases := map[string][]string{
		"empty":    {""},
		"too long": {strings.Repeat("S", 257)},
		"too many": many,
		"repeated": {"S", "S"},
	}
	for name, stages := range cases {
		err := s.Put(ctx, keystore.PutInput{SecretID: id, Value: keystore.NewSecret("v"), Stages: stages})
		if !errors.Is(err, keystore.ErrInvalidParameter) {
			t.Errorf("Put with %s stages: err = %v, want ErrInvalidParameter", name, err)
		}
	}

	err := s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: "", MoveToVersion: a})
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Errorf("UpdateStage with an empty stage: err = %v, want ErrInvalidParameter", err)
	}
	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: "S"})
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Errorf("UpdateStage naming no version: err = %v, want ErrInvalidParameter", err)
	}
	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: keystore.StageCurrent, RemoveFromVersion: a})
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Errorf("UpdateStage removing AWSCURRENT: err = %v, want ErrInvalidParameter", err)
	}
	err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: "S", MoveToVersion: uuid.NewString()})
	if !errors.Is(err, keystore.ErrNotFound) {
		t.Errorf("UpdateStage to a missing version: err = %v, want ErrNotFound", err)
	}

	err = s.Put(ctx, keystore.PutInput{SecretID: id, Value: keystore.Secret{}})
	if !errors.Is(err, keystore.ErrInvalidParameter) {
		t.Errorf("Put an empty value: err = %v, want ErrInvalidParameter", err)
	}
	wantStages(t, mustDescribe(t, s, id), a, keystore.StageCurrent)
}

func TestFileStoreBeginRotationExistingToken(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	const id = "keyturn/begin-existing"
	a := mustCreate(t, s, id, "value-a")
	_, err := s.BeginRotation(context.Background(), id, a)
	wantKind(t, err, keystore.ErrExists, id)
	if mustDescribe(t, s, id).Rotation.Enabled {
		t.Error("a rejected BeginRotation turned rotation on")
	}
}

func TestFileStoreBeginRotationEnables(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	const id = "keyturn/begin-enables"
	mustCreate(t, s, id, "value-a")
	if mustDescribe(t, s, id).Rotation.Enabled {
		t.Fatal("a new secret has rotation enabled")
	}
	mustBeginRotation(t, s, id)
	if !mustDescribe(t, s, id).Rotation.Enabled {
		t.Error("BeginRotation left rotation disabled, unlike RotateSecret")
	}
}

func TestFileStoreSetRotation(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ctx := context.Background()
	const id = "keyturn/rotation"
	mustCreate(t, s, id, "value-a")
	want := keystore.Rotation{Enabled: true, Rules: keystore.RotationRules{ScheduleExpression: "rate(10 days)", Duration: "3h"}}
	if err := s.SetRotation(ctx, id, want); err != nil {
		t.Fatalf("SetRotation: %v", err)
	}
	if got := mustDescribe(t, s, id).Rotation; got != want {
		t.Errorf("Describe: Rotation = %+v, want %+v", got, want)
	}
	bad := map[string]keystore.RotationRules{
		"both":     {AutomaticallyAfterDays: 3, ScheduleExpression: "rate(3 days)"},
		"negative": {AutomaticallyAfterDays: -1},
		"too many": {AutomaticallyAfterDays: 1001},
	}
	for name, rules := range bad {
		err := s.SetRotation(ctx, id, keystore.Rotation{Enabled: true, Rules: rules})
		if !errors.Is(err, keystore.ErrInvalidParameter) {
			t.Errorf("SetRotation %s: err = %v, want ErrInvalidParameter", name, err)
		}
	}
	if got := mustDescribe(t, s, id).Rotation; got != want {
		t.Errorf("Describe after rejected changes: Rotation = %+v, want %+v", got, want)
	}
}

func TestFileStorePrunesUnlabelled(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	ctx := context.Background()
	const id = "keyturn/prune"
	if _, err := s.Create(ctx, keystore.CreateInput{SecretID: id}); err != nil {
		t.Fatal(err)
	}
	kept := mustPut(t, s, id, "value-kept", "KEEP")
	var tokens []string
	for i := range 105 {
		tokens = append(tokens, mustPut(t, s, id, fmt.Sprintf("value-%d", i)))
	}
	// 106 versions, of which 3 are labelled: the 6 oldest unlabelled go.
	for _, token := range tokens[:6] {
		_, err := s.Get(ctx, id, keystore.ByVersion(token))
		if !errors.Is(err, keystore.ErrNotFound) {
			t.Errorf("Get pruned version %s: err = %v, want ErrNotFound", token, err)
		}
	}
	for _, token := range tokens[6:] {
		if _, err := s.Get(ctx, id, keystore.ByVersion(token)); err != nil {
			t.Errorf("Get version %s: %v, want it kept", token, err)
		}
	}
	if v := mustGet(t, s, id, keystore.ByStage("KEEP")); v.VersionID != kept {
		t.Errorf("Get KEEP: VersionID = %q, want the oldest, labelled version %q", v.VersionID, kept)
	}
}

func TestFileStoreDamagedFile(t *testing.T) {
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	const id = "keyturn/damaged"
	mustCreate(t, s, id, fileCanary)
	path := filepath.Join(dir, "secrets", "keyturn~damaged.age")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read the secret's file: %v", err)
	}
	if err := os.WriteFile(path, data[:len(data)-20], 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = s.Get(context.Background(), id, keystore.Current())
	wantKind(t, err, keystore.ErrDecryption, id)
	if err != nil && !strings.Contains(err.Error(), path) {
		t.Errorf("err = %q, want it to name %s", err, path)
	}
}

func TestFileStoreClosed(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_, err := s.Create(context.Background(), keystore.CreateInput{SecretID: "keyturn/closed"})
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("Create after Close: err = %v, want ErrUnavailable", err)
	}
	_, err = s.Get(context.Background(), "keyturn/closed", keystore.Current())
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("Get after Close: err = %v, want ErrUnavailable", err)
	}
	_, err = s.List(context.Background())
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("List after Close: err = %v, want ErrUnavailable", err)
	}
}

func TestFileStoreCanceledContext(t *testing.T) {
	s := openTestFileStore(t, t.TempDir())
	mustCreate(t, s, "keyturn/ctx", "value-a")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := s.Put(ctx, keystore.PutInput{SecretID: "keyturn/ctx", Value: keystore.NewSecret("v")})
	if !errors.Is(err, keystore.ErrUnavailable) {
		t.Errorf("Put with a canceled context: err = %v, want ErrUnavailable", err)
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a canceled context: err = %v, want it to wrap context.Canceled", err)
	}
}

func TestFileStoreLogsNoSecret(t *testing.T) {
	var logs syncBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	dir := t.TempDir()
	s, err := keystore.OpenFile(keystore.FileOptions{Dir: dir, Create: true, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const id = "keyturn/logs"
	mustCreate(t, s, id, fileCanary)
	for i := range 102 {
		mustPut(t, s, id, fmt.Sprintf("%s-%d", fileCanary, i))
	}
	if strings.Contains(logs.String(), fileCanary) {
		t.Errorf("logs contain the planted key:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "generated age identity") {
		t.Errorf("logs do not record the generated identity:\n%s", logs.String())
	}
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFileStoreConcurrentWriters runs writers on two stores over one
// directory, as two processes would, and checks that no write is lost.
func TestFileStoreConcurrentWriters(t *testing.T) {
	dir := t.TempDir()
	stores := []*keystore.FileStore{openTestFileStore(t, dir), openTestFileStore(t, dir)}
	const id = "keyturn/concurrent"
	mustCreate(t, stores[0], id, "value-0")

	const workersPerStore, writes = 4, 10
	var wg sync.WaitGroup
	errs := make(chan error, 2*workersPerStore*writes*3)
	for si, s := range stores {
		for w := range workersPerStore {
			wg.Add(1)
			go func() {
				defer wg.Done()
				writeLabelled(context.Background(), s, id, fmt.Sprintf("S%dW%d", si, w), writes, errs)
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent write: %v", err)
	}

	d := mustDescribe(t, stores[1], id)
	for si := range stores {
		for w := range workersPerStore {
			checkLabelled(t, d, fmt.Sprintf("S%dW%d", si, w), writes)
		}
	}
}

// writeLabelled writes n versions, each under a put label and then an
// update label, and tags the secret for the first few.
func writeLabelled(ctx context.Context, s keystore.Store, id, name string, n int, errs chan<- error) {
	for i := range n {
		label := fmt.Sprintf("%s-%d", name, i)
		token := uuid.NewString()
		err := s.Put(ctx, keystore.PutInput{SecretID: id, Token: token, Value: keystore.NewSecret("v-" + label), Stages: []string{"PUT-" + label}})
		if err != nil {
			errs <- err
			continue
		}
		err = s.UpdateStage(ctx, keystore.StageInput{SecretID: id, Stage: "UPD-" + label, MoveToVersion: token})
		if err != nil {
			errs <- err
		}
		if i < 4 {
			if err := s.Tag(ctx, id, map[string]string{"tag-" + label: "x"}); err != nil {
				errs <- err
			}
		}
	}
}

func checkLabelled(t *testing.T, d keystore.Description, name string, n int) {
	t.Helper()
	for i := range n {
		label := fmt.Sprintf("%s-%d", name, i)
		put, upd := d.VersionWithStage("PUT-"+label), d.VersionWithStage("UPD-"+label)
		if put == "" {
			t.Errorf("label PUT-%s was lost", label)
		}
		if upd != put {
			t.Errorf("label UPD-%s is on version %q, want %q", label, upd, put)
		}
		if _, ok := d.Tags["tag-"+label]; i < 4 && !ok {
			t.Errorf("tag tag-%s was lost", label)
		}
	}
}

const childDirEnv = "KEYTURN_FILE_STORE_CHILD_DIR"

// TestFileStoreSecondProcess runs writers in this process and in a child
// process (this test binary again) on one directory.
func TestFileStoreSecondProcess(t *testing.T) {
	if os.Getenv(childDirEnv) != "" {
		t.Skip("running as the child process")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Skipf("cannot find the test binary: %v", err)
	}
	dir := t.TempDir()
	s := openTestFileStore(t, dir)
	const id = "keyturn/two-processes"
	mustCreate(t, s, id, "value-0")

	cmd := exec.Command(exe, "-test.run=^TestFileStoreChildProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start the child process: %v", err)
	}
	const writes = 15
	errs := make(chan error, writes*3)
	writeLabelled(context.Background(), s, id, "PARENT", writes, errs)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child process: %v\n%s", err, out.String())
	}
	close(errs)
	for err := range errs {
		t.Errorf("parent write: %v", err)
	}
	if !strings.Contains(out.String(), "child wrote") {
		t.Fatalf("the child process did not run its writes:\n%s", out.String())
	}
	d := mustDescribe(t, s, id)
	checkLabelled(t, d, "PARENT", writes)
	checkLabelled(t, d, "CHILD", writes)
}

// TestFileStoreChildProcess is the child of TestFileStoreSecondProcess; it
// does nothing in a normal run.
func TestFileStoreChildProcess(t *testing.T) {
	dir := os.Getenv(childDirEnv)
	if dir == "" {
		t.Skip("runs only as the child of TestFileStoreSecondProcess")
	}
	s := openTestFileStore(t, dir)
	errs := make(chan error, 15*3)
	writeLabelled(context.Background(), s, "keyturn/two-processes", "CHILD", 15, errs)
	close(errs)
	for err := range errs {
		t.Errorf("child write: %v", err)
	}
	fmt.Println("child wrote its versions")
}
