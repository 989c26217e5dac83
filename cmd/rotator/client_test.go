package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/smtest"
	"github.com/keyturn/keyturn/keystore"
)

// addedKey returns the key that a text-mode client add printed, and checks
// that it was printed once, on stdout, with the warning on stderr.
func addedKey(t *testing.T, r result) string {
	t.Helper()
	var key string
	for line := range strings.Lines(r.stdout) {
		if k, ok := strings.CutPrefix(strings.TrimSpace(line), "key: "); ok {
			key = k
		}
	}
	if !strings.HasPrefix(key, clientkeys.Prefix) {
		t.Fatalf("no kt- key on stdout:\n%s", r.stdout)
	}
	if n := strings.Count(r.stdout, key); n != 1 {
		t.Errorf("the key appears %d times on stdout, want 1", n)
	}
	assertNoClientKey(t, "stderr", r.stderr, key)
	assertContains(t, "stderr", r.stderr, "shown only once")
	return key
}

// assertNoClientKey fails if text contains key or the hex of its hash.
func assertNoClientKey(t *testing.T, where, text, key string) {
	t.Helper()
	if strings.Contains(text, key) || strings.Contains(text, key[len(clientkeys.Prefix):]) {
		t.Errorf("the client key appeared in %s:\n%s", where, text)
	}
	hash := clientkeys.Hash(key)
	if strings.Contains(text, hash[len("sha256:"):len("sha256:")+16]) {
		t.Errorf("the client key's hash appeared in %s:\n%s", where, text)
	}
	if strings.Contains(text, "sha256:") {
		t.Errorf("a hash appeared in %s:\n%s", where, text)
	}
}

// storedClients reads the client list from a store directly.
func storedClients(t *testing.T, store keystore.Store, secretID string) clientkeys.List {
	t.Helper()
	v, err := store.Get(context.Background(), secretID, keystore.Current())
	if err != nil {
		t.Fatalf("read %s: %v", secretID, err)
	}
	l, err := clientkeys.Parse([]byte(v.Value.Reveal()))
	if err != nil {
		t.Fatalf("parse %s: %v", secretID, err)
	}
	return l
}

func (e *testEnv) listClients(args ...string) clientListJSON {
	e.t.Helper()
	r := e.mustRun(exitOK, append([]string{"client", "list", "--output", "json"}, args...)...)
	var out clientListJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		e.t.Fatalf("client list JSON: %v\n%s", err, r.stdout)
	}
	return out
}

func TestClientAddListRevoke(t *testing.T) {
	e := newClientEnv(t)
	r := e.mustRun(exitOK, "client", "add", "ci", "--rps", "2.5", "--burst", "10", "--monthly-quota", "1000")
	key := addedKey(t, r)
	assertContains(t, "stdout", r.stdout, "added client kc_")
	assertContains(t, "stdout", r.stdout, "(ci) to "+clientkeys.DefaultSecretID)

	l := storedClients(t, e.openStore(), clientkeys.DefaultSecretID)
	c, ok := clientkeys.NewIndex(l).Lookup(key)
	if !ok {
		t.Fatal("the printed key matches no stored client")
	}
	if c.Name != "ci" || c.RPS != 2.5 || c.Burst != 10 || c.MonthlyQuota != 1000 || c.Disabled || c.Created.IsZero() {
		t.Errorf("stored client = %+v", c)
	}

	text := e.mustRun(exitOK, "client", "list")
	assertNoClientKey(t, "list output", text.stdout+text.stderr, key)
	for _, want := range []string{"ID", "MONTHLY QUOTA", c.ID, "ci", "2.5", "10", "1000", "no"} {
		assertContains(t, "list", text.stdout, want)
	}
	js := e.listClients()
	if !js.Exists || len(js.Clients) != 1 {
		t.Fatalf("list JSON = %+v, want one client", js)
	}
	got := js.Clients[0]
	if got.ID != c.ID || got.Name != "ci" || got.RPS != 2.5 || got.Burst != 10 || got.MonthlyQuota != 1000 || !got.Created.Equal(c.Created) {
		t.Errorf("list JSON client = %+v, want %+v", got, c)
	}

	r = e.mustRun(exitOK, "client", "revoke", "ci")
	assertContains(t, "revoke", r.stdout, "revoked client "+c.ID+" (ci)")
	r = e.mustRun(exitOK, "client", "list")
	assertContains(t, "list after revoke", r.stdout, "no clients in "+clientkeys.DefaultSecretID)
	assertContains(t, "list after revoke", r.stdout, "rotator client add NAME")
	if _, ok := clientkeys.NewIndex(storedClients(t, e.openStore(), clientkeys.DefaultSecretID)).Lookup(key); ok {
		t.Error("the revoked key still matches a client")
	}
}

func TestClientAddTwoClients(t *testing.T) {
	e := newClientEnv(t)
	keyA := addedKey(t, e.mustRun(exitOK, "client", "add", "a"))
	keyB := addedKey(t, e.mustRun(exitOK, "client", "add", "b", "--rps", "1"))
	if keyA == keyB {
		t.Fatal("two adds printed the same key")
	}
	ix := clientkeys.NewIndex(storedClients(t, e.openStore(), clientkeys.DefaultSecretID))
	ca, okA := ix.Lookup(keyA)
	cb, okB := ix.Lookup(keyB)
	if !okA || !okB || ca.Name != "a" || cb.Name != "b" {
		t.Errorf("lookups: %q %v, %q %v; want a and b", ca.Name, okA, cb.Name, okB)
	}
	list := e.mustRun(exitOK, "client", "list")
	assertNoClientKey(t, "list", list.stdout, keyA)
	assertNoClientKey(t, "list", list.stdout, keyB)
}

func TestClientAddKeyFile(t *testing.T) {
	e := newClientEnv(t)
	path := filepath.Join(t.TempDir(), "ci.key")
	r := e.mustRun(exitOK, "client", "add", "ci", "--key-file", path)
	assertContains(t, "stdout", r.stdout, path)
	if strings.Contains(r.stdout+r.stderr, clientkeys.Prefix) {
		t.Errorf("a key was printed although --key-file was given:\n%s\n%s", r.stdout, r.stderr)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %o, want 600", mode)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	key, ok := strings.CutSuffix(string(data), "\n")
	if !ok || !strings.HasPrefix(key, clientkeys.Prefix) || strings.ContainsAny(key, " \n") {
		t.Fatalf("key file does not hold one kt- key on one line")
	}
	if _, ok := clientkeys.NewIndex(storedClients(t, e.openStore(), clientkeys.DefaultSecretID)).Lookup(key); !ok {
		t.Error("the key in the file matches no stored client")
	}
}

func TestClientAddKeyFileExists(t *testing.T) {
	e := newEnv(t)
	path := e.writeFile("taken.key", "an older key\n")
	r := e.mustRun(exitError, "client", "add", "ci", "--key-file", path)
	assertContains(t, "stderr", r.stderr, "--key-file "+path+" already exists")
	assertContains(t, "stderr", r.stderr, "rotator: hint:")
	if data, _ := os.ReadFile(path); string(data) != "an older key\n" {
		t.Errorf("the existing file was changed: %q", data)
	}
	if _, err := os.Stat(e.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the store was created although the key file was refused: %v", err)
	}
}

func TestClientAddKeyFileMissingDir(t *testing.T) {
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "no", "such", "dir", "ci.key")
	r := e.mustRun(exitError, "client", "add", "ci", "--key-file", path)
	assertContains(t, "stderr", r.stderr, "its directory does not exist")
}

func TestClientAddRemovesKeyFileOnFailure(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "ci", "--key-file", filepath.Join(t.TempDir(), "first.key"))
	path := filepath.Join(t.TempDir(), "second.key")
	r := e.mustRun(exitError, "client", "add", "ci", "--key-file", path)
	assertContains(t, "stderr", r.stderr, `a client named "ci" already exists`)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("the key file of a client that was not added was kept: %v", err)
	}
}

func TestClientAddJSON(t *testing.T) {
	e := newClientEnv(t)
	r := e.mustRun(exitOK, "client", "add", "ci", "--output", "json")
	var out clientAddedJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("add JSON: %v\n%s", err, r.stdout)
	}
	if !strings.HasPrefix(out.ID, clientkeys.IDPrefix) || out.Name != "ci" || !strings.HasPrefix(out.Key, clientkeys.Prefix) || out.KeyFile != "" {
		t.Errorf("add JSON = %+v", out)
	}
	assertNoClientKey(t, "stderr", r.stderr, out.Key)
	assertContains(t, "stderr", r.stderr, "shown only once")

	path := filepath.Join(t.TempDir(), "b.key")
	r = e.mustRun(exitOK, "client", "add", "b", "--output", "json", "--key-file", path)
	out = clientAddedJSON{}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("add JSON: %v\n%s", err, r.stdout)
	}
	if out.Key != "" || out.KeyFile != path || out.Name != "b" {
		t.Errorf("add JSON with --key-file = %+v", out)
	}
	if strings.Contains(r.stdout, clientkeys.Prefix) {
		t.Errorf("a key was printed although --key-file was given:\n%s", r.stdout)
	}
}

func TestClientAddErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing name", []string{}, exitUsage, "missing NAME argument"},
		{"empty name", []string{""}, exitUsage, "NAME is empty"},
		{"long name", []string{strings.Repeat("n", 65)}, exitUsage, "NAME is 65 characters long: the maximum is 64"},
		{"control in name", []string{"a\tb"}, exitUsage, `NAME "a\tb" has the non-printable character U+0009`},
		{"space around name", []string{"ci "}, exitUsage, `NAME "ci " starts or ends with a space`},
		{"two names", []string{"a", "b"}, exitUsage, "expected one NAME argument, got 2"},
		{"negative rps", []string{"ci", "--rps", "-1"}, exitUsage, "--rps -1 is negative"},
		{"word rps", []string{"ci", "--rps", "fast"}, exitUsage, `--rps "fast" is not a number`},
		{"NaN rps", []string{"ci", "--rps", "NaN"}, exitUsage, `--rps "NaN" is not a number`},
		{"huge rps", []string{"ci", "--rps", "1e9"}, exitUsage, "--rps 1e9 is over the maximum"},
		{"burst alone", []string{"ci", "--burst", "5"}, exitUsage, "--burst 5 needs a rate limit"},
		{"burst with zero rps", []string{"ci", "--rps", "0", "--burst", "5"}, exitUsage, "--burst 5 needs a rate limit"},
		{"fraction burst", []string{"ci", "--rps", "1", "--burst", "1.5"}, exitUsage, `--burst "1.5" is not a whole number`},
		{"negative burst", []string{"ci", "--rps", "1", "--burst", "-1"}, exitUsage, "--burst -1 is negative"},
		{"huge burst", []string{"ci", "--rps", "1", "--burst", "99999999999"}, exitUsage, "--burst 99999999999 is out of range"},
		{"negative quota", []string{"ci", "--monthly-quota", "-5"}, exitUsage, "--monthly-quota -5 is negative"},
		{"word quota", []string{"ci", "--monthly-quota", "lots"}, exitUsage, `--monthly-quota "lots" is not a whole number`},
		{"empty secret", []string{"ci", "--secret", ""}, exitUsage, "--secret is empty"},
		{"bad secret", []string{"ci", "--secret", "router clients"}, exitUsage, `invalid --secret "router clients": character ' '`},
		{"unknown flag", []string{"ci", "--limit", "3"}, exitUsage, "unknown flag --limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.run(append([]string{"client", "add"}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\nstderr:\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, "rotator: error: client add: "+tt.want)
			if r.stdout != "" {
				t.Errorf("stdout is not empty:\n%s", r.stdout)
			}
			if _, err := os.Stat(e.dir); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("a usage error created the store: %v", err)
			}
		})
	}
}

func TestClientAddDuplicateName(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "ci")
	r := e.mustRun(exitError, "client", "add", "ci")
	assertContains(t, "stderr", r.stderr, `client add: a client named "ci" already exists (id kc_`)
	assertContains(t, "stderr", r.stderr, "rotator client revoke kc_")
	if strings.Contains(r.stdout+r.stderr, clientkeys.Prefix) {
		t.Errorf("a key was printed for a client that was not added:\n%s", r.stdout)
	}
	if n := len(e.listClients().Clients); n != 1 {
		t.Errorf("%d clients, want 1", n)
	}
}

func TestClientCommandErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"missing command", []string{"client"}, "client: missing command: use add, list, revoke, disable or enable"},
		{"unknown command", []string{"client", "remove"}, `client: unknown command "remove"`},
		{"list argument", []string{"client", "list", "ci"}, "client list: takes no arguments"},
		{"revoke no argument", []string{"client", "revoke"}, "client revoke: missing ID or NAME argument"},
		{"revoke two arguments", []string{"client", "revoke", "a", "b"}, "expected one ID or NAME argument, got 2"},
		{"revoke empty", []string{"client", "revoke", ""}, "the ID or NAME argument is empty"},
		{"list bad output", []string{"client", "list", "--output", "yaml"}, `unknown output format "yaml"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.mustRun(exitUsage, tt.args...)
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
}

func TestClientListMissingSecret(t *testing.T) {
	e := newEnv(t)
	e.openStore()
	r := e.mustRun(exitOK, "client", "list")
	assertContains(t, "list", r.stdout, "the secret keyturn/router-clients does not exist yet")
	assertContains(t, "list", r.stdout, "rotator client add NAME")
	r = e.mustRun(exitOK, "client", "list", "--secret", "team/clients")
	assertContains(t, "list", r.stdout, "rotator client add NAME --secret team/clients")
	out := e.listClients()
	if out.Exists || out.Clients == nil || len(out.Clients) != 0 {
		t.Errorf("list JSON = %+v, want exists false and an empty list", out)
	}
	assertContains(t, "list JSON", e.mustRun(exitOK, "client", "list", "--output", "json").stdout, `"clients": []`)
}

func TestClientListEmptySecret(t *testing.T) {
	e := newEnv(t)
	st := e.openStore()
	// A secret without a value, as Terraform creates it.
	if _, err := st.Create(context.Background(), keystore.CreateInput{SecretID: clientkeys.DefaultSecretID}); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(exitOK, "client", "list")
	assertContains(t, "list", r.stdout, "no clients in keyturn/router-clients")
	key := addedKey(t, e.mustRun(exitOK, "client", "add", "ci"))
	if _, ok := clientkeys.NewIndex(storedClients(t, st, clientkeys.DefaultSecretID)).Lookup(key); !ok {
		t.Error("add to a secret without a value stored no client")
	}
}

func TestClientCommandsCreateNoStore(t *testing.T) {
	e := newEnv(t)
	for _, args := range [][]string{
		{"client", "list"}, {"client", "revoke", "ci"}, {"client", "add", "ci"},
		{"client", "disable", "ci"}, {"client", "enable", "ci"},
	} {
		r := e.mustRun(exitError, args...)
		assertContains(t, strings.Join(args, " "), r.stderr, "no file store at "+e.dir)
		assertContains(t, strings.Join(args, " "), r.stderr, "create a store there with 'rotator add SECRET")
		if strings.Contains(r.stdout+r.stderr, clientkeys.Prefix) {
			t.Errorf("%s printed a key although nothing was stored", args)
		}
	}
	if _, err := os.Stat(e.dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a client command created the store: %v", err)
	}
}

func TestClientListMalformedSecret(t *testing.T) {
	e := newEnv(t)
	st := e.openStore()
	_, err := st.Create(context.Background(), keystore.CreateInput{
		SecretID: clientkeys.DefaultSecretID, Value: keystore.NewSecret(`{"clients":[{"id":"kc_a"}]}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"client", "list"}, {"client", "add", "ci"}, {"client", "revoke", "kc_a"}} {
		r := e.mustRun(exitError, args...)
		assertContains(t, strings.Join(args, " "), r.stderr, "secret keyturn/router-clients version ")
		assertContains(t, strings.Join(args, " "), r.stderr, "client 0 (id kc_a): field hash is missing")
		if strings.Contains(r.stdout, clientkeys.Prefix) {
			t.Errorf("%s printed a key for a list it could not read", args)
		}
	}
}

func TestClientRevokeByID(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "a")
	e.mustRun(exitOK, "client", "add", "b")
	before := e.listClients().Clients
	r := e.mustRun(exitOK, "client", "revoke", before[0].ID, "--output", "json")
	var out clientRevokedJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("revoke JSON: %v\n%s", err, r.stdout)
	}
	if out.ID != before[0].ID || out.Name != "a" || out.SecretID != clientkeys.DefaultSecretID {
		t.Errorf("revoke JSON = %+v", out)
	}
	after := e.listClients().Clients
	if len(after) != 1 || after[0].ID != before[1].ID {
		t.Errorf("clients after revoke = %+v, want only %s", after, before[1].ID)
	}
}

func TestClientRevokeUnknown(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "a")
	r := e.mustRun(exitError, "client", "revoke", "nobody")
	assertContains(t, "stderr", r.stderr, `client revoke: no client with id or name "nobody" in keyturn/router-clients`)
	assertContains(t, "stderr", r.stderr, "rotator: hint: see the clients' ids and names with 'rotator client list'")
	r = e.mustRun(exitError, "client", "revoke", "nobody", "--secret", "team/clients")
	assertContains(t, "stderr", r.stderr, "the secret team/clients does not exist")
	assertContains(t, "stderr", r.stderr, "'rotator client list --secret team/clients'")
	if n := len(e.listClients().Clients); n != 1 {
		t.Errorf("%d clients after failed revokes, want 1", n)
	}
}

func TestClientOtherSecret(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "ci", "--secret", "team/clients")
	if n := len(e.listClients("--secret", "team/clients").Clients); n != 1 {
		t.Errorf("team/clients has %d clients, want 1", n)
	}
	if out := e.listClients(); out.Exists {
		t.Errorf("the default secret was written: %+v", out)
	}
	e.mustRun(exitOK, "client", "revoke", "ci", "--secret", "team/clients")
}

func TestClientHelp(t *testing.T) {
	e := newEnv(t)
	for _, sub := range []string{"add", "list", "revoke", "disable", "enable"} {
		r := e.mustRun(exitOK, "help", "client", sub)
		assertContains(t, "help client "+sub, r.stdout, "Usage: rotator client "+sub)
		r = e.mustRun(exitOK, "client", sub, "-h")
		assertContains(t, "client "+sub+" -h", r.stdout, "Usage: rotator client "+sub)
		assertContains(t, "client "+sub+" -h", r.stdout, "Example")
		assertContains(t, "client "+sub+" -h", r.stdout, "--secret")
	}
	r := e.mustRun(exitOK, "help")
	assertContains(t, "help", r.stdout, "client ")
}

// TestClientConcurrentAdds runs adds at once, each with its own file store
// handle as separate processes have, and checks that none is lost.
func TestClientConcurrentAdds(t *testing.T) {
	e := newEnv(t)
	e.openStore()
	const n = 8
	var wg sync.WaitGroup
	results := make([]result, n)
	for i := range n {
		wg.Go(func() { results[i] = e.run("client", "add", fmt.Sprintf("client-%d", i)) })
	}
	wg.Wait()
	for i, r := range results {
		if r.code != exitOK {
			t.Errorf("add %d: exit %d\n%s", i, r.code, r.stderr)
		}
	}
	assertAllAdded(t, e.listClients().Clients, n)
}

func assertAllAdded(t *testing.T, clients []clientJSON, n int) {
	t.Helper()
	names := map[string]bool{}
	for _, c := range clients {
		names[c.Name] = true
	}
	for i := range n {
		if !names[fmt.Sprintf("client-%d", i)] {
			t.Errorf("client-%d was lost; the list has %d clients", i, len(clients))
		}
	}
}

// hookStore runs a function once, just before the first Put or Create
// reaches the store, to interleave another writer deterministically.
type hookStore struct {
	keystore.Store
	mu     sync.Mutex
	before func()
}

func (s *hookStore) fire() {
	s.mu.Lock()
	f := s.before
	s.before = nil
	s.mu.Unlock()
	if f != nil {
		f()
	}
}

func (s *hookStore) Put(ctx context.Context, in keystore.PutInput) error {
	s.fire()
	return s.Store.Put(ctx, in)
}

func (s *hookStore) Create(ctx context.Context, in keystore.CreateInput) (keystore.Description, error) {
	s.fire()
	return s.Store.Create(ctx, in)
}

// newTestClient returns a client named name with a fresh key.
func newTestClient(t *testing.T, name string) *clientkeys.Client {
	t.Helper()
	_, hash, err := clientkeys.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	return &clientkeys.Client{Name: name, Hash: hash}
}

func clientNames(l clientkeys.List) []string {
	var names []string
	for _, c := range l.Clients {
		names = append(names, c.Name)
	}
	return names
}

// TestClientWriteLosesRace interleaves a second add between the first
// add's read and its write, on a new secret and on an existing one.
func TestClientWriteLosesRace(t *testing.T) {
	for _, existing := range []bool{false, true} {
		t.Run(fmt.Sprintf("existing=%v", existing), func(t *testing.T) {
			e := newEnv(t)
			st := e.openStore()
			var stderr syncBuffer
			a := &app{stdout: &syncBuffer{}, stderr: &stderr, getenv: func(string) string { return "" }}
			ctx := context.Background()
			id := clientkeys.DefaultSecretID
			if existing {
				if err := a.updateClients(ctx, st, id, addClient(newTestClient(t, "first"))); err != nil {
					t.Fatal(err)
				}
			}
			hs := &hookStore{Store: st, before: func() {
				if err := a.updateClients(ctx, st, id, addClient(newTestClient(t, "racer"))); err != nil {
					t.Errorf("racing add: %v", err)
				}
			}}
			if err := a.updateClients(ctx, hs, id, addClient(newTestClient(t, "slow"))); err != nil {
				t.Fatal(err)
			}
			names := clientNames(storedClients(t, st, id))
			for _, want := range []string{"racer", "slow"} {
				if !strings.Contains(strings.Join(names, " "), want) {
					t.Errorf("client %s was lost: the list has %v", want, names)
				}
			}
			if stderr.String() != "" {
				t.Errorf("unexpected warnings:\n%s", stderr.String())
			}
		})
	}
}

// TestClientWriteRepairsForeignWrite puts a value under a random token, as
// a hand-made PutSecretValue would, between an add's read and its write.
func TestClientWriteRepairsForeignWrite(t *testing.T) {
	e := newEnv(t)
	st := e.openStore()
	a := &app{stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: func(string) string { return "" }}
	ctx := context.Background()
	id := clientkeys.DefaultSecretID
	if err := a.updateClients(ctx, st, id, addClient(newTestClient(t, "first"))); err != nil {
		t.Fatal(err)
	}
	hs := &hookStore{Store: st, before: func() {
		l := storedClients(t, st, id)
		l.Clients = append(l.Clients, clientkeys.Client{ID: "kc_byhand", Name: "by-hand", Hash: clientkeys.Hash("kt-by-hand")})
		data, err := l.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, keystore.PutInput{SecretID: id, Value: keystore.NewSecret(string(data))}); err != nil {
			t.Errorf("foreign put: %v", err)
		}
	}}
	if err := a.updateClients(ctx, hs, id, addClient(newTestClient(t, "slow"))); err != nil {
		t.Fatal(err)
	}
	names := strings.Join(clientNames(storedClients(t, st, id)), " ")
	for _, want := range []string{"first", "by-hand", "slow"} {
		if !strings.Contains(names, want) {
			t.Errorf("client %s was lost: the list has %s", want, names)
		}
	}
}

// TestClientRevokeRacesAdd revokes while another add writes first.
func TestClientRevokeRacesAdd(t *testing.T) {
	e := newEnv(t)
	st := e.openStore()
	a := &app{stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: func(string) string { return "" }}
	ctx := context.Background()
	id := clientkeys.DefaultSecretID
	old := newTestClient(t, "old")
	if err := a.updateClients(ctx, st, id, addClient(old)); err != nil {
		t.Fatal(err)
	}
	hs := &hookStore{Store: st, before: func() {
		if err := a.updateClients(ctx, st, id, addClient(newTestClient(t, "new"))); err != nil {
			t.Errorf("racing add: %v", err)
		}
	}}
	if err := a.updateClients(ctx, hs, id, removeClient(old.ID)); err != nil {
		t.Fatal(err)
	}
	if names := clientNames(storedClients(t, st, id)); len(names) != 1 || names[0] != "new" {
		t.Errorf("clients = %v, want only new", names)
	}
}

func TestClientAWS(t *testing.T) {
	e := newAWSEnv(t)
	e.vars["KEYTURN_STORE"] = "aws://us-east-1"
	key := addedKey(t, e.mustRun(exitOK, "client", "add", "ci", "--rps", "3"))
	c, ok := clientkeys.NewIndex(storedClients(t, e.store, clientkeys.DefaultSecretID)).Lookup(key)
	if !ok || c.Name != "ci" || c.RPS != 3 {
		t.Fatalf("stored client = %+v, %v", c, ok)
	}
	list := e.mustRun(exitOK, "client", "list")
	assertNoClientKey(t, "list", list.stdout, key)
	assertContains(t, "list", list.stdout, c.ID)

	const n = 4
	var wg sync.WaitGroup
	codes := make([]int, n)
	for i := range n {
		wg.Go(func() { codes[i] = e.run("client", "add", fmt.Sprintf("client-%d", i)).code })
	}
	wg.Wait()
	for i, code := range codes {
		if code != exitOK {
			t.Errorf("add %d: exit %d", i, code)
		}
	}
	assertAllAdded(t, e.listClients().Clients, n)

	e.mustRun(exitOK, "client", "revoke", "ci")
	if _, ok := clientkeys.NewIndex(storedClients(t, e.store, clientkeys.DefaultSecretID)).Lookup(key); ok {
		t.Error("the revoked key still matches a client")
	}
}

// afterPutStore runs a function once, just after the first Put.
type afterPutStore struct {
	keystore.Store
	once  sync.Once
	after func()
}

func (s *afterPutStore) Put(ctx context.Context, in keystore.PutInput) error {
	err := s.Store.Put(ctx, in)
	s.once.Do(s.after)
	return err
}

// TestClientWriteOverwrittenAfter overwrites an add's version right after
// it is written with a list that lacks the new client, as a hand-made
// PutSecretValue based on an older read would.
func TestClientWriteOverwrittenAfter(t *testing.T) {
	e := newEnv(t)
	st := e.openStore()
	a := &app{stdout: &syncBuffer{}, stderr: &syncBuffer{}, getenv: func(string) string { return "" }}
	ctx := context.Background()
	id := clientkeys.DefaultSecretID
	if err := a.updateClients(ctx, st, id, addClient(newTestClient(t, "first"))); err != nil {
		t.Fatal(err)
	}
	stale := storedClients(t, st, id)
	as := &afterPutStore{Store: st, after: func() {
		data, err := stale.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, keystore.PutInput{SecretID: id, Value: keystore.NewSecret(string(data))}); err != nil {
			t.Errorf("foreign put: %v", err)
		}
	}}
	if err := a.updateClients(ctx, as, id, addClient(newTestClient(t, "slow"))); err != nil {
		t.Fatal(err)
	}
	names := strings.Join(clientNames(storedClients(t, st, id)), " ")
	if names != "first slow" {
		t.Errorf("clients = %s, want first slow", names)
	}
}

func TestClientStoreUnavailable(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	st := keystore.NewAWS(secretsmanager.NewFromConfig(smtest.TestConfig(t, url)), keystore.AWSOptions{})
	e.configure = func(a *app) {
		a.openAWS = func(context.Context, string) (keystore.Store, error) { return st, nil }
	}
	e.vars["KEYTURN_STORE"] = "aws://us-east-1"
	for _, args := range [][]string{{"client", "list"}, {"client", "add", "ci"}, {"client", "revoke", "ci"}} {
		r := e.mustRun(exitTransient, args...)
		assertContains(t, strings.Join(args, " "), r.stderr, "rotator: hint: the store could not be reached")
		if strings.Contains(r.stdout, clientkeys.Prefix) {
			t.Errorf("%s printed a key although nothing was stored", args)
		}
	}
}
