package tests

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyturn/keyturn/internal/loadgen"
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

// devLoadRate is the chat requests per second that the dev test sends
// through dev's router, every other one streamed.
const devLoadRate = 50

// rootURL returns the router's root URL, without /v1.
func (dw *devWorld) rootURL() string { return strings.TrimSuffix(dw.router, "/v1") }

// currentKey reads the AWSCURRENT version of dev/openai and returns its
// id and key.
func currentKey(t *testing.T, st keystore.Store) (string, keystore.Secret) {
	t.Helper()
	v, err := st.Get(context.Background(), devSecret, keystore.Current())
	if err != nil {
		t.Fatalf("read %s %s: %v", devSecret, keystore.StageCurrent, err)
	}
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		t.Fatalf("parse %s version %s: %v", devSecret, v.VersionID, err)
	}
	return v.VersionID, value.APIKey
}

// keyRejections returns the router's count of upstream attempts whose
// key the stand-in rejected. The router re-reads dev/openai and retries
// such an attempt with the new key.
func (dw *devWorld) keyRejections() int {
	dw.t.Helper()
	req, err := http.NewRequest(http.MethodGet, dw.rootURL()+"/metrics", nil)
	if err != nil {
		dw.t.Fatal(err)
	}
	status, body, err := dw.do(req)
	if err != nil || status != http.StatusOK {
		dw.t.Fatalf("GET the router's /metrics: status %d, %v", status, err)
	}
	return metricSum(dw.t, body, fmt.Sprintf("%s{secret=%q} ", keyRejectionsMetric, devSecret))
}

// startLoad starts loadgen's traffic through the router with the client
// key, every other request streamed, each response checked in full.
func (dw *devWorld) startLoad(clientKey string) *loadgen.Generator {
	dw.t.Helper()
	gen, err := loadgen.Start(loadgen.Options{
		URL: dw.rootURL(), Key: keystore.NewSecret(clientKey), Model: "gpt-4o-mini",
		Rate: devLoadRate, StreamEvery: 2,
	})
	if err != nil {
		dw.t.Fatalf("start the load generator: %v", err)
	}
	// Registered after dev's cleanup, so it runs first: a test that stops
	// early stops its traffic before dev.
	dw.t.Cleanup(func() { gen.Stop() })
	return gen
}

func TestDevKeysTurnWhileRequestsWork(t *testing.T) {
	// Dev's router re-reads dev/openai every --interval (at most 5s), so
	// with a grace shorter than the interval the old key is often revoked
	// at the stand-in before the router has read the rotation. The router
	// then sends the revoked key, gets the 401, re-reads and retries,
	// which the poll below waits for. With a grace longer than the
	// interval, such as --interval 1s --grace 2s, the router reads each
	// rotation by its refresh before the old key is revoked, so the retry
	// goes untested.
	dw := startDevWorld(t, "--interval", "2s", "--grace", "1s")
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
	first, firstKey := currentKey(t, st)
	gen := dw.startLoad(clientKey)
	// Four versions seen at AWSCURRENT are three rotations under load.
	// Each version's key is read while it is current, so that the leak
	// check looks for at least four provider keys, whatever dev has
	// dropped from its store by then. A failed request ends the wait at
	// once, since the test has failed.
	seen := map[string]keystore.Secret{first: firstKey}
	poll(t, "three rotations and a key rejection counted by the router", func() bool {
		version, key := currentKey(t, st)
		seen[version] = key
		return len(gen.Failures()) > 0 || len(seen) >= 4 && dw.keyRejections() > 0
	})
	rep := gen.Stop()
	keys := slices.Collect(maps.Values(seen))
	if failed := rep.Failed(); len(failed) > 0 {
		t.Errorf("%d of %d requests through the router failed during rotations (%s); first failures:\n%s",
			len(failed), rep.Sent(), rep, scrubKeys(rep.FailureList(5)))
		dw.interrupt()
		assertNoSecrets(t, dw.proc.output.String(), clientKey, append(keys, dw.storedKeys(st)...))
		return
	}
	if rep.Streamed() == 0 || rep.Streamed() == rep.Sent() {
		t.Errorf("load: %s, want streamed and unstreamed requests", rep)
	}
	t.Logf("%s during %d rotations; %d upstream attempts carried a revoked key and were retried",
		rep, len(seen)-1, dw.keyRejections())

	// Its grace ends 1s after the rotation that replaced it, and dev
	// revokes it then, whether or not a rotation comes.
	poll(t, "the revocation of the first retired key", func() bool {
		return dw.standInStatus(firstKey) == http.StatusUnauthorized
	})

	stored := dw.storedKeys(st)
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
	keys = append(keys, stored...)
	if n := distinctKeys(keys); n < 5 {
		t.Errorf("found %d distinct keys, want the management key and the four provider keys of the rotations seen", n)
	}
	assertNoSecrets(t, out, clientKey, keys)
}

// assertNoSecrets fails if the client key or any of keys appears in out.
// A failure message names the kind of key that leaked, never the key.
func assertNoSecrets(t *testing.T, out, clientKey string, keys []keystore.Secret) {
	t.Helper()
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

// distinctKeys returns the number of different keys in keys.
func distinctKeys(keys []keystore.Secret) int {
	n := 0
	for i, k := range keys {
		if !slices.ContainsFunc(keys[:i], k.Equal) {
			n++
		}
	}
	return n
}

// devKeyPattern matches the keys dev handles: the stand-in's minted keys,
// its management key and router client keys.
var devKeyPattern = regexp.MustCompile(`sk-or-v1-[0-9A-Za-z]+|dev-management-[0-9a-f]+|kt-[0-9A-Za-z_-]+`)

// scrubKeys replaces every key in text, so that a failure message can show
// dev's output.
func scrubKeys(text string) string {
	return devKeyPattern.ReplaceAllString(text, "<key>")
}
