package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyturn/keyturn/keystore"
)

func TestHelp(t *testing.T) {
	e := newEnv(t)
	r := e.mustRun(exitOK, "help")
	for _, want := range []string{"rotate-now", "Exit codes", "aws://REGION", "KEYTURN_STORE"} {
		assertContains(t, "help", r.stdout, want)
	}
	for _, c := range commands() {
		r := e.mustRun(exitOK, c.name, "-h")
		assertContains(t, c.name+" -h", r.stdout, "Example")
		assertContains(t, c.name+" -h", r.stdout, "Usage: rotator "+c.name)
		r = e.mustRun(exitOK, "help", c.name)
		assertContains(t, "help "+c.name, r.stdout, "Usage: rotator "+c.name)
	}
}

func TestUsageErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "Usage: rotator COMMAND"},
		{"unknown command", []string{"rotato"}, `unknown command "rotato"`},
		{"unknown flag", []string{"status", "--bogus"}, "unknown flag --bogus"},
		{"missing secret", []string{"rotate-now"}, "missing SECRET argument"},
		{"two secrets", []string{"rotate-now", "a", "b"}, "expected one SECRET argument"},
		{"bad output", []string{"status", "--output", "yaml"}, `unknown output format "yaml"`},
		{"bad timeout", []string{"rotate-now", "a", "--timeout", "0s"}, "--timeout 0s must be positive"},
		{"serve takes no secret", []string{"serve", "x"}, `unexpected argument "x"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
}

func TestKeyIsNeverAFlagValue(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	for _, args := range [][]string{
		{"stage", "app/openai", "--key", canary},
		{"stage", "app/openai", "--api-key=" + canary},
		{"stage", "app/openai", canary},
	} {
		r := e.run(args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args[:3], r.code, exitUsage, r.stderr)
		}
	}
	if st := e.status("app/openai"); st.Staged != nil {
		t.Errorf("a key passed as an argument was staged as version %s", st.Staged.VersionID)
	}
}

func TestBadStoreURLFlag(t *testing.T) {
	e := newEnv(t)
	r := e.run("status", "--store", "file://host/x")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	assertContains(t, "stderr", r.stderr, "rotator: error: --store: invalid store URL \"file://host/x\"")
	assertContains(t, "stderr", r.stderr, "aws://REGION")

	e.vars["KEYTURN_STORE"] = "ftp://x"
	r = e.run("status")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "KEYTURN_STORE: invalid store URL \"ftp://x\"")
}

func TestStoreSelectionPrecedence(t *testing.T) {
	e := newEnv(t)
	tmp := t.TempDir()
	cfgDir := filepath.Join(tmp, "store-from-config")
	envDir := filepath.Join(tmp, "store-from-env")
	flagDir := filepath.Join(tmp, "store-from-flag")
	cfg := e.writeFile("rotator.yaml", "store: file://"+cfgDir+"\nrelay_hosts: [relay.example.com]\n")
	e.vars["KEYTURN_CONFIG"] = cfg
	delete(e.vars, "KEYTURN_STORE")

	a := &app{getenv: func(k string) string { return e.vars[k] }}
	s, err := a.resolve(&storeFlags{})
	if err != nil {
		t.Fatal(err)
	}
	if s.store.Dir != cfgDir {
		t.Errorf("store from config = %s, want %s", s.store.Dir, cfgDir)
	}
	if len(s.relayHosts) != 1 || s.relayHosts[0] != "relay.example.com" {
		t.Errorf("relay hosts from config = %v", s.relayHosts)
	}
	e.vars["KEYTURN_STORE"] = "file://" + envDir
	e.vars["KEYTURN_RELAY_HOSTS"] = "a.example.com, b.example.com"
	if s, _ = a.resolve(&storeFlags{}); s.store.Dir != envDir || len(s.relayHosts) != 2 {
		t.Errorf("store from env = %s, relay hosts %v", s.store.Dir, s.relayHosts)
	}
	f := &storeFlags{store: "file://" + flagDir, relayHosts: stringList{"c.example.com"}}
	if s, _ = a.resolve(f); s.store.Dir != flagDir || len(s.relayHosts) != 1 {
		t.Errorf("store from flag = %s, relay hosts %v", s.store.Dir, s.relayHosts)
	}

	delete(e.vars, "KEYTURN_STORE")
	delete(e.vars, "KEYTURN_CONFIG")
	e.vars["XDG_DATA_HOME"] = filepath.Join(tmp, "data")
	if s, _ = a.resolve(&storeFlags{}); s.store.Dir != filepath.Join(tmp, "data", "keyturn", "store") {
		t.Errorf("default store = %s", s.store.Dir)
	}
	delete(e.vars, "XDG_DATA_HOME")
	if s, _ = a.resolve(&storeFlags{}); s.store.Dir != filepath.Join(e.vars["HOME"], ".local/share/keyturn/store") {
		t.Errorf("default store without XDG_DATA_HOME = %s", s.store.Dir)
	}
}

func TestConfigFileErrors(t *testing.T) {
	e := newEnv(t)
	e.vars["KEYTURN_CONFIG"] = e.writeFile("bad.yaml", "store: file:///tmp/x\nstores: file:///tmp/y\n")
	r := e.run("status")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "line 2: unknown key stores: the keys are store, identity and relay_hosts")

	e.vars["KEYTURN_CONFIG"] = filepath.Join(t.TempDir(), "missing.yaml")
	r = e.run("status")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "missing.yaml")

	// The default config file is optional, and an empty one is valid.
	e.openStore()
	delete(e.vars, "KEYTURN_CONFIG")
	e.vars["XDG_CONFIG_HOME"] = t.TempDir()
	e.mustRun(exitOK, "status")
	if err := os.MkdirAll(filepath.Join(e.vars["XDG_CONFIG_HOME"], "keyturn"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.vars["XDG_CONFIG_HOME"], "keyturn", "rotator.yaml"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	e.mustRun(exitOK, "status")
}

func TestBadLoopbackEnv(t *testing.T) {
	e := newEnv(t)
	e.vars["KEYTURN_ALLOW_LOOPBACK"] = "yes please"
	r := e.run("status")
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, `invalid KEYTURN_ALLOW_LOOPBACK="yes please"`)
}

func TestUnwritableStoreDir(t *testing.T) {
	e := newEnv(t)
	file := e.writeFile("not-a-dir", "x")
	r := e.run("add", "app/openai", "--provider", "openai", "--base-url", e.baseURL,
		"--store", "file://"+filepath.Join(file, "store"))
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: error: open file store")
	assertContains(t, "stderr", r.stderr, "rotator: hint:")
}

func TestWrongIdentity(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	other := filepath.Join(t.TempDir(), "other")
	otherStore, err := keystore.OpenFile(keystore.FileOptions{Dir: other, Create: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = otherStore.Close()
	r := e.run("status", "app/openai", "--identity", filepath.Join(other, "identity.age"))
	if r.code != exitError {
		t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	if !strings.Contains(r.stderr, "rotator: error:") {
		t.Errorf("no error printed:\n%s", r.stderr)
	}
}

func TestHelpFitsEightyColumns(t *testing.T) {
	e := newEnv(t)
	for _, c := range commands() {
		text := e.mustRun(exitOK, c.name, "-h").stdout
		if c.name != "dev" && c.name != "serve" {
			// Examples and tables elsewhere may be wider; the flags are not.
			_, text, _ = strings.Cut(text, "\nFlags:")
		}
		for line := range strings.Lines(text) {
			if n := len(strings.ReplaceAll(strings.TrimSuffix(line, "\n"), "\t", "        ")); n > 80 {
				t.Errorf("%s -h: a line is %d columns wide:\n%s", c.name, n, line)
			}
		}
	}
}
