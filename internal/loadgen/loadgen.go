// Package loadgen sends steady chat traffic to keyturn's router and checks
// every response in full, so that end-to-end tests and benchmarks can count
// the requests a rotation failed. It paces requests on an open loop: a slow
// response does not hold back the next request, as with real clients.
//
// Each request sends a message for the stand-in provider to echo, which
// carries the request's sequence number ("load 17"), so a response is
// correct only if it echoes exactly that message. MessageSeq reads the
// number back from an upstream request body.
package loadgen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// Defaults of Options.
const (
	DefaultRate        = 50
	DefaultTimeout     = 30 * time.Second
	DefaultMaxInFlight = 500
)

// Options configure a Generator.
type Options struct {
	// URL is the router's root URL, such as http://127.0.0.1:8080.
	// Requests go to URL + "/v1/chat/completions". Required.
	URL string
	// Key is the router client key sent as the bearer token. Required.
	Key keystore.Secret
	// Model is the public model name of the requests. Required.
	Model string
	// Rate is the number of requests started per second. Zero is
	// DefaultRate.
	Rate float64
	// StreamEvery makes every StreamEvery-th request a streamed one:
	// 1 streams all of them, 2 every other one. Zero streams none.
	StreamEvery int
	// Timeout bounds each request, body included. Zero is DefaultTimeout.
	Timeout time.Duration
	// MaxInFlight caps the requests in flight. A request due while the cap
	// is reached waits for a slot, so the achieved rate drops and Report
	// shows it. Zero is DefaultMaxInFlight.
	MaxInFlight int
	// Client sends the requests. Nil is a client that takes no proxy from
	// the environment.
	Client *http.Client
}

// Result is the outcome of one request.
type Result struct {
	Seq    int
	Stream bool
	Start  time.Time
	End    time.Time
	// Status is the HTTP status of the response, 0 if none arrived.
	Status int
	// Err is nil when the response was complete and echoed the request's
	// message. It never contains a key: the router's error bodies name
	// secrets, never their values.
	Err error
}

// Generator sends requests until Stop.
type Generator struct {
	opts   Options
	client *http.Client
	// ownClient is set when the Generator made client, and so closes its
	// idle connections at Stop.
	ownClient bool
	cancel    context.CancelFunc
	done      chan struct{}
	slots     chan struct{}
	wg        sync.WaitGroup

	mu      sync.Mutex
	results []Result
	started time.Time
	stopped time.Time
}

// Start checks opts and starts sending requests at once.
func Start(opts Options) (*Generator, error) {
	if err := opts.fill(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Generator{
		opts: opts, client: opts.Client, cancel: cancel,
		done: make(chan struct{}), slots: make(chan struct{}, opts.MaxInFlight),
		started: time.Now(),
	}
	if g.client == nil {
		g.client = &http.Client{Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: opts.MaxInFlight}}
		g.ownClient = true
	}
	go g.pace(ctx)
	return g, nil
}

func (o *Options) fill() error {
	switch {
	case o.URL == "":
		return errors.New("loadgen: no router URL: set Options.URL, such as http://127.0.0.1:8080")
	case o.Key.Len() == 0:
		return errors.New("loadgen: no client key: set Options.Key to a router client key")
	case o.Model == "":
		return errors.New("loadgen: no model: set Options.Model to a public model name of the router")
	case o.Rate < 0 || o.StreamEvery < 0 || o.Timeout < 0 || o.MaxInFlight < 0:
		return fmt.Errorf("loadgen: negative option (rate %v, stream every %d, timeout %s, max in flight %d): use 0 for the default",
			o.Rate, o.StreamEvery, o.Timeout, o.MaxInFlight)
	}
	if o.Rate == 0 {
		o.Rate = DefaultRate
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = DefaultMaxInFlight
	}
	return nil
}

// pace starts one request per tick until ctx ends.
func (g *Generator) pace(ctx context.Context) {
	defer close(g.done)
	ticker := time.NewTicker(time.Duration(float64(time.Second) / g.opts.Rate))
	defer ticker.Stop()
	for seq := 0; ; seq++ {
		select {
		case g.slots <- struct{}{}:
		case <-ctx.Done():
			return
		}
		g.wg.Add(1)
		go g.send(seq)
		select {
		case <-ticker.C:
		case <-ctx.Done():
			return
		}
	}
}

func (g *Generator) send(seq int) {
	defer g.wg.Done()
	defer func() { <-g.slots }()
	stream := g.opts.StreamEvery > 0 && seq%g.opts.StreamEvery == 0
	r := Result{Seq: seq, Stream: stream, Start: time.Now()}
	// Requests in flight at Stop run to their end: Stop waits for them
	// rather than cutting them, which would count as failures.
	ctx, cancel := context.WithTimeout(context.Background(), g.opts.Timeout)
	defer cancel()
	r.Status, r.Err = g.do(ctx, seq, stream)
	r.End = time.Now()
	g.mu.Lock()
	g.results = append(g.results, r)
	g.mu.Unlock()
}

// Sent returns the number of requests that have ended so far.
func (g *Generator) Sent() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.results)
}

// Failures returns the failed requests so far, in the order they ended.
func (g *Generator) Failures() []Result {
	g.mu.Lock()
	defer g.mu.Unlock()
	return failed(g.results)
}

// Stop starts no more requests, waits for those in flight to end, and
// returns the report. Calling it again returns the same report.
func (g *Generator) Stop() *Report {
	g.cancel()
	<-g.done
	g.wg.Wait()
	if g.ownClient {
		g.client.CloseIdleConnections()
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped.IsZero() {
		g.stopped = time.Now()
	}
	return newReport(g.results, g.started, g.stopped)
}
