package main

import (
	"net"
	"path/filepath"
	"strings"
	"testing"
)

func TestStageRejectsKeysThatCannotWork(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	tests := []struct {
		name, content, want string
	}{
		{"byte order mark", "\ufeff" + canary, "starts with a UTF-8 byte order mark"},
		{"UTF-16", "\xff\xfe" + canary, "is UTF-16 text"},
		{"NUL", canary + "\x00", "contains a NUL byte at byte 20"},
		{"control character", canary[:5] + "\x1b" + canary[5:], "contains a control character at byte 5"},
		{"non-ASCII", canary[:3] + "—" + canary[3:], "contains a non-ASCII character at byte 3"},
		{"invalid UTF-8", canary + "\xc3", "is not valid UTF-8 text"},
		{"inner tab", canary[:4] + "\t" + canary[4:], "contains spaces or tabs"},
		{"JSON array", `["` + canary + `"]`, "a JSON array is not a key\nrotator: hint: give the bare key on one line, or a value object {\"api_key\": \"…\"}"},
		{"JSON string", `"` + canary + `"`, "a quoted JSON string is not a key"},
		{"value with bad key", `{"api_key": "` + canary + ` x"}`, "the api_key contains spaces or tabs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run("stage", "app/openai", "--file", e.writeFile("key", tt.content))
			if r.code != exitError {
				t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
	r := e.run("stage", "app/openai", "--file", e.writeFile("key", "\ufeff"+canary))
	assertContains(t, "stderr", r.stderr, "rotator: hint: save the file without a byte order mark")
	if st := e.status("app/openai"); st.Staged != nil {
		t.Errorf("a bad key was staged as version %s", st.Staged.VersionID)
	}
}

func TestStagePromptOnlyOnTerminal(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	r := e.runInput(canary, "stage", "app/openai")
	if strings.Contains(r.stderr, "Ctrl-D") {
		t.Errorf("prompted for a key on a reader that is not a terminal:\n%s", r.stderr)
	}
}

func TestRelayHostsAreChecked(t *testing.T) {
	e := newEnv(t)
	e.openStore()
	tests := []struct {
		name string
		args []string
		vars map[string]string
		code int
		want string
	}{
		{"URL flag", []string{"--relay-host", "https://relay.example.com"}, nil, exitUsage,
			`invalid relay host "https://relay.example.com" in --relay-host: give a host name, not a URL: use relay.example.com`},
		{"wildcard", []string{"--relay-host", "*"}, nil, exitUsage, `invalid relay host "*" in --relay-host: wildcards are not supported`},
		{"private address", []string{"--relay-host", "10.0.0.1"}, nil, exitUsage, "10.0.0.1 is a private address"},
		{"metadata in env", nil, map[string]string{"KEYTURN_RELAY_HOSTS": "relay.example.com, 169.254.169.254"}, exitError,
			`invalid relay host "169.254.169.254" in KEYTURN_RELAY_HOSTS`},
		{"port", []string{"--relay-host", "relay.example.com:8443"}, nil, exitUsage, "relay.example.com:8443"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.vars {
				e.vars[k] = v
				defer delete(e.vars, k)
			}
			r := e.run(append([]string{"status"}, tt.args...)...)
			if r.code != tt.code {
				t.Errorf("exit %d, want %d\n%s", r.code, tt.code, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
		})
	}
	e.vars["KEYTURN_CONFIG"] = e.writeFile("rotator.yaml", "relay_hosts: [https://relay.example.com]\n")
	r := e.run("status")
	if r.code != exitError {
		t.Errorf("config: exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "in relay_hosts in config file ")
	delete(e.vars, "KEYTURN_CONFIG")
	e.mustRun(exitOK, "status", "--relay-host", "relay.example.com", "--relay-host", "203.0.113.7")
}

func TestAddRejectsIPv6BaseURL(t *testing.T) {
	e := newEnv(t)
	r := e.run("add", "app/v6", "--provider", "openai", "--base-url", "http://[::1]:8080/v1", "--allow-loopback")
	if r.code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "tag values may not contain [ or ]")
	assertContains(t, "stderr", r.stderr, "http://127.0.0.1:PORT/v1")

	r = e.run("dev", "--dir", t.TempDir(), "--listen", "[::1]:0")
	if r.code != exitUsage {
		t.Errorf("dev --listen [::1]:0: exit %d, want %d", r.code, exitUsage)
	}
	assertContains(t, "stderr", r.stderr, "use 127.0.0.1:PORT")
	help := e.mustRun(exitOK, "help", "status").stdout
	if strings.Contains(help, "::1") {
		t.Errorf("help still offers ::1:\n%s", help)
	}
}

func TestBadValuesAreUsageErrors(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	long := strings.Repeat("d", maxDescriptionLen+1)
	base := []string{"--provider", "openai", "--base-url", e.baseURL}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"invalid secret id", append([]string{"add", "app x"}, base...), `invalid SECRET: character ' ' at byte 3`},
		{"invalid id in status", []string{"status", "app/openai", "bad id"}, "invalid SECRET"},
		{"invalid id in rotate-now", []string{"rotate-now", "a*b"}, "invalid SECRET"},
		{"unknown provider", []string{"add", "app/x", "--provider", "opena1", "--base-url", e.baseURL}, `unknown provider "opena1"`},
		{"base url not allowed", []string{"add", "app/x", "--provider", "openai", "--base-url", "https://relay.example.com/v1"}, "relay.example.com"},
		{"bad schedule", append([]string{"add", "app/x", "--schedule", "rate(1 hours)"}, base...), `add: --schedule "rate(1 hours)": `},
		{"description too long", append([]string{"add", "app/x", "--description", long}, base...), "--description is 2049 characters long: the maximum is 2048"},
		{"issuer before its secret", append([]string{"add", "app/x", "--issuer", "bogus"}, base...), `unknown issuer "bogus"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(tt.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d\n%s", r.code, exitUsage, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, tt.want)
			if strings.Contains(r.stderr, "--window") {
				t.Errorf("stderr names --window, which was not given:\n%s", r.stderr)
			}
		})
	}
}

func TestFlagErrorIsOneLine(t *testing.T) {
	e := newEnv(t)
	r := e.run("status", "--bogus")
	if r.code != exitUsage {
		t.Errorf("exit %d, want %d", r.code, exitUsage)
	}
	if r.stdout != "" {
		t.Errorf("a flag error printed the usage text:\n%s", r.stdout)
	}
	want := "rotator: error: status: unknown flag --bogus\nrotator: hint: run 'rotator help status' for usage\n"
	if r.stderr != want {
		t.Errorf("stderr = %q, want %q", r.stderr, want)
	}
}

func TestConfigFileErrorsInPlainWords(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, content, want string
	}{
		{"unknown key", "store: file:///tmp/x\nbogus: 1\n", "line 2: unknown key bogus: the keys are store, identity and relay_hosts"},
		{"list for text", "store: [a]\n", "line 1: store must be text, such as a URL or a path, not a list"},
		{"number for text", "identity: 12\n", "line 1: identity must be text, such as a URL or a path, not a number"},
		{"relay hosts of keys", "relay_hosts: {a: b}\n", "relay_hosts must be a list of host names, such as [relay.example.com], not a set of keys"},
		{"duplicate key", "store: file:///a\nstore: file:///b\n", "line 2: key store is already set on line 1"},
		{"not keys", "- store\n", "line 1: expected keys such as"},
		{"bad YAML", "store: [\n", "invalid YAML"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := e.writeFile("rotator.yaml", tt.content)
			e.vars["KEYTURN_CONFIG"] = path
			r := e.run("status")
			if r.code != exitError {
				t.Errorf("exit %d, want %d\n%s", r.code, exitError, r.stderr)
			}
			assertContains(t, "stderr", r.stderr, "config file "+path)
			assertContains(t, "stderr", r.stderr, tt.want)
			for _, goName := range []string{"!!", "main.", "fileConfig", "unmarshal"} {
				if strings.Contains(r.stderr, goName) {
					t.Errorf("stderr contains %q:\n%s", goName, r.stderr)
				}
			}
		})
	}
	e.vars["KEYTURN_CONFIG"] = e.writeFile("rotator.yaml", "store: ~\nrelay_hosts: relay.example.com, gw.example.com\n")
	e.openStore()
	e.mustRun(exitOK, "status")
}

func TestServeOnceCountsInWords(t *testing.T) {
	e := newEnv(t)
	e.add("app/openai")
	e.mustRun(exitOK, "stage", "app/openai", "--file", e.writeFile("key", "sk-bad-key"))
	r := e.run("serve", "--once")
	assertContains(t, "stderr", r.stderr, "rotator: error: serve: 1 rotation failed")
}

func TestDevRelativeDirAndBusyPort(t *testing.T) {
	e := newEnv(t)
	base := t.TempDir()
	t.Chdir(base)
	r := runDev(t, e, "rel/dev")
	assertContains(t, "stdout", r.stdout, "KEYTURN_STORE=file://"+filepath.Join(base, "rel", "dev")+" rotator status dev/openai")
	assertContains(t, "stdout", r.stdout, "every 1h,")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	r = e.run("dev", "--dir", t.TempDir(), "--listen", ln.Addr().String())
	if r.code != exitError {
		t.Errorf("busy port: exit %d, want %d\n%s", r.code, exitError, r.stderr)
	}
	assertContains(t, "stderr", r.stderr, "rotator: hint: port ")
	assertContains(t, "stderr", r.stderr, "is in use: pick another with --listen 127.0.0.1:PORT")
}
