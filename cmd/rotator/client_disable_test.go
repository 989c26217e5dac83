package main

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

// newClientEnv is newEnv with its file store created, since client
// commands never create one.
func newClientEnv(t *testing.T) *testEnv {
	t.Helper()
	e := newEnv(t)
	e.openStore()
	return e
}

// storedClient returns the stored client called name.
func storedClient(t *testing.T, e *testEnv, name string) clientkeys.Client {
	t.Helper()
	for _, c := range storedClients(t, e.openStore(), clientkeys.DefaultSecretID).Clients {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no stored client named %q", name)
	return clientkeys.Client{}
}

// currentVersion returns the version id of the client list's AWSCURRENT.
func currentVersion(t *testing.T, e *testEnv) string {
	t.Helper()
	d, err := e.openStore().Describe(context.Background(), clientkeys.DefaultSecretID)
	if err != nil {
		t.Fatal(err)
	}
	return d.VersionWithStage(keystore.StageCurrent)
}

func TestClientDisableEnable(t *testing.T) {
	e := newClientEnv(t)
	key := addedKey(t, e.mustRun(exitOK, "client", "add", "ci", "--rps", "5", "--burst", "8"))
	before := storedClient(t, e, "ci")

	r := e.mustRun(exitOK, "client", "disable", "ci")
	assertContains(t, "disable", r.stdout, "disabled client "+before.ID+" (ci) in keyturn/router-clients")
	assertContains(t, "disable", r.stdout, "routers reject its key once they re-read keyturn/router-clients (at most cache.refresh, 5m by default)")
	c, ok := clientkeys.NewIndex(storedClients(t, e.openStore(), clientkeys.DefaultSecretID)).Lookup(key)
	if !ok {
		t.Fatal("the disabled client's key no longer matches a client")
	}
	if !c.Disabled {
		t.Error("the client is not disabled")
	}
	if c.ID != before.ID || c.RPS != 5 || c.Burst != 8 || !c.Created.Equal(before.Created) {
		t.Errorf("disable changed more than the flag: %+v, was %+v", c, before)
	}
	assertContains(t, "list", e.mustRun(exitOK, "client", "list").stdout, "yes")

	r = e.mustRun(exitOK, "client", "enable", before.ID)
	assertContains(t, "enable", r.stdout, "enabled client "+before.ID+" (ci) in keyturn/router-clients")
	assertContains(t, "enable", r.stdout, "routers accept its key once they re-read")
	if storedClient(t, e, "ci").Disabled {
		t.Error("the client is still disabled after enable")
	}
}

func TestClientDisableAlreadyDisabled(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "ci")
	e.mustRun(exitOK, "client", "disable", "ci")
	version := currentVersion(t, e)

	r := e.mustRun(exitOK, "client", "disable", "ci")
	assertContains(t, "disable again", r.stdout, "(ci) in keyturn/router-clients is already disabled: nothing changed")
	if got := currentVersion(t, e); got != version {
		t.Errorf("a disable that changed nothing wrote version %s", got)
	}
	r = e.mustRun(exitOK, "client", "enable", "ci", "--output", "json")
	var out clientDisabledJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("enable JSON: %v\n%s", err, r.stdout)
	}
	if out.Name != "ci" || out.Disabled || !out.Changed || out.SecretID != clientkeys.DefaultSecretID {
		t.Errorf("enable JSON = %+v", out)
	}
	r = e.mustRun(exitOK, "client", "enable", "ci", "--output", "json")
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("enable JSON: %v\n%s", err, r.stdout)
	}
	if out.Changed {
		t.Errorf("a second enable reports a change: %+v", out)
	}
}

func TestClientDisableErrors(t *testing.T) {
	e := newClientEnv(t)
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no argument", []string{"client", "disable"}, exitUsage, "client disable: missing ID or NAME argument"},
		{"two arguments", []string{"client", "enable", "a", "b"}, exitUsage, "client enable: expected one ID or NAME argument, got 2"},
		{"empty argument", []string{"client", "disable", ""}, exitUsage, "client disable: the ID or NAME argument is empty"},
		{"missing secret", []string{"client", "disable", "ci"}, exitError,
			`client disable: no client "ci": the secret keyturn/router-clients does not exist`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.mustRun(tt.code, tt.args...)
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
	e.mustRun(exitOK, "client", "add", "a")
	r := e.mustRun(exitError, "client", "enable", "nobody")
	assertContains(t, "stderr", r.stderr, `client enable: no client with id or name "nobody" in keyturn/router-clients`)
	assertContains(t, "stderr", r.stderr, "rotator: hint: see the clients' ids and names with 'rotator client list'")
}

func TestSetClientDisabledRevoked(t *testing.T) {
	change := setClientDisabled("client disable", "kc_000000000000", true)
	_, changed, err := change(clientkeys.List{})
	if err == nil || changed {
		t.Fatalf("change on a list without the client = %v, %v, want an error", changed, err)
	}
	assertContains(t, "error", err.Error(), "client disable: client kc_000000000000 was revoked while this command ran")
}

func TestClientAddKeyFileDash(t *testing.T) {
	e := newClientEnv(t)
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(exitUsage, "client", "add", "ci", "--key-file", "-")
	assertContains(t, "stderr", r.stderr, "client add: --key-file - is not supported: a key file must be a path")
	assertContains(t, "stderr", r.stderr, "leave out --key-file to print the key once on standard output")
	if _, err := os.Stat(filepath.Join(wd, "-")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a file named - was created: %v", err)
	}
	if strings.Contains(r.stdout+r.stderr, clientkeys.Prefix) {
		t.Errorf("a key was printed:\n%s%s", r.stdout, r.stderr)
	}
}

func TestClientAddNameIsID(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "a")
	id := storedClient(t, e, "a").ID
	r := e.mustRun(exitError, "client", "add", id)
	assertContains(t, "stderr", r.stderr, `client add: "`+id+`" is the id of an existing client (named a)`)
	if strings.Contains(r.stderr, "a client named") {
		t.Errorf("the error calls the id a name:\n%s", r.stderr)
	}
}

func TestClientAddExistingDirNoStore(t *testing.T) {
	e := newEnv(t)
	if err := os.MkdirAll(e.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(exitError, "client", "add", "ci")
	assertContains(t, "stderr", r.stderr, "no file store at "+e.dir+": the directory contains no keyturn store (store URL from KEYTURN_STORE)")
	assertContains(t, "stderr", r.stderr, "rotator: hint: check KEYTURN_STORE, or create a store there with 'rotator add SECRET --provider NAME --base-url URL'")
	if strings.Contains(r.stderr, "OpenFile") {
		t.Errorf("the error names a Go function:\n%s", r.stderr)
	}
	entries, err := os.ReadDir(e.dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("client add wrote into the directory: %v, %v", entries, err)
	}
}

func TestClientAddExistingStoreCreatesSecret(t *testing.T) {
	e := newClientEnv(t)
	e.add("prod/openai")
	r := e.mustRun(exitOK, "client", "add", "ci")
	assertContains(t, "stdout", r.stdout, "to keyturn/router-clients")
	if n := len(storedClients(t, e.openStore(), clientkeys.DefaultSecretID).Clients); n != 1 {
		t.Errorf("%d clients, want 1", n)
	}
}

func TestClientAddHelpNamesRouterBehaviour(t *testing.T) {
	e := newClientEnv(t)
	help := e.mustRun(exitOK, "help", "client", "add")
	assertContains(t, "help", help.stdout, "max(1, ceil(rps))")
	assertContains(t, "help", help.stdout, "re-reads the client list")
}

func TestClientCommandsOnProviderSecret(t *testing.T) {
	e := newClientEnv(t)
	e.add("prod/openai")
	want := "prod/openai is a provider secret (it has the keyturn:provider tag), not a router client list: " +
		"pass --secret with the clients secret, default keyturn/router-clients"
	for _, args := range [][]string{
		{"client", "list"}, {"client", "add", "ci"}, {"client", "revoke", "ci"},
		{"client", "disable", "ci"}, {"client", "enable", "ci"},
	} {
		r := e.mustRun(exitError, append(args, "--secret", "prod/openai")...)
		name := strings.Join(args, " ")
		assertContains(t, name, r.stderr, want)
		if strings.Contains(r.stderr, "by hand") {
			t.Errorf("%s suggests editing the value:\n%s", name, r.stderr)
		}
		if strings.Contains(r.stdout+r.stderr, clientkeys.Prefix) {
			t.Errorf("%s printed a key:\n%s", name, r.stdout)
		}
	}
	d, err := e.openStore().Describe(context.Background(), "prod/openai")
	if err != nil {
		t.Fatal(err)
	}
	if !keystore.IsManaged(d.Tags) {
		t.Error("the provider secret lost its tag")
	}
}

func TestClientCommandsOnUntaggedKeyValue(t *testing.T) {
	e := newClientEnv(t)
	_, err := e.openStore().Create(context.Background(), keystore.CreateInput{
		SecretID: "app/key", Value: keystore.NewSecret(`{"api_key": "` + canary + `"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"client", "list"}, {"client", "add", "ci"}} {
		r := e.mustRun(exitError, append(args, "--secret", "app/key")...)
		assertContains(t, strings.Join(args, " "), r.stderr,
			"app/key is a provider secret (its value contains an api_key), not a router client list: pass --secret")
	}
}

func TestClientListNotAList(t *testing.T) {
	e := newClientEnv(t)
	_, err := e.openStore().Create(context.Background(), keystore.CreateInput{
		SecretID: clientkeys.DefaultSecretID, Value: keystore.NewSecret(`{"users": []}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(exitError, "client", "list")
	assertContains(t, "stderr", r.stderr, `field clients is missing: expected {"clients": [...]}`)
	if strings.Contains(r.stderr, "the value is") {
		t.Errorf("the error reads as if it quoted the value:\n%s", r.stderr)
	}
}

func TestStatusOfClientList(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "ci")
	e.mustRun(exitOK, "client", "add", "ci", "--secret", "team/clients")

	r := e.mustRun(exitError, "status", clientkeys.DefaultSecretID)
	assertContains(t, "status", r.stderr, "status: secret keyturn/router-clients is a router client list, not a provider secret")
	assertContains(t, "status", r.stderr, "see its clients with 'rotator client list'")
	r = e.mustRun(exitError, "status", "team/clients")
	assertContains(t, "status", r.stderr, "'rotator client list --secret team/clients'")
	for _, args := range [][]string{{"update", "team/clients", "--schedule", "rate(7 days)"}, {"rotate-now", "team/clients"}} {
		r := e.run(args...)
		assertContains(t, strings.Join(args, " "), r.stderr, "is a router client list, not a provider secret")
	}

	other := e.openStore()
	if _, err := other.Create(context.Background(), keystore.CreateInput{SecretID: "app/other", Value: keystore.NewSecret(`{}`)}); err != nil {
		t.Fatal(err)
	}
	r = e.mustRun(exitError, "status", "app/other")
	assertContains(t, "status", r.stderr, "status: secret app/other is not managed by keyturn: it has no keyturn:provider tag")
}
