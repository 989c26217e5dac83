package main

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/keystore"
)

// devRun is a `rotator dev` running in process, past its first rotation.
type devRun struct {
	t      *testing.T
	dir    string
	stdout *syncBuffer // written as dev runs, unlike result's copy
	stderr *syncBuffer
	cancel context.CancelFunc
	done   chan result
	// routerURL (with /v1), standIn and keyFile are read from the banner.
	routerURL, standIn, keyFile string
}

var (
	bannerRouter  = regexp.MustCompile(`(?m)^  router +(http://127\.0\.0\.1:\d+/v1) `)
	bannerStandIn = regexp.MustCompile(`(?m)^  stand-in +(http://127\.0\.0\.1:\d+) `)
	bannerKeyFile = regexp.MustCompile(`(?m)^  client key +(.+) \(client "dev" in keyturn/router-clients, mode 0600\)$`)
)

// startDev starts rotator dev on dir with extra flags and returns once its
// first rotation is done and its router serves.
func startDev(t *testing.T, e *testEnv, dir string, extra ...string) *devRun {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d := &devRun{t: t, dir: dir, stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan result, 1)}
	ready := make(chan struct{})
	e.configure = func(a *app) {
		a.stdout = io.MultiWriter(a.stdout, d.stdout)
		a.stderr = io.MultiWriter(a.stderr, d.stderr)
		a.devReady = func(string) { close(ready) }
	}
	defer func() { e.configure = nil }()
	args := append([]string{"dev", "--dir", dir}, extra...)
	go func() { d.done <- e.runContext(ctx, "", args...) }()
	t.Cleanup(func() { d.stop() })

	select {
	case <-ready:
	case r := <-d.done:
		// Nothing is left for the cleanup's stop to wait for.
		d.cancel = nil
		cancel()
		t.Fatalf("dev exited early with %d\n%s\n%s", r.code, r.stdout, r.stderr)
	case <-time.After(hangGuard):
		t.Fatal("dev did not finish its first rotation")
	}
	d.routerURL = d.bannerField(bannerRouter)
	d.standIn = d.bannerField(bannerStandIn)
	d.keyFile = d.bannerField(bannerKeyFile)
	return d
}

func (d *devRun) bannerField(re *regexp.Regexp) string {
	d.t.Helper()
	m := re.FindStringSubmatch(d.stdout.String())
	if m == nil {
		d.t.Fatalf("the banner has no line matching %s:\n%s", re, d.stdout)
	}
	return m[1]
}

// stop cancels dev, as Ctrl-C does, and returns its result. A second call
// returns the zero result.
func (d *devRun) stop() result {
	d.t.Helper()
	if d.cancel == nil {
		return result{}
	}
	d.cancel()
	d.cancel = nil
	select {
	case r := <-d.done:
		return r
	case <-time.After(hangGuard):
		d.t.Fatal("dev did not stop after cancel")
	}
	return result{}
}

// clientKey reads the dev client key from the key file.
func (d *devRun) clientKey() string {
	d.t.Helper()
	data, err := os.ReadFile(d.keyFile)
	if err != nil {
		d.t.Fatalf("read the key file: %v", err)
	}
	return strings.TrimSuffix(string(data), "\n")
}

// chat sends a chat completion through dev's router with key and returns
// the status and the body.
func (d *devRun) chat(key, message string) (int, string) {
	d.t.Helper()
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":` + jsonString(message) + `}]}`
	return d.send(http.MethodPost, d.routerURL+"/chat/completions", key, body)
}

func (d *devRun) send(method, url, key, body string) (int, string) {
	d.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Timeout: hangGuard}
	resp, err := client.Do(req)
	if err != nil {
		d.t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		d.t.Fatalf("read the response of %s %s: %v", method, url, err)
	}
	return resp.StatusCode, string(data)
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// providerKeys returns every key stored in dev's secrets, for leak checks.
func providerKeys(t *testing.T, dir string) []string {
	t.Helper()
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	var keys []string
	for _, id := range []string{devSecretID, devIssuerID} {
		d, err := st.Describe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		// The description lists labelled versions alone, and the retire
		// list names the older ones.
		versions := map[string]bool{}
		for version := range d.Versions {
			versions[version] = true
			for _, r := range storedValue(st, id, version).Retire {
				versions[r.VersionID] = true
			}
		}
		for version := range versions {
			if k := storedValue(st, id, version).APIKey; !k.IsZero() {
				keys = append(keys, k.Reveal())
			}
		}
	}
	if len(keys) < 2 {
		t.Fatalf("found %d stored keys, want a provider key and a management key at least", len(keys))
	}
	return keys
}

// storedValue reads one version of a secret, or returns the zero value.
func storedValue(st keystore.Store, id, version string) keystore.Value {
	v, err := st.Get(context.Background(), id, keystore.ByVersion(version))
	if err != nil {
		return keystore.Value{}
	}
	value, _ := keystore.ParseValue(v.Value)
	return value
}

// assertNoKeys fails if any of keys appears in the output of r.
func assertNoKeys(t *testing.T, r result, what string, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(r.stdout, k) || strings.Contains(r.stderr, k) {
			t.Errorf("a %s reached dev's output", what)
		}
	}
}

func TestDevServesRouter(t *testing.T) {
	e := newEnv(t)
	dir := filepath.Join(t.TempDir(), "dev store")
	d := startDev(t, e, dir, "--interval", "1h")

	wantFile := filepath.Join(dir, "client.key")
	if d.keyFile != wantFile {
		t.Errorf("banner key file = %q, want %q", d.keyFile, wantFile)
	}
	fi, err := os.Stat(d.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %o, want 600", mode)
	}
	key := d.clientKey()
	if !strings.HasPrefix(key, clientkeys.Prefix) {
		t.Errorf("the key file does not hold a %s key", clientkeys.Prefix)
	}
	status, body := d.chat(key, "hello")
	if status != http.StatusOK || !strings.Contains(body, "echo: hello") {
		t.Errorf("chat through the router: %d %s", status, body)
	}
	status, body = d.send(http.MethodPost, d.routerURL+"/embeddings", key, `{"model":"text-embedding-3-small","input":"x"}`)
	if status != http.StatusOK || !strings.Contains(body, `"embedding"`) {
		t.Errorf("embeddings through the router: %d %.200s", status, body)
	}

	curl := `curl -sS ` + d.routerURL + `/chat/completions -H "Authorization: Bearer $(cat '` + wantFile + `')"` +
		` -H 'Content-Type: application/json' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}'`
	r := d.stop()
	if r.code != exitOK {
		t.Fatalf("dev: exit %d, want %d\n%s", r.code, exitOK, r.stderr)
	}
	assertContains(t, "banner", r.stdout, curl)
	assertContains(t, "banner", r.stdout, "KEYTURN_STORE='file://"+dir+"' rotator status dev/openai")
	assertContains(t, "banner", r.stdout, "each old key is revoked 1m after its replacement starts")
	for _, want := range []string{"component=router", `msg=request`, "client=dev", "router stopped", "scheduler stopped"} {
		assertContains(t, "stderr", r.stderr, want)
	}
	assertNoKeys(t, r, "client key", key)
	assertNoKeys(t, r, "provider key", providerKeys(t, dir)...)
}

func TestDevRestartReplacesClient(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	first := startDev(t, e, dir, "--interval", "1h")
	oldKey := first.clientKey()
	if r := first.stop(); r.code != exitOK {
		t.Fatalf("first dev: exit %d\n%s", r.code, r.stderr)
	}

	second := startDev(t, e, dir, "--interval", "1h")
	newKey := second.clientKey()
	if newKey == oldKey {
		t.Fatal("the second start kept the first start's key")
	}
	if status, body := second.chat(oldKey, "old"); status != http.StatusUnauthorized {
		t.Errorf("chat with the first start's key: %d %s, want 401", status, body)
	}
	if status, body := second.chat(newKey, "new"); status != http.StatusOK {
		t.Errorf("chat with the new key: %d %s, want 200", status, body)
	}
	r := second.stop()

	e.vars["KEYTURN_STORE"] = "file://" + dir
	var list clientListJSON
	out := e.mustRun(exitOK, "client", "list", "--output", "json").stdout
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatalf("client list JSON: %v\n%s", err, out)
	}
	if len(list.Clients) != 1 || list.Clients[0].Name != devClientName {
		t.Errorf("clients = %+v, want the dev client alone", list.Clients)
	}
	assertNoKeys(t, r, "client key", oldKey, newKey)
}

func TestDevRevokesRetiredKeys(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	d := startDev(t, e, dir, "--interval", "1s", "--grace", "1s")

	re := regexp.MustCompile(`msg="revoked retired key" secret_id=dev/openai step=retire version_id=\S+ retired_version_id=(\S+) key_id=(\S+)`)
	// Three revocations mean passes ran after the first one, which must
	// not revoke its key again.
	deadline := time.Now().Add(hangGuard)
	var revoked [][]string
	for len(revoked) < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("dev revoked %d retired keys, want 3:\n%s", len(revoked), d.stderr)
		}
		time.Sleep(20 * time.Millisecond)
		revoked = re.FindAllStringSubmatch(d.stderr.String(), -1)
	}
	retiredVersion, keyID := revoked[0][1], revoked[0][2]

	st, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v, err := st.Get(context.Background(), devSecretID, keystore.ByVersion(retiredVersion))
	if err != nil {
		t.Fatal(err)
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		t.Fatal(err)
	}
	if value.KeyID != keyID {
		t.Errorf("version %s holds key id %s, but the log revoked %s", retiredVersion, value.KeyID, keyID)
	}
	status, _ := d.send(http.MethodGet, d.standIn+"/openai/v1/models", value.APIKey.Reveal(), "")
	if status != http.StatusUnauthorized {
		t.Errorf("the stand-in answers the revoked key with %d, want 401", status)
	}

	r := d.stop()
	// Two more keys were revoked after the first, so rotations ran since,
	// and each drops the keys revoked before it from the retire list.
	current, err := st.Get(context.Background(), devSecretID, keystore.Current())
	if err != nil {
		t.Fatal(err)
	}
	for _, entry := range storedValue(st, devSecretID, current.VersionID).Retire {
		if entry.VersionID == retiredVersion {
			t.Errorf("the current retire list still names version %s, revoked rotations ago", retiredVersion)
		}
	}
	times := map[string]int{}
	for _, m := range re.FindAllStringSubmatch(r.stderr, -1) {
		times[m[2]]++
	}
	for id, n := range times {
		if n != 1 {
			t.Errorf("key %s was logged as revoked %d times, want once", id, n)
		}
	}
	assertNoKeys(t, r, "provider key", providerKeys(t, dir)...)
}

func TestDevRejectsBadRouterListen(t *testing.T) {
	e := newEnv(t)
	for _, addr := range []string{"0.0.0.0:0", "192.0.2.1:80", "[::1]:0", "localhost:80", "nonsense", "127.0.0.1:70000"} {
		r := e.run("dev", "--dir", t.TempDir(), "--router-listen", addr)
		if r.code != exitUsage {
			t.Errorf("--router-listen %s: exit %d, want %d", addr, r.code, exitUsage)
		}
		assertContains(t, "stderr", r.stderr, addr)
		assertContains(t, "stderr", r.stderr, "--router-listen")
	}
	r := e.run("dev", "--dir", t.TempDir(), "--listen", "127.0.0.1:18080", "--router-listen", "127.0.0.1:18080")
	if r.code != exitUsage {
		t.Errorf("the same port twice: exit %d, want %d", r.code, exitUsage)
	}
	assertContains(t, "stderr", r.stderr, "give the router another port")
}

func TestDevRouterPortInUse(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	r := e.run("dev", "--dir", t.TempDir(), "--router-listen", ln.Addr().String())
	if r.code != exitError {
		t.Errorf("exit %d, want %d", r.code, exitError)
	}
	assertContains(t, "stderr", r.stderr, "dev: start the router")
	assertContains(t, "stderr", r.stderr, "port "+port+" is in use")
}

func TestDevRejectsShortGrace(t *testing.T) {
	e := newEnv(t)
	for _, grace := range []string{"500ms", "0s", "-1m"} {
		r := e.run("dev", "--dir", t.TempDir(), "--grace", grace)
		if r.code != exitUsage {
			t.Errorf("--grace %s: exit %d, want %d", grace, r.code, exitUsage)
		}
		assertContains(t, "stderr", r.stderr, "--grace")
		assertContains(t, "stderr", r.stderr, "use 1s or more")
	}
	r := e.run("dev", "--grace", "soon")
	if r.code != exitUsage {
		t.Errorf("--grace soon: exit %d, want %d", r.code, exitUsage)
	}
	assertContains(t, "stderr", r.stderr, "soon")
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/tmp/dev/client.key":    "/tmp/dev/client.key",
		"/tmp/my dev/client.key": "'/tmp/my dev/client.key'",
		"/tmp/it's/client.key":   `'/tmp/it'\''s/client.key'`,
		"/tmp/$HOME/client.key":  "'/tmp/$HOME/client.key'",
		"file:///tmp/dev":        "file:///tmp/dev",
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestDevAbandonsEarlierRotation leaves a rotation of dev/openai in
// progress, as a kill during a rotation does. The next start must abandon
// it, since its key belonged to a stand-in that is gone, and rotate.
func TestDevAbandonsEarlierRotation(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if r := startDev(t, e, dir, "--interval", "1h").stop(); r.code != exitOK {
		t.Fatalf("first dev: exit %d\n%s", r.code, r.stderr)
	}
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	left, err := st.BeginRotation(context.Background(), devSecretID, "00000000-0000-4000-8000-0000000000aa")
	st.Close()
	if err != nil {
		t.Fatalf("BeginRotation: %v", err)
	}

	d := startDev(t, e, dir, "--interval", "1h")
	if !strings.Contains(d.stderr.String(), `msg="abandoned the rotation an earlier run left in progress`) ||
		!strings.Contains(d.stderr.String(), "version_id="+left) {
		t.Errorf("no log line names the abandoned version %s:\n%s", left, d.stderr)
	}
	if status, body := d.chat(d.clientKey(), "after restart"); status != http.StatusOK {
		t.Errorf("chat after the restart: %d %s, want 200", status, body)
	}
}

func TestDevRejectsEmptyDir(t *testing.T) {
	e := newEnv(t)
	r := e.run("dev", "--dir", "")
	if r.code != exitUsage || !strings.Contains(r.stderr, "--dir is empty") {
		t.Errorf("dev --dir '': exit %d, stderr %q; want exit %d naming the empty --dir", r.code, r.stderr, exitUsage)
	}
}

func TestDevWithoutHomeNamesDir(t *testing.T) {
	e := newEnv(t)
	delete(e.vars, "HOME")
	delete(e.vars, "XDG_STATE_HOME")
	r := e.run("dev")
	if r.code != exitUsage || !strings.Contains(r.stderr, "$HOME is not set: set it, or pass --dir DIR") {
		t.Errorf("dev without HOME: exit %d, stderr %q; want exit %d advising --dir", r.code, r.stderr, exitUsage)
	}
}

// TestDevKeyFileIsDirectory puts a directory where dev writes its client
// key: dev must stop before it issues a key it cannot write.
func TestDevKeyFileIsDirectory(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	if r := startDev(t, e, dir, "--interval", "1h").stop(); r.code != exitOK {
		t.Fatalf("first dev: exit %d\n%s", r.code, r.stderr)
	}
	e.vars["KEYTURN_STORE"] = "file://" + dir
	before := e.mustRun(exitOK, "client", "list", "--output", "json").stdout
	keyFile := filepath.Join(dir, devKeyFileName)
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(keyFile, 0o700); err != nil {
		t.Fatal(err)
	}

	r := e.run("dev", "--dir", dir)
	if r.code != exitError || !strings.Contains(r.stderr, "is a directory, where dev writes its client key") ||
		!strings.Contains(r.stderr, "remove or rename it") {
		t.Errorf("dev with client.key a directory: exit %d, stderr %q; want exit %d with the fix", r.code, r.stderr, exitError)
	}
	if after := e.mustRun(exitOK, "client", "list", "--output", "json").stdout; after != before {
		t.Errorf("the clients changed before the failure:\nbefore %s\nafter  %s", before, after)
	}
}

// TestDevStatusCommandNamesIdentity sets KEYTURN_IDENTITY to another
// identity, which cannot decrypt dev's store: the banner's status command
// must name dev's own identity, and it must work as printed.
func TestDevStatusCommandNamesIdentity(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	e.vars["KEYTURN_IDENTITY"] = filepath.Join(t.TempDir(), "other.age")
	r := startDev(t, e, dir, "--interval", "1h").stop()

	identity := filepath.Join(dir, "identity.age")
	want := "KEYTURN_STORE=file://" + dir + " KEYTURN_IDENTITY=" + identity + " rotator status dev/openai"
	assertContains(t, "banner", r.stdout, want)
	e.vars["KEYTURN_STORE"] = "file://" + dir
	e.vars["KEYTURN_IDENTITY"] = identity
	e.mustRun(exitOK, "status", devSecretID)
}
