package tests

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/keyturn/keyturn/internal/fakeprovider"
	"github.com/keyturn/keyturn/internal/smtest"
	"github.com/keyturn/keyturn/keystore"
)

const (
	region = "us-east-1"
	// rotatorARN is the rotation function the secrets name. The emulator
	// runs the rotator whatever the ARN.
	rotatorARN = "arn:aws:lambda:us-east-1:123456789012:function:keyturn-rotator"
	// functionTimeout is the rotator's Lambda timeout in seconds.
	functionTimeout = "30"
)

// world is one complete setup: the Secrets Manager test server, the stand-in
// provider, and the rotator running under the emulator, wired to each other
// on 127.0.0.1. Every key a test plants is a canary: checkNoLeaks fails the
// test if one appears in any process output or handler error collected.
type world struct {
	t           *testing.T
	sm          *secretsmanager.Client
	smURL       string
	provider    *fakeprovider.Provider
	baseURL     string // the stand-in's OpenAI-shaped API root
	emulator    *emulator
	invocations *invocationLog
	env         []string // environment of the rotator, as a CLI or a Lambda

	mu      sync.Mutex
	planted map[string]string // key to the name it was planted under
	outputs []collected
}

// collected is text a process or a handler returned, to check for keys.
type collected struct {
	where string
	text  string
}

// newWorld starts a world with no secrets.
func newWorld(t *testing.T) *world {
	t.Helper()
	w := &world{t: t, planted: map[string]string{}, invocations: &invocationLog{}}
	// Registered first, so it runs last: after every process has stopped
	// and its output is complete.
	t.Cleanup(w.checkNoLeaks)

	var providerURL string
	w.provider, providerURL = fakeprovider.Start(t, fakeprovider.Options{})
	w.baseURL = providerURL + fakeprovider.OpenAIPrefix

	// The emulator starts last because its environment names the Secrets
	// Manager test server, so the server gets an invoker that is pointed at
	// the emulator once it listens.
	invoker := &emulatorInvoker{}
	_, w.smURL = smtest.Start(t, smtest.Options{Invoker: w.invocations.wrap(invoker)})
	w.sm = secretsmanager.NewFromConfig(smtest.TestConfig(t, w.smURL))

	w.env = rotatorEnv(t, w.smURL)
	lambdaEnv := append(slices.Clone(w.env),
		"AWS_LAMBDA_LOG_FORMAT=JSON",
		"AWS_LAMBDA_FUNCTION_TIMEOUT="+functionTimeout,
	)
	w.emulator = startEmulator(t, rotatorBinary, lambdaEnv)
	invoker.url.Store(&w.emulator.URL)
	return w
}

// emulatorInvoker posts rotation events to the emulator's invocations URL,
// which is set once the emulator has started.
type emulatorInvoker struct {
	url atomic.Pointer[string]
}

func (i *emulatorInvoker) Invoke(ctx context.Context, functionARN string, event events.SecretsManagerSecretRotationEvent) error {
	url := i.url.Load()
	if url == nil {
		return errors.New("invoke the rotation function: the emulator has not started")
	}
	return smtest.HTTPInvoker{URL: *url}.Invoke(ctx, functionARN, event)
}

// rotatorEnv is the whole environment of a rotator process: the Secrets
// Manager test server as the endpoint, static credentials, and no shared
// AWS configuration, so nothing reaches for an address off 127.0.0.1.
func rotatorEnv(t *testing.T, smURL string) []string {
	home := t.TempDir()
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"TMPDIR=" + home,
		"AWS_CONFIG_FILE=" + filepath.Join(home, "no-aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(home, "no-aws-credentials"),
		"AWS_ENDPOINT_URL_SECRETS_MANAGER=" + smURL,
		"AWS_REGION=" + region,
		"AWS_ACCESS_KEY_ID=AKIAKEYTURNE2ETEST",
		"AWS_SECRET_ACCESS_KEY=keyturn-e2e-test-secret-access-key",
		"AWS_EC2_METADATA_DISABLED=true",
		"KEYTURN_ALLOW_LOOPBACK=true",
	}
}

// plant returns a new canary key, recognisable by name in failure
// messages, and makes the stand-in provider accept it when valid is true.
func (w *world) plant(name string, valid bool) string {
	w.t.Helper()
	random := make([]byte, 16)
	if _, err := rand.Read(random); err != nil {
		w.t.Fatalf("make canary key: %v", err)
	}
	key := "sk-keyturn-canary-" + hex.EncodeToString(random)
	w.mu.Lock()
	w.planted[key] = name
	w.mu.Unlock()
	if valid {
		w.provider.AddKey(key)
	}
	return key
}

// collect keeps text for checkNoLeaks.
func (w *world) collect(where, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.outputs = append(w.outputs, collected{where, text})
}

// checkNoLeaks fails the test if a planted key appears in any output
// collected or in the emulator's output, which contains the rotator's logs.
// Each key is searched for whole and by its random part, which no log line
// has reason to contain.
func (w *world) checkNoLeaks() {
	if w.emulator != nil {
		w.collect("emulator and Lambda rotator output", w.emulator.output.String())
	}
	w.collect("rotation function errors", w.invocations.String())
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, out := range w.outputs {
		for _, name := range w.plantedIn(out.text) {
			w.t.Errorf("%s contains the %s key", out.where, name)
		}
	}
	if w.t.Failed() {
		for _, out := range w.outputs {
			w.t.Logf("%s (keys replaced by their names):\n%s", out.where, w.scrub(out.text))
		}
	}
}

// checkText fails the test if text contains a planted key, for output
// checked at once rather than collected, such as many scrapes of the
// router's /metrics.
func (w *world) checkText(where, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, name := range w.plantedIn(text) {
		w.t.Errorf("%s contains the %s key", where, name)
	}
}

// plantedIn returns the names of the planted keys that text contains,
// each searched for by its random part. The caller holds w.mu.
func (w *world) plantedIn(text string) []string {
	var names []string
	for key, name := range w.planted {
		if strings.Contains(text, strings.TrimPrefix(key, "sk-keyturn-canary-")) {
			names = append(names, name)
		}
	}
	return names
}

// scrubbed replaces every planted key in text by its name.
func (w *world) scrubbed(text string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.scrub(text)
}

// scrub replaces every planted key in text by its name. The caller holds
// w.mu.
func (w *world) scrub(text string) string {
	for key, name := range w.planted {
		random := strings.TrimPrefix(key, "sk-keyturn-canary-")
		text = strings.ReplaceAll(text, random, "<"+name+">")
	}
	return text
}

// nameOf names a key for a failure message without printing it.
func (w *world) nameOf(key keystore.Secret) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	if name, ok := w.planted[key.Reveal()]; ok {
		return "the " + name + " key"
	}
	return "a key that was never planted"
}

// createSecret creates a managed secret whose AWSCURRENT value contains key,
// with the settings tags for the stand-in's OpenAI shape. It returns the
// version id of AWSCURRENT.
func (w *world) createSecret(name, key string) string {
	w.t.Helper()
	value := keystore.Value{
		APIKey:    keystore.NewSecret(key),
		CreatedAt: time.Now().UTC(),
		Settings:  keystore.Settings{Provider: "openai", BaseURL: w.baseURL},
	}
	out, err := w.sm.CreateSecret(w.ctx(), &secretsmanager.CreateSecretInput{
		Name:         aws.String(name),
		SecretString: aws.String(w.encode(value)),
		Tags: []types.Tag{
			{Key: aws.String(keystore.TagProvider), Value: aws.String("openai")},
			{Key: aws.String(keystore.TagBaseURL), Value: aws.String(w.baseURL)},
		},
	})
	if err != nil {
		w.t.Fatalf("CreateSecret %s: %v", name, err)
	}
	return aws.ToString(out.VersionId)
}

// stage writes key as the next key of a secret, labelled KEYTURN_STAGED,
// and returns the new version's id.
func (w *world) stage(name, key string) string {
	w.t.Helper()
	return w.stageRaw(name, w.encode(keystore.Value{APIKey: keystore.NewSecret(key)}))
}

// stageRaw writes value as it is under KEYTURN_STAGED.
func (w *world) stageRaw(name, value string) string {
	w.t.Helper()
	out, err := w.sm.PutSecretValue(w.ctx(), &secretsmanager.PutSecretValueInput{
		SecretId:      aws.String(name),
		SecretString:  aws.String(value),
		VersionStages: []string{keystore.StageStaged},
	})
	if err != nil {
		w.t.Fatalf("PutSecretValue %s stage %s: %v", name, keystore.StageStaged, err)
	}
	return aws.ToString(out.VersionId)
}

func (w *world) encode(v keystore.Value) string {
	w.t.Helper()
	s, err := v.Encode()
	if err != nil {
		w.t.Fatalf("encode value: %v", err)
	}
	return s.Reveal()
}

// rotate calls RotateSecret and returns the token of the new AWSPENDING
// version.
func (w *world) rotate(in *secretsmanager.RotateSecretInput) string {
	w.t.Helper()
	out, err := w.sm.RotateSecret(w.ctx(), in)
	if err != nil {
		w.t.Fatalf("RotateSecret %s: %v", aws.ToString(in.SecretId), err)
	}
	return aws.ToString(out.VersionId)
}

// describe returns a secret's labels by version id.
func (w *world) describe(name string) map[string][]string {
	w.t.Helper()
	out, err := w.sm.DescribeSecret(w.ctx(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(name)})
	if err != nil {
		w.t.Fatalf("DescribeSecret %s: %v", name, err)
	}
	return out.VersionIdsToStages
}

// waitFor polls a secret's labels until done returns true, and fails the
// test if that does not happen within runDeadline.
func (w *world) waitFor(name, what string, done func(labels map[string][]string) bool) map[string][]string {
	w.t.Helper()
	deadline := time.Now().Add(runDeadline)
	for {
		labels := w.describe(name)
		if done(labels) {
			return labels
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("%s: %s did not happen within %v; labels %v; invocations:\n%s",
				name, what, runDeadline, labels, w.scrubbed(w.invocations.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// settled reports whether a secret has no rotation in progress and no step
// is running: after AWSPENDING is removed, Secrets Manager invokes nothing
// more for that rotation.
func (w *world) settled(labels map[string][]string) bool {
	return holder(labels, keystore.StagePending) == "" && w.invocations.idle()
}

// waitSettled waits until no rotation of the secret is in progress.
func (w *world) waitSettled(name string) map[string][]string {
	w.t.Helper()
	return w.waitFor(name, "the end of the rotation", w.settled)
}

// waitPromoted waits until the rotation under token has made it AWSCURRENT
// and ended.
func (w *world) waitPromoted(name, token string) map[string][]string {
	w.t.Helper()
	return w.waitFor(name, "promotion of version "+token, func(labels map[string][]string) bool {
		return holder(labels, keystore.StageCurrent) == token && w.settled(labels)
	})
}

// waitRejected waits until a rotation has recorded a rejected value and
// ended.
func (w *world) waitRejected(name string) map[string][]string {
	w.t.Helper()
	return w.waitFor(name, "a rejected rotation", func(labels map[string][]string) bool {
		return holder(labels, keystore.StageRejected) != "" && w.settled(labels)
	})
}

// holder returns the id of the version that holds stage, or "".
func holder(labels map[string][]string, stage string) string {
	for id, stages := range labels {
		if slices.Contains(stages, stage) {
			return id
		}
	}
	return ""
}

// value reads and parses the version of a secret that holds stage.
func (w *world) value(name, stage string) keystore.Value {
	w.t.Helper()
	out, err := w.sm.GetSecretValue(w.ctx(), &secretsmanager.GetSecretValueInput{
		SecretId:     aws.String(name),
		VersionStage: aws.String(stage),
	})
	if err != nil {
		w.t.Fatalf("GetSecretValue %s stage %s: %v", name, stage, err)
	}
	v, err := keystore.ParseValue(keystore.NewSecret(aws.ToString(out.SecretString)))
	if err != nil {
		w.t.Fatalf("parse %s stage %s: %v", name, stage, err)
	}
	return v
}

// assertKey checks that the version holding stage carries want.
func (w *world) assertKey(name, stage, want string) {
	w.t.Helper()
	got := w.value(name, stage).APIKey
	if !got.Equal(keystore.NewSecret(want)) {
		w.t.Errorf("%s %s holds %s, want %s", name, stage, w.nameOf(got), w.nameOf(keystore.NewSecret(want)))
	}
}

// rotatorCLI runs the rotator binary as the operator CLI and collects its
// output for checkNoLeaks.
func (w *world) rotatorCLI(args ...string) runResult {
	w.t.Helper()
	res := runCommand(w.t, w.env, rotatorBinary, args...)
	command := "rotator " + strings.Join(args, " ")
	w.collect(command+" stdout", res.stdout)
	w.collect(command+" stderr", res.stderr)
	return res
}

func (w *world) ctx() context.Context {
	ctx, cancel := context.WithTimeout(w.t.Context(), runDeadline)
	w.t.Cleanup(cancel)
	return ctx
}

// invocationLog records each rotation step Secrets Manager invokes and its
// result.
type invocationLog struct {
	mu       sync.Mutex
	steps    []invocation
	inFlight int
}

type invocation struct {
	step string
	err  error
}

// wrap returns an Invoker that records every invocation made through next.
func (l *invocationLog) wrap(next smtest.Invoker) smtest.Invoker {
	return smtest.InvokerFunc(func(ctx context.Context, arn string, ev events.SecretsManagerSecretRotationEvent) error {
		l.mu.Lock()
		l.inFlight++
		l.mu.Unlock()
		err := next.Invoke(ctx, arn, ev)
		l.mu.Lock()
		l.inFlight--
		l.steps = append(l.steps, invocation{step: ev.Step, err: err})
		l.mu.Unlock()
		return err
	})
}

// idle reports whether no invocation is running.
func (l *invocationLog) idle() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inFlight == 0
}

// list returns the invocations that have returned so far.
func (l *invocationLog) list() []invocation {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.steps)
}

// succeeded returns the steps that succeeded, in order.
func (l *invocationLog) succeeded() []string {
	var steps []string
	for _, inv := range l.list() {
		if inv.err == nil {
			steps = append(steps, inv.step)
		}
	}
	return steps
}

func (l *invocationLog) String() string {
	var b strings.Builder
	for _, inv := range l.list() {
		b.WriteString("  " + inv.step)
		if inv.err != nil {
			b.WriteString(": " + inv.err.Error())
		}
		b.WriteString("\n")
	}
	return b.String()
}
