// Package smtest is an in-memory AWS Secrets Manager for tests. It speaks the
// service's JSON 1.1 protocol, so the real aws-sdk-go-v2 client talks to it
// unchanged, and it follows Secrets Manager's rules for versions, staging
// labels, rotation and errors. RotateSecret invokes a rotation function
// through an Invoker, asynchronously as AWS does; WaitRotation and Rotations
// let a test observe the outcome.
//
// The server keeps everything in memory and checks no credentials. It is
// meant for tests and for keyturn's loopback development setup.
package smtest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/google/uuid"
)

// Defaults for the server's identity and its rotation retries.
const (
	DefaultRegion     = "us-east-1"
	DefaultAccountID  = "123456789012"
	DefaultRetryDelay = 10 * time.Millisecond
)

const maxBodyBytes = 1 << 20

// Options configure a Server. The zero Options are usable.
type Options struct {
	// Invoker runs the rotation function. Nil invokes nothing, so a rotation
	// leaves the empty AWSPENDING version that RotateSecret created.
	Invoker Invoker
	// Logger receives one debug record per request and info records for
	// rotations. Nil discards them. No record holds a secret value.
	Logger *slog.Logger
	// RetryAttempts is how many more times a failed rotation runs its four
	// steps again while the version still holds AWSPENDING. Zero means 1;
	// a negative value disables retries. AWS documents no count.
	RetryAttempts int
	// RetryDelay is the pause before each retry; zero means DefaultRetryDelay.
	RetryDelay time.Duration
	// Region and AccountID go into ARNs; empty means DefaultRegion and
	// DefaultAccountID.
	Region    string
	AccountID string
	// Now returns the current time: the creation time of versions, which
	// pruning keeps for 24 hours, and the time NextRotationDate is counted
	// against. Nil means time.Now.
	Now func() time.Time
}

// Server is an in-memory Secrets Manager. It is an http.Handler; Start runs
// it on a loopback listener for a test. Its methods are safe for concurrent
// use.
type Server struct {
	opts Options
	log  *slog.Logger

	mu        sync.Mutex
	secrets   map[string]*secret // by name
	failures  []*failure
	rotations map[string][]*run // by secret name, oldest first

	ctx    context.Context // cancelled by Close, ends running rotations
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New returns a Server with no secrets.
func New(opts Options) *Server {
	if opts.Region == "" {
		opts.Region = DefaultRegion
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.RetryDelay == 0 {
		opts.RetryDelay = DefaultRetryDelay
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Invoker == nil {
		opts.Invoker = InvokerFunc(func(context.Context, string, events.SecretsManagerSecretRotationEvent) error { return nil })
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Server{
		opts: opts, log: log,
		secrets:   map[string]*secret{},
		rotations: map[string][]*run{},
		ctx:       ctx, cancel: cancel,
	}
}

// TB is the part of testing.TB that Start and TestConfig use. Taking it
// rather than testing.TB keeps package testing out of the programs that
// import smtest to serve it outside tests.
type TB interface {
	Helper()
	Cleanup(func())
	Fatalf(format string, args ...any)
}

// Start runs a new Server on an httptest server on 127.0.0.1 and returns
// it with its URL. Both are closed when the test ends.
func Start(t TB, opts Options) (*Server, string) {
	t.Helper()
	srv := New(opts)
	hs := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		hs.Close()
	})
	return srv, hs.URL
}

// Close cancels running rotations and waits for them to end. The server
// still serves requests afterwards, but starts no more rotations.
func (s *Server) Close() {
	s.cancel()
	s.wg.Wait()
}

// TestConfig returns an aws.Config for the server at url: static
// credentials, DefaultRegion, and a retryer with millisecond backoff and no
// retry quota, so tests that inject failures stay fast. It also sets
// AWS_EC2_METADATA_DISABLED=true for the whole process, so that no SDK
// client built from the environment reaches for the instance metadata
// address.
func TestConfig(t TB, url string) aws.Config {
	t.Helper()
	// os.Setenv rather than t.Setenv: t.Setenv panics in parallel tests,
	// and the value is right for every test in the process.
	if err := os.Setenv("AWS_EC2_METADATA_DISABLED", "true"); err != nil {
		t.Fatalf("smtest: set AWS_EC2_METADATA_DISABLED: %v", err)
	}
	return aws.Config{
		Region:       DefaultRegion,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDSMTEST", "smtest-secret-key", ""),
		BaseEndpoint: aws.String(url),
		Retryer: func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) {
				o.MaxBackoff = 5 * time.Millisecond
				o.RateLimiter = ratelimit.None
			})
		},
	}
}

type handler func(s *Server, body []byte) (any, *apiError)

// decode adapts an operation to a handler that decodes its JSON request.
func decode[In any](op func(*Server, *In) (any, *apiError)) handler {
	return func(s *Server, body []byte) (any, *apiError) {
		in := new(In)
		if len(body) > 0 {
			if err := json.Unmarshal(body, in); err != nil {
				return nil, newError(TypeSerialization, "The request body is not valid JSON for this operation: %v", err)
			}
		}
		return op(s, in)
	}
}

var handlers = map[string]handler{
	"CreateSecret":             decode((*Server).createSecret),
	"DescribeSecret":           decode((*Server).describeSecret),
	"ListSecrets":              decode((*Server).listSecrets),
	"ListSecretVersionIds":     decode((*Server).listSecretVersionIds),
	"DeleteSecret":             decode((*Server).deleteSecret),
	"RestoreSecret":            decode((*Server).restoreSecret),
	"TagResource":              decode((*Server).tagResource),
	"UntagResource":            decode((*Server).untagResource),
	"GetSecretValue":           decode((*Server).getSecretValue),
	"BatchGetSecretValue":      decode((*Server).batchGetSecretValue),
	"PutSecretValue":           decode((*Server).putSecretValue),
	"UpdateSecretVersionStage": decode((*Server).updateSecretVersionStage),
	"RotateSecret":             decode((*Server).rotateSecret),
	"CancelRotateSecret":       decode((*Server).cancelRotateSecret),
}

// ServeHTTP serves one Secrets Manager request: POST / with the operation
// in X-Amz-Target ("secretsmanager.GetSecretValue").
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "secretsmanager.")
	out, aerr := s.serve(op, r)
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-Requestid", uuid.NewString())
	if aerr != nil {
		s.log.Debug("smtest request failed", "op", op, "type", aerr.typ, "message", aerr.msg)
		w.WriteHeader(aerr.status)
		_ = json.NewEncoder(w).Encode(map[string]string{"__type": aerr.typ, "message": aerr.msg})
		return
	}
	s.log.Debug("smtest request", "op", op)
	if out == nil {
		out = struct{}{}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) serve(op string, r *http.Request) (any, *apiError) {
	if r.Method != http.MethodPost {
		return nil, newError(TypeUnknownOperation, "Secrets Manager takes POST requests, not %s.", r.Method)
	}
	h, ok := handlers[op]
	if !ok {
		return nil, newError(TypeUnknownOperation, "Unknown operation %q in X-Amz-Target.", op)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	if err != nil {
		return nil, newError(TypeSerialization, "Reading the request body failed: %v", err)
	}
	if len(body) > maxBodyBytes {
		return nil, newError(TypeInvalidParameter, "The request body is larger than %d bytes.", maxBodyBytes)
	}
	if aerr := s.injected(op); aerr != nil {
		return nil, aerr
	}
	return h(s, body)
}

// failure is an injected error for the next calls of an operation.
type failure struct {
	op        string // "" matches every operation
	typ       string
	remaining int // negative: until ClearFailures
}

// FailNext makes the next call of op fail with error type typ, such as
// TypeInternal (HTTP 500) or TypeThrottling. An empty op matches any
// operation. The SDK retries such errors, so one injected failure tests a
// retry and Fail with a negative count tests an unavailable store.
func (s *Server) FailNext(op, typ string) { s.Fail(op, typ, 1) }

// Fail makes the next n calls of op fail with error type typ; a negative n
// fails every call until ClearFailures.
func (s *Server) Fail(op, typ string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, &failure{op: op, typ: typ, remaining: n})
}

// ClearFailures removes every injected failure.
func (s *Server) ClearFailures() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = nil
}

func (s *Server) injected(op string) *apiError {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.failures {
		if f.remaining == 0 || (f.op != "" && f.op != op) {
			continue
		}
		if f.remaining > 0 {
			f.remaining--
		}
		return newError(f.typ, "smtest injected a %s failure into %s.", f.typ, op)
	}
	return nil
}

// lookup finds a secret by name or ARN, including one scheduled for
// deletion. The caller holds s.mu.
func (s *Server) lookup(id string) (*secret, *apiError) {
	if id == "" {
		return nil, errInvalidParameter("SecretId is required.")
	}
	if sec := s.secrets[id]; sec != nil {
		return sec, nil
	}
	if strings.HasPrefix(id, "arn:") {
		for _, sec := range s.secrets {
			// A partial ARN leaves out the six-character suffix.
			if sec.arn == id || sec.arn[:len(sec.arn)-7] == id {
				return sec, nil
			}
		}
	}
	return nil, errSecretNotFound()
}

// live finds a secret that is not scheduled for deletion. The caller holds
// s.mu.
func (s *Server) live(id string) (*secret, *apiError) {
	sec, err := s.lookup(id)
	if err != nil {
		return nil, err
	}
	if !sec.deleted.IsZero() {
		return nil, errMarkedForDeletion()
	}
	return sec, nil
}

func (s *Server) now() time.Time { return s.opts.Now().UTC() }
