package tests

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/loadgen"
	"github.com/keyturn/keyturn/keystore"
)

const (
	// loadRate is the client requests started per second, every other one
	// streamed: enough to keep requests in flight through each step of a
	// rotation.
	loadRate = 50
	// loadRotations is how many valid keys each load test promotes.
	loadRotations = 5
	// servedPerKey is how many chat requests the stand-in must serve with
	// the current key before the next step, so that every key carries
	// traffic of its own.
	servedPerKey = 10
)

// The stand-in's paths of the rotator's probe, a models request with the
// key it validates, and of the chat requests the router forwards.
const (
	probePath = fakeprovider.OpenAIPrefix + "/models"
	chatPath  = fakeprovider.OpenAIPrefix + "/chat/completions"
)

// rotationMethod is how a load test creates and rotates the provider
// secret, routerSecret.
type rotationMethod interface {
	// create makes the provider secret with key at AWSCURRENT and returns
	// the version id.
	create(key string) string
	// promote rotates the secret to key, which the stand-in accepts, and
	// returns the version id now at AWSCURRENT.
	promote(key string) string
	// reject rotates the secret to key, which the stand-in rejects, and
	// fails the test unless the rotation reported the rejection.
	reject(key string)
	// store is the test's own reader of the secret, valid after create.
	store() keystore.Store
}

// heldRefresh is the cache refresh interval of a router that never
// refreshes during a test, so that it learns of a rotation only from the
// stand-in's 401 for the key it holds.
const heldRefresh = "1h"

// loadWorld is a router world under steady client traffic from loadgen
// through two routers on the same store while a rotation method rotates
// the provider secret. The fresh router refreshes its cache every
// shortRefresh, and each previous key is revoked at the stand-in once the
// fresh router serves the newer version. The held router refreshes every
// heldRefresh, so it still sends the revoked key and must take the 401,
// re-read the secret and retry.
type loadWorld struct {
	*routerWorld
	method rotationMethod
	fresh  *loadRouter
	held   *loadRouter

	// keys and versions are the provider keys in the order they were
	// promoted and their versions: index 0 is the first key, index i the
	// key of rotation i.
	keys     []keystore.Secret
	versions []string
	rejected keystore.Secret
	timeline []loadEvent
}

// loadRouter is one router process of a load test with its own client
// traffic. The traffic carries a User-Agent of its own, which the router
// passes upstream, so that the stand-in's records tell the routers apart.
type loadRouter struct {
	name   string // such as "the router refreshing every 1s", for messages
	agent  string
	proc   *routerProcess
	gen    *loadgen.Generator
	report *loadgen.Report // set once the traffic has stopped
}

// loadEvent is one step of a load test, for failure messages that tell
// which rotation a failed request overlapped.
type loadEvent struct {
	at   time.Time
	what string
}

func newLoadWorld(rw *routerWorld, method rotationMethod) *loadWorld {
	return &loadWorld{routerWorld: rw, method: method}
}

func (lw *loadWorld) routers() []*loadRouter { return []*loadRouter{lw.fresh, lw.held} }

// run starts the routers and the traffic, performs loadRotations
// rotations and one rejected rotation, stops the traffic and checks that
// no client request failed and that the held router retried the revoked
// keys.
func (lw *loadWorld) run() {
	lw.t.Helper()
	lw.start()
	for i := 1; i <= loadRotations; i++ {
		lw.rotation(i)
	}
	lw.rejectedRotation()

	lw.stopTraffic()
	lw.mark("traffic stopped")
	for _, r := range lw.routers() {
		lw.checkReport(r)
	}
	recs := settledRequests(lw.t, lw.world)
	lw.checkProbedFirst(recs)
	lw.checkRejectedNeverSent(recs)
	lw.checkAgents(recs)
	lw.t.Logf("%d rotations and 1 rejected rotation in %s", loadRotations, lw.held.report.Duration.Round(time.Millisecond))
	for _, r := range lw.routers() {
		retried := lw.checkRejectionsCounted(r, recs)
		rep := r.report
		lw.t.Logf("%s: sent %d requests (%d streamed, %d not), %d failed; %d upstream attempts carried a revoked key and were retried",
			r.name, rep.Sent(), rep.Streamed(), rep.Sent()-rep.Streamed(), len(rep.Failed()), retried)
	}
}

// start creates the provider secret and a client, starts both routers and
// their traffic, and waits until the first key carries traffic through
// each.
func (lw *loadWorld) start() {
	lw.t.Helper()
	first := lw.plant("first", true)
	version := lw.method.create(first)
	lw.keys = append(lw.keys, keystore.NewSecret(first))
	lw.versions = append(lw.versions, version)
	client := keystore.NewSecret(lw.addClient("load"))
	lw.fresh = lw.startLoadRouter(shortRefresh, "fresh")
	lw.held = lw.startLoadRouter(heldRefresh, "held")

	for _, r := range lw.routers() {
		lw.waitRouterVersion(r, "before the first rotation", version)
	}
	for _, r := range lw.routers() {
		lw.startTraffic(r, client)
	}
	lw.mark("traffic started on version " + version)
	for _, r := range lw.routers() {
		lw.waitServed(r, "before the first rotation", lw.keys[0], 0)
	}
}

// startLoadRouter starts a router whose cache refreshes every refresh.
// role names its traffic's User-Agent.
func (lw *loadWorld) startLoadRouter(refresh, role string) *loadRouter {
	lw.t.Helper()
	return &loadRouter{
		name:  "the router refreshing every " + refresh,
		agent: "keyturn-load-test/" + role,
		proc:  lw.startRouterWith(refresh),
	}
}

// startTraffic starts r's load generator with the client key.
func (lw *loadWorld) startTraffic(r *loadRouter, client keystore.Secret) {
	lw.t.Helper()
	transport := &http.Transport{Proxy: nil, MaxIdleConnsPerHost: loadgen.DefaultMaxInFlight}
	lw.t.Cleanup(transport.CloseIdleConnections)
	gen, err := loadgen.Start(loadgen.Options{
		URL: r.proc.URL, Key: client, Model: "chat",
		Rate: loadRate, StreamEvery: 2,
		Client: &http.Client{Transport: agentTransport{base: transport, agent: r.agent}},
	})
	if err != nil {
		lw.t.Fatalf("start the load generator of %s: %v", r.name, err)
	}
	r.gen = gen
	// Registered after the router's cleanup, so it runs first: a test that
	// stops early stops its traffic before the router.
	lw.t.Cleanup(func() { gen.Stop() })
}

// agentTransport sets the User-Agent of every request it sends.
type agentTransport struct {
	base  http.RoundTripper
	agent string
}

func (a agentTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// A RoundTripper must not change the caller's request.
	req = req.Clone(req.Context())
	req.Header.Set("User-Agent", a.agent)
	return a.base.RoundTrip(req)
}

// rotation promotes a new key as rotation i and checks the store. It
// revokes the previous key at the stand-in once the fresh router serves
// the new version, then waits until the new key carries traffic through
// both routers, and checks that the held router met the revoked key.
func (lw *loadWorld) rotation(i int) {
	lw.t.Helper()
	key := lw.plant(fmt.Sprintf("rotation %d", i), true)
	lw.mark(fmt.Sprintf("rotation %d started", i))
	version := lw.method.promote(key)
	what := fmt.Sprintf("rotation %d to version %s", i, version)
	lw.mark(what + " promoted")
	lw.keys = append(lw.keys, keystore.NewSecret(key))
	lw.versions = append(lw.versions, version)
	lw.checkCurrent(what, i)

	lw.waitRouterVersion(lw.fresh, what, version)
	lw.mark(fmt.Sprintf("%s: %s serves it", what, lw.fresh.name))
	rejectedBefore := lw.rejections(lw.held)
	lw.provider.RevokeKey(lw.keys[i-1].Reveal())
	from := len(lw.provider.Requests())
	lw.mark(fmt.Sprintf("%s: %s revoked at the stand-in", what, lw.nameOf(lw.keys[i-1])))
	lw.waitServed(lw.fresh, what, lw.keys[i], from)

	// The held router learns of the new version only from the 401 for
	// the revoked key, which makes it re-read the secret and retry.
	lw.waitRouterVersion(lw.held, what, version)
	lw.mark(fmt.Sprintf("%s: %s serves it", what, lw.held.name))
	lw.waitServed(lw.held, what, lw.keys[i], from)
	if got := lw.rejections(lw.held); got <= rejectedBefore {
		lw.t.Errorf("%s: %s counted no key rejection (%d before the revocation, %d after), yet serves the new version: its retry went untested",
			what, lw.held.name, rejectedBefore, got)
	}
}

// rejectedRotation runs a rotation to a key the stand-in rejects, and
// checks that the store and both routers stay on the last promoted
// version while traffic goes on.
func (lw *loadWorld) rejectedRotation() {
	lw.t.Helper()
	last := len(lw.keys) - 1
	key := lw.plant("rejected", false)
	lw.rejected = keystore.NewSecret(key)
	lw.mark("rejected rotation started")
	lw.method.reject(key)
	lw.mark("rejected rotation ended")

	what := "after the rejected rotation"
	lw.checkCurrent(what, last)
	lw.checkRejectedValue()
	lw.waitRefreshes(lw.fresh, what, 2)
	from := len(lw.provider.Requests())
	for _, r := range lw.routers() {
		if !showsVersion(lw.scrape(r), lw.versions[last]) {
			lw.t.Errorf("%s: the /metrics of %s do not show version %s of %s, the last one promoted",
				what, r.name, lw.versions[last], routerSecret)
		}
		lw.waitServed(r, what, lw.keys[last], from)
	}
}

// checkCurrent checks that AWSCURRENT is on the version of rotation i and
// holds its key.
func (lw *loadWorld) checkCurrent(what string, i int) {
	lw.t.Helper()
	v := lw.read(keystore.StageCurrent)
	if v.VersionID != lw.versions[i] {
		lw.t.Errorf("%s: AWSCURRENT is on version %s, want %s", what, v.VersionID, lw.versions[i])
	}
	if key := lw.apiKey(v); !key.Equal(lw.keys[i]) {
		lw.t.Errorf("%s: AWSCURRENT holds %s, want %s, the one staged", what, lw.nameOf(key), lw.nameOf(lw.keys[i]))
	}
}

// checkRejectedValue checks that KEYTURN_REJECTED holds the rejected key
// with a failure of class rejected.
func (lw *loadWorld) checkRejectedValue() {
	lw.t.Helper()
	v := lw.read(keystore.StageRejected)
	value := lw.parse(v)
	if !value.APIKey.Equal(lw.rejected) {
		lw.t.Errorf("%s version %s holds %s, want the rejected key", keystore.StageRejected, v.VersionID, lw.nameOf(value.APIKey))
	}
	switch f := value.LastFailure; {
	case f == nil:
		lw.t.Errorf("%s version %s has no last_failure", keystore.StageRejected, v.VersionID)
	case f.Class != "rejected":
		lw.t.Errorf("%s version %s: last_failure class %q at step %s, want rejected", keystore.StageRejected, v.VersionID, f.Class, f.Step)
	}
}

// read returns the version of the provider secret that holds stage.
func (lw *loadWorld) read(stage string) keystore.Version {
	lw.t.Helper()
	v, err := lw.method.store().Get(lw.ctx(), routerSecret, keystore.ByStage(stage))
	if err != nil {
		lw.t.Fatalf("read %s %s: %s", routerSecret, stage, lw.scrubbed(err.Error()))
	}
	return v
}

func (lw *loadWorld) parse(v keystore.Version) keystore.Value {
	lw.t.Helper()
	value, err := keystore.ParseValue(v.Value)
	if err != nil {
		lw.t.Fatalf("parse %s version %s: %s", routerSecret, v.VersionID, lw.scrubbed(err.Error()))
	}
	return value
}

func (lw *loadWorld) apiKey(v keystore.Version) keystore.Secret { return lw.parse(v).APIKey }

// waitRouterVersion polls r's /metrics until its version gauge shows
// version. It fails the test at once when a client request fails.
func (lw *loadWorld) waitRouterVersion(r *loadRouter, what, version string) {
	lw.t.Helper()
	poll(lw.t, fmt.Sprintf("%s: the /metrics of %s showing version %s", what, r.name, version), func() bool {
		lw.checkNoFailures(what)
		return showsVersion(lw.scrape(r), version)
	})
}

// waitRefreshes waits until r's cache has read the provider secret n more
// times. Two reads make sure that one started after the caller's last
// change to the store, whichever read was running then.
func (lw *loadWorld) waitRefreshes(r *loadRouter, what string, n int) {
	lw.t.Helper()
	prefix := secretSample("keyturn_router_cache_refreshes_total")
	before := metricSum(lw.t, lw.scrape(r), prefix)
	poll(lw.t, fmt.Sprintf("%s: %d more refreshes of the cache of %s than %d", what, n, r.name, before), func() bool {
		return metricSum(lw.t, lw.scrape(r), prefix) >= before+n
	})
}

// rejections returns r's count of upstream attempts whose key the
// provider rejected.
func (lw *loadWorld) rejections(r *loadRouter) int {
	lw.t.Helper()
	return metricSum(lw.t, lw.scrape(r), secretSample(keyRejectionsMetric))
}

// scrape returns r's /metrics. Each scrape is checked for keys at once
// rather than collected, so that the output of a failed test does not
// list every scrape of every poll.
func (lw *loadWorld) scrape(r *loadRouter) string {
	lw.t.Helper()
	resp := lw.send(r.proc, http.MethodGet, "/metrics", nil, "")
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		lw.t.Fatalf("GET /metrics of %s: read the response: %v", r.name, err)
	}
	lw.checkText("response to GET /metrics of "+r.name, string(data))
	if resp.StatusCode != http.StatusOK {
		lw.t.Fatalf("GET /metrics of %s: status %d, want 200; body:\n%s", r.name, resp.StatusCode, lw.scrubbed(string(data)))
	}
	return string(data)
}

// showsVersion reports whether the metrics text has the version gauge of
// the provider secret at version.
func showsVersion(metrics, version string) bool {
	want := fmt.Sprintf("keyturn_router_secret_version_info{secret=%q,version_id=%q} ", routerSecret, version)
	for line := range strings.Lines(metrics) {
		if strings.HasPrefix(line, want) {
			return true
		}
	}
	return false
}

// secretSample is the start of the provider secret's sample of a metric
// whose one label is the secret.
func secretSample(name string) string {
	return fmt.Sprintf("%s{secret=%q} ", name, routerSecret)
}

// chatRequestsSample is the start of the samples of the router's requests
// counter for chat completions, whatever their status and provider.
const chatRequestsSample = `keyturn_router_requests_total{endpoint="/v1/chat/completions",`

// keyRejectionsMetric counts a router's upstream attempts whose key the
// provider rejected. The router then re-reads the secret and retries with
// its new key, if it has one.
const keyRejectionsMetric = "keyturn_router_upstream_key_rejections_total"

// metricSum adds up the values of the samples whose lines start with
// prefix: 0 when there is none, as for a counter never incremented.
func metricSum(t *testing.T, metrics, prefix string) int {
	t.Helper()
	total := 0
	for line := range strings.Lines(metrics) {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		fields := strings.Fields(line)
		n, err := strconv.ParseFloat(fields[len(fields)-1], 64)
		if err != nil {
			t.Fatalf("metrics line %q does not end with a number", strings.TrimSpace(line))
		}
		total += int(n)
	}
	return total
}

// waitServed waits until the stand-in has recorded servedPerKey
// successful chat requests from r with key from its record number from
// on. Each new record wakes the wait, so it takes as long as the traffic
// takes to carry the key. It fails the test at once when a client request
// fails.
func (lw *loadWorld) waitServed(r *loadRouter, what string, key keystore.Secret, from int) {
	lw.t.Helper()
	ctx, cancel := context.WithTimeout(lw.t.Context(), runDeadline)
	defer cancel()
	served, seen := 0, from
	for served < servedPerKey {
		recs, err := lw.provider.WaitRequests(ctx, seen+1)
		if err != nil {
			lw.t.Fatalf("%s: the stand-in served %d of %d chat requests from %s with %s within %v (%v); %d client requests through it ended; timeline:\n%s",
				what, served, servedPerKey, r.name, lw.nameOf(key), runDeadline, err, r.gen.Sent(), lw.timelineText())
		}
		lw.checkNoFailures(what)
		for _, rec := range recs[seen:] {
			if rec.Path == chatPath && rec.Status == http.StatusOK && rec.Key.Equal(key) && rec.Header.Get("User-Agent") == r.agent {
				served++
			}
		}
		seen = len(recs)
	}
}

// checkNoFailures ends the test at once if a client request through
// either router has failed so far. It stops the traffic and reports the
// failures of each router as checkReport does. Without it, a router that
// stops serving would show only as a wait that runs into its deadline.
func (lw *loadWorld) checkNoFailures(what string) {
	lw.t.Helper()
	failed := false
	for _, r := range lw.routers() {
		// A router without traffic yet has failed no request.
		failed = failed || (r != nil && r.gen != nil && len(r.gen.Failures()) > 0)
	}
	if !failed {
		return
	}
	lw.stopTraffic()
	lw.mark(what + ": traffic stopped after a client request failed")
	for _, r := range lw.routers() {
		lw.checkReport(r)
	}
	lw.t.FailNow()
}

// stopTraffic stops both routers' load generators and keeps their
// reports.
func (lw *loadWorld) stopTraffic() {
	for _, r := range lw.routers() {
		r.report = r.gen.Stop()
	}
}

// mark records a step of the test in its timeline.
func (lw *loadWorld) mark(what string) {
	lw.timeline = append(lw.timeline, loadEvent{at: time.Now(), what: what})
}

// timelineText lists the steps so far with the clock time that the load
// generator's failure list uses.
func (lw *loadWorld) timelineText() string {
	var b strings.Builder
	for _, e := range lw.timeline {
		fmt.Fprintf(&b, "  %s %s\n", e.at.Format("15:04:05.000"), e.what)
	}
	return b.String()
}

// checkReport fails the test for every failed client request through r,
// listing the first few beside the timeline of rotations.
func (lw *loadWorld) checkReport(r *loadRouter) {
	lw.t.Helper()
	rep := r.report
	failed := rep.Failed()
	// A router error body that quoted a key would show up here. The list
	// is checked at once rather than collected, because a failed test
	// prints what was collected, and this list may be long.
	lw.checkText("load generator failures through "+r.name, rep.FailureList(len(failed)))
	if rep.Sent() == 0 || rep.Streamed() == 0 {
		lw.t.Errorf("load through %s: %s, want streamed and unstreamed requests", r.name, rep)
	}
	if len(failed) > 0 {
		lw.t.Errorf("%d of %d client requests through %s failed (%s); first failures:\n%stimeline:\n%s",
			len(failed), rep.Sent(), r.name, rep, lw.scrubbed(rep.FailureList(5)), lw.timelineText())
	}
}

// checkProbedFirst checks that the stand-in served the rotator's models
// probe with each rotation's key before the router's first chat request
// with it: no key reached the router unvalidated.
func (lw *loadWorld) checkProbedFirst(recs []fakeprovider.RequestRecord) {
	lw.t.Helper()
	for i := 1; i < len(lw.keys); i++ {
		key := lw.keys[i]
		probe := firstRecord(recs, func(r fakeprovider.RequestRecord) bool {
			return r.Path == probePath && r.Status == http.StatusOK && r.Key.Equal(key)
		})
		chat := firstRecord(recs, func(r fakeprovider.RequestRecord) bool {
			return r.Path == chatPath && r.Key.Equal(key)
		})
		what := fmt.Sprintf("rotation %d to version %s", i, lw.versions[i])
		switch {
		case chat < 0:
			lw.t.Errorf("%s: the router sent no chat request with %s", what, lw.nameOf(key))
		case probe < 0:
			lw.t.Errorf("%s: the stand-in served no successful models probe with %s", what, lw.nameOf(key))
		case probe > chat:
			lw.t.Errorf("%s: the router sent %s upstream (stand-in record %d) before the rotator's models probe with it succeeded (record %d)",
				what, lw.nameOf(key), chat, probe)
		}
	}
}

// firstRecord returns the index of the first record that match accepts,
// or -1.
func firstRecord(recs []fakeprovider.RequestRecord, match func(fakeprovider.RequestRecord) bool) int {
	for i, r := range recs {
		if match(r) {
			return i
		}
	}
	return -1
}

// checkRejectedNeverSent checks that only the rotator's models probe sent
// the rejected key to the stand-in: the router never did.
func (lw *loadWorld) checkRejectedNeverSent(recs []fakeprovider.RequestRecord) {
	lw.t.Helper()
	for i, r := range recs {
		if r.Key.Equal(lw.rejected) && r.Path != probePath {
			lw.t.Errorf("the stand-in received the rejected key on %s %s (record %d, status %d): only the rotator's probe may send it",
				r.Method, r.Path, i, r.Status)
		}
	}
}

// checkAgents checks that every chat request the stand-in received
// carries the User-Agent of one router's traffic, so that the records
// counted per router are all of them.
func (lw *loadWorld) checkAgents(recs []fakeprovider.RequestRecord) {
	lw.t.Helper()
	other, first := 0, -1
	for i, r := range recs {
		if agent := r.Header.Get("User-Agent"); r.Path == chatPath && agent != lw.fresh.agent && agent != lw.held.agent {
			other++
			if first < 0 {
				first = i
			}
		}
	}
	if other > 0 {
		lw.t.Errorf("%d chat requests at the stand-in, the first record %d with User-Agent %q, carry neither %q nor %q: the routers did not pass their clients' User-Agent upstream",
			other, first, recs[first].Header.Get("User-Agent"), lw.fresh.agent, lw.held.agent)
	}
}

// checkRejectionsCounted checks that r's key rejections counter equals
// the chat requests from r that the stand-in rejected with 401, and that
// each of those carried a key already revoked. It returns the count. It
// first waits until r has counted every client request, since the router
// counts an upstream outcome before the request itself.
func (lw *loadWorld) checkRejectionsCounted(r *loadRouter, recs []fakeprovider.RequestRecord) int {
	lw.t.Helper()
	var metrics string
	sent := r.report.Sent()
	poll(lw.t, fmt.Sprintf("%s counting all %d chat requests", r.name, sent), func() bool {
		metrics = lw.scrape(r)
		return metricSum(lw.t, metrics, chatRequestsSample) >= sent
	})
	revoked := lw.keys[:len(lw.keys)-1]
	want := 0
	for i, rec := range recs {
		if rec.Path != chatPath || rec.Status != http.StatusUnauthorized || rec.Header.Get("User-Agent") != r.agent {
			continue
		}
		want++
		if !slices.ContainsFunc(revoked, rec.Key.Equal) {
			lw.t.Errorf("the stand-in rejected a chat request from %s (record %d) that carried %s, not a revoked key", r.name, i, lw.nameOf(rec.Key))
		}
	}
	if got := metricSum(lw.t, metrics, secretSample(keyRejectionsMetric)); got != want {
		lw.t.Errorf("%s: %s = %d, want %d, the chat requests from it that the stand-in rejected with 401",
			r.name, keyRejectionsMetric, got, want)
	}
	return want
}

// fileRotation rotates the provider secret on the file store with the
// real `rotator stage` and `rotator rotate-now`.
type fileRotation struct {
	rw     *routerWorld
	opened *keystore.FileStore
}

func (f *fileRotation) create(key string) string {
	f.rw.t.Helper()
	version := f.rw.addProviderSecret(key)
	// Readers of the file store take no lock, so the test reads the store
	// beside the rotator and the router.
	s, err := keystore.OpenFile(keystore.FileOptions{Dir: f.rw.storeDir})
	if err != nil {
		f.rw.t.Fatalf("open the file store %s: %s", f.rw.storeDir, f.rw.scrubbed(err.Error()))
	}
	f.rw.t.Cleanup(func() { _ = s.Close() })
	f.opened = s
	return version
}

func (f *fileRotation) promote(key string) string { return f.rw.rotateTo(key) }

func (f *fileRotation) reject(key string) {
	f.rw.t.Helper()
	f.rw.mustRotator("stage", routerSecret, "--file", f.rw.writeFile("rejected.key", key+"\n"))
	res := f.rw.rotator("rotate-now", routerSecret, "--allow-loopback", "--output", "json")
	var out struct {
		Outcome string `json:"outcome"`
	}
	err := json.Unmarshal([]byte(res.stdout), &out)
	if res.code != exitRejected || err != nil || out.Outcome != "rejected" {
		f.rw.t.Errorf("rotate-now of the rejected key: exit code %d, outcome %q (%v), want exit code %d and outcome rejected; stdout:\n%s\nstderr:\n%s",
			res.code, out.Outcome, err, exitRejected, f.rw.scrubbed(res.stdout), f.rw.scrubbed(res.stderr))
	}
}

func (f *fileRotation) store() keystore.Store { return f.opened }

// newLambdaRouterWorld is a router world on the Secrets Manager test
// server of newWorld, whose rotation function is the rotator under the
// emulator: the rotator CLI and the router use the AWS store, aws://REGION,
// through the test server.
func newLambdaRouterWorld(t *testing.T) *routerWorld {
	t.Helper()
	return &routerWorld{world: newWorld(t), store: "aws://" + region, client: loopbackClient(t)}
}

// lambdaRotation rotates the provider secret through RotateSecret on the
// Secrets Manager test server, which invokes the rotator under the
// emulator.
type lambdaRotation struct {
	w *world
}

func (l lambdaRotation) create(key string) string {
	l.w.t.Helper()
	version := l.w.createSecret(routerSecret, key)
	l.w.enableRotation(routerSecret)
	return version
}

func (l lambdaRotation) promote(key string) string {
	l.w.t.Helper()
	l.w.stage(routerSecret, key)
	token := l.w.rotate(&secretsmanager.RotateSecretInput{SecretId: aws.String(routerSecret)})
	l.w.waitPromoted(routerSecret, token)
	return token
}

func (l lambdaRotation) reject(key string) {
	l.w.t.Helper()
	l.w.stage(routerSecret, key)
	l.w.rotate(&secretsmanager.RotateSecretInput{SecretId: aws.String(routerSecret)})
	l.w.waitRejected(routerSecret)
	assertFailedStep(l.w.t, l.w, "testSecret", "RotationRejected")
}

func (l lambdaRotation) store() keystore.Store { return keystore.NewAWS(l.w.sm, keystore.AWSOptions{}) }
