package tests

import (
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

const devSecret = "dev/openai"

// devWorld is a `rotator dev` process on a temporary directory, with the
// URLs and the key file its banner names.
type devWorld struct {
	t       *testing.T
	dir     string
	proc    *process
	client  *http.Client
	router  string // the router's URL, with /v1
	standIn string // the stand-in's root URL
	keyFile string
}

var (
	devRouterLine  = regexp.MustCompile(`(?m)^  router +(http://127\.0\.0\.1:\d+/v1) `)
	devStandInLine = regexp.MustCompile(`(?m)^  stand-in +(http://127\.0\.0\.1:\d+) `)
	devKeyFileLine = regexp.MustCompile(`(?m)^  client key +(\S+) \(client "dev"`)
)

// startDevWorld starts the rotator binary's dev command and waits for its
// router to start.
func startDevWorld(t *testing.T, args ...string) *devWorld {
	t.Helper()
	dw := &devWorld{t: t, dir: t.TempDir(), client: loopbackClient(t)}
	// Nothing listens at the AWS endpoint: dev uses the file store alone,
	// and the endpoint keeps any AWS call on 127.0.0.1.
	cmd := exec.Command(rotatorBinary, append([]string{"dev", "--dir", dw.dir}, args...)...)
	cmd.Env = rotatorEnv(t, "http://"+freeAddr(t))
	dw.proc = startProcess(t, "rotator dev", cmd)
	err := dw.proc.waitReady("start its router", func() bool {
		return strings.Contains(dw.proc.output.String(), `msg="router started" component=router`)
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, scrubKeys(dw.proc.output.String()))
	}
	banner := dw.proc.output.String()
	dw.router = dw.bannerField(banner, devRouterLine)
	dw.standIn = dw.bannerField(banner, devStandInLine)
	dw.keyFile = dw.bannerField(banner, devKeyFileLine)
	return dw
}

func (dw *devWorld) bannerField(banner string, re *regexp.Regexp) string {
	dw.t.Helper()
	m := re.FindStringSubmatch(banner)
	if m == nil {
		dw.t.Fatalf("the banner has no line matching %s:\n%s", re, scrubKeys(banner))
	}
	return m[1]
}

// openStore opens dev's file store with the identity in its directory.
// Readers take no lock, so it may be read while dev writes it.
func (dw *devWorld) openStore() *keystore.FileStore {
	dw.t.Helper()
	st, err := keystore.OpenFile(keystore.FileOptions{Dir: dw.dir})
	if err != nil {
		dw.t.Fatalf("open dev's store: %v", err)
	}
	dw.t.Cleanup(func() { _ = st.Close() })
	return st
}

// post sends body to path under the router's URL with key and returns the
// status and the response body.
func (dw *devWorld) post(path, key, body string) (int, string, error) {
	req, err := http.NewRequest(http.MethodPost, dw.router+path, strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	return dw.do(req)
}

func (dw *devWorld) do(req *http.Request) (int, string, error) {
	ctx, cancel := context.WithTimeout(req.Context(), runDeadline)
	defer cancel()
	resp, err := dw.client.Do(req.WithContext(ctx))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(data), err
}

// standInStatus returns the status of the stand-in's GET /openai/v1/models
// with key, sent straight to the stand-in.
func (dw *devWorld) standInStatus(key keystore.Secret) int {
	dw.t.Helper()
	req, err := http.NewRequest(http.MethodGet, dw.standIn+"/openai/v1/models", nil)
	if err != nil {
		dw.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key.Reveal())
	status, _, err := dw.do(req)
	if err != nil {
		dw.t.Fatalf("GET the stand-in's models: %v", err)
	}
	return status
}

// interrupt stops dev with SIGINT, as Ctrl-C does, and fails the test
// unless it exits 0.
func (dw *devWorld) interrupt() {
	dw.t.Helper()
	dw.proc.abandoned = true
	if err := dw.proc.cmd.Process.Signal(syscall.SIGINT); err != nil {
		dw.t.Fatalf("send SIGINT: %v", err)
	}
	select {
	case <-dw.proc.done:
	case <-time.After(stopDeadline):
		dw.proc.terminate()
		dw.t.Fatalf("dev did not stop within %v of SIGINT", stopDeadline)
	}
	if dw.proc.err != nil {
		dw.t.Errorf("dev after SIGINT: %v, want exit 0\n%s", dw.proc.err, scrubKeys(dw.proc.output.String()))
	}
}

// storedKeys returns the keys of dev's secrets: those of the labelled
// versions, and of every version that dev/openai's retire list names,
// since the store's description lists labelled versions alone.
func (dw *devWorld) storedKeys(st keystore.Store) []keystore.Secret {
	dw.t.Helper()
	var keys []keystore.Secret
	for _, id := range []string{devSecret, "dev/issuer"} {
		d, err := st.Describe(context.Background(), id)
		if err != nil {
			dw.t.Fatalf("describe %s: %v", id, err)
		}
		versions := map[string]bool{}
		for version := range d.Versions {
			versions[version] = true
			if v, ok := valueOf(st, id, version); ok {
				for _, r := range v.Retire {
					versions[r.VersionID] = true
				}
			}
		}
		for version := range versions {
			if v, ok := valueOf(st, id, version); ok {
				keys = append(keys, v.APIKey)
			}
		}
	}
	return keys
}

// valueOf reads and parses one version of a secret.
func valueOf(st keystore.Store, id, version string) (keystore.Value, bool) {
	v, err := st.Get(context.Background(), id, keystore.ByVersion(version))
	if err != nil {
		return keystore.Value{}, false
	}
	value, err := keystore.ParseValue(v.Value)
	return value, err == nil
}

// currentVersion returns the AWSCURRENT version of dev/openai.
func currentVersion(t *testing.T, st keystore.Store) string {
	t.Helper()
	d, err := st.Describe(context.Background(), devSecret)
	if err != nil {
		t.Fatalf("describe %s: %v", devSecret, err)
	}
	return d.VersionWithStage(keystore.StageCurrent)
}

// loadDuringRotations sends chat requests through the router with key
// until stop is closed, and returns how many it sent and the failures.
func (dw *devWorld) loadDuringRotations(key string, stop <-chan struct{}) (sent int, failures []string) {
	body := `{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hello"}]}`
	for {
		select {
		case <-stop:
			return sent, failures
		default:
		}
		status, resp, err := dw.post("/chat/completions", key, body)
		sent++
		switch {
		case err != nil:
			failures = append(failures, err.Error())
		case status != http.StatusOK || !strings.Contains(resp, "echo: hello"):
			failures = append(failures, http.StatusText(status)+": "+resp)
		}
	}
}

func TestDevKeysTurnWhileRequestsWork(t *testing.T) {
	dw := startDevWorld(t, "--interval", "1s", "--grace", "2s")
	if want := filepath.Join(dw.dir, "client.key"); dw.keyFile != want {
		t.Errorf("banner key file = %s, want %s", dw.keyFile, want)
	}
	fi, err := os.Stat(dw.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Errorf("key file mode = %o, want 600", mode)
	}
	data, err := os.ReadFile(dw.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := strings.TrimSpace(string(data))
	if !strings.HasPrefix(clientKey, "kt-") {
		t.Fatal("the key file does not hold a kt- client key")
	}

	st := dw.openStore()
	first := currentVersion(t, st)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent int
	var failures []string
	wg.Go(func() { sent, failures = dw.loadDuringRotations(clientKey, stop) })
	// Four versions seen at AWSCURRENT are three rotations under load.
	seen := map[string]bool{first: true}
	poll(t, "three rotations", func() bool {
		seen[currentVersion(t, st)] = true
		return len(seen) >= 4
	})
	close(stop)
	wg.Wait()
	if len(failures) > 0 {
		t.Errorf("%d of %d requests through the router failed during rotations; the first: %s",
			len(failures), sent, scrubKeys(failures[0]))
	}
	t.Logf("%d requests through the router during %d rotations", sent, len(seen)-1)

	firstValue, ok := valueOf(st, devSecret, first)
	if !ok {
		t.Fatalf("read version %s, the first key of the run", first)
	}
	// Its grace is 2s from the rotation that replaced it; dev revokes it
	// then, whether or not a rotation comes.
	poll(t, "the revocation of the first retired key", func() bool {
		return dw.standInStatus(firstValue.APIKey) == http.StatusUnauthorized
	})

	keys := dw.storedKeys(st)
	dw.interrupt()
	out := dw.proc.output.String()
	for _, want := range []string{
		`msg="secret version changed" component=router secret=dev/openai`,
		`msg="revoked retired key" secret_id=dev/openai step=retire`,
		"retired_version_id=" + first,
		`msg="router stopped" component=router`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("dev's output does not contain %q", want)
		}
	}
	assertNoSecrets(t, out, clientKey, keys)
}

// assertNoSecrets fails if the client key or any stored key appears in
// out. A failure message names the kind of key that leaked, never the key.
func assertNoSecrets(t *testing.T, out, clientKey string, keys []keystore.Secret) {
	t.Helper()
	if len(keys) < 5 {
		t.Fatalf("found %d stored keys, want the management key and at least four provider keys", len(keys))
	}
	if strings.Contains(out, clientKey) || strings.Contains(out, strings.TrimPrefix(clientKey, "kt-")) {
		t.Error("dev's output contains the client key")
	}
	for _, k := range keys {
		if strings.Contains(out, k.Reveal()) {
			t.Error("dev's output contains a stored provider or management key")
		}
	}
	if t.Failed() {
		t.Logf("dev's output, keys removed:\n%s", scrubKeys(out))
	}
}

// devKeyPattern matches the keys dev handles: the stand-in's minted keys,
// its management key and router client keys.
var devKeyPattern = regexp.MustCompile(`sk-or-v1-[0-9A-Za-z]+|dev-management-[0-9a-f]+|kt-[0-9A-Za-z_-]+`)

// scrubKeys replaces every key in text, so that a failure message can show
// dev's output.
func scrubKeys(text string) string {
	return devKeyPattern.ReplaceAllString(text, "<key>")
}
