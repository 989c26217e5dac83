package router

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyturn/keyturn/internal/clientkeys"
	"github.com/keyturn/keyturn/internal/reread"
	"github.com/keyturn/keyturn/keystore"
)

// clientSet is the parsed client list of one version of the clients
// secret.
type clientSet struct {
	versionID string
	index     *clientkeys.Index
	err       error // why the version could not be parsed
}

// authenticator checks client keys against the clients secret, which it
// reads through the keystore cache on every request, so that a revoked
// client takes effect at the cache's next refresh. A new client takes
// effect at once: a kt- key that the cached list lacks forces a re-read of
// the secret, rate-limited by reread.
type authenticator struct {
	keys     Keys
	secretID string
	log      *slog.Logger
	reread   *reread.Gate[struct{}]

	// set is the parsed list of the last version seen; a request parses
	// the list again only when the cache serves a new version.
	set   atomic.Pointer[clientSet]
	parse sync.Mutex // serializes parsing a new version
}

func newAuthenticator(keys Keys, secretID string, interval time.Duration, log *slog.Logger) *authenticator {
	if interval <= 0 {
		interval = DefaultRereadInterval
	}
	read := func(ctx context.Context) struct{} {
		// A failed read leaves the cached list in place, and the cache
		// logs the failure.
		_, _ = keys.Refresh(ctx, secretID)
		return struct{}{}
	}
	return &authenticator{keys: keys, secretID: secretID, log: log,
		reread: reread.New(interval, rereadTimeout, read)}
}

// authError is a request the router rejects before it reaches a provider.
type authError struct {
	status  int
	code    string
	message string
	// retryAfter is the Retry-After header of a 429, in seconds.
	retryAfter int
	// reason words a 401 for the access log, such as "disabled".
	reason string
}

// Reasons of a 401 in the access log.
const (
	reasonNoKey      = "no key"
	reasonBadHeader  = "malformed authorization header"
	reasonUnknownKey = "unknown key"
	reasonDisabled   = "disabled"
	reasonNoClients  = "no clients secret"
)

func (e *authError) write(w http.ResponseWriter) {
	if e.status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="keyturn"`)
	}
	if e.retryAfter > 0 {
		w.Header().Set("Retry-After", fmt.Sprint(e.retryAfter))
	}
	writeError(w, e.status, e.code, e.message)
}

const (
	codeInvalidKey      = "invalid_api_key"
	codeClientsMissing  = "no_client_keys"
	codeClientsReadFail = "clients_unavailable"
)

func unauthorized(reason, code, format string, args ...any) *authError {
	return &authError{status: http.StatusUnauthorized, code: code, reason: reason, message: fmt.Sprintf(format, args...)}
}

// authenticate returns the client whose key r carries. A disabled
// client's key fails, but its client is returned with the error, for the
// access log.
func (a *authenticator) authenticate(ctx context.Context, r *http.Request) (clientkeys.Client, *authError) {
	key, aerr := presentedKey(r)
	if aerr != nil {
		return clientkeys.Client{}, aerr
	}
	c, aerr := a.lookup(ctx, key)
	if aerr != nil {
		return clientkeys.Client{}, aerr
	}
	if c.Disabled {
		return c, unauthorized(reasonDisabled, codeInvalidKey,
			"client key of %s (%s) is disabled: ask the router's operator to enable it or to issue a new one", c.Name, c.ID)
	}
	return c, nil
}

// lookup returns the client of key. A kt- key that the cached client list
// lacks may belong to a client added since the cache last read the
// secret, so lookup re-reads it once before rejecting the key. A secret
// that does not exist yet is re-read the same way, since adding the first
// client creates it.
func (a *authenticator) lookup(ctx context.Context, key string) (clientkeys.Client, *authError) {
	c, ok, aerr := a.find(ctx, key)
	unknown := (aerr == nil && !ok) || (aerr != nil && aerr.code == codeClientsMissing)
	if unknown && strings.HasPrefix(key, clientkeys.Prefix) && a.rereadClients(ctx) {
		c, ok, aerr = a.find(ctx, key)
	}
	if aerr != nil {
		return clientkeys.Client{}, aerr
	}
	if !ok {
		return clientkeys.Client{}, unauthorized(reasonUnknownKey, codeInvalidKey,
			"invalid client key: the key is not one of this router's client keys: check the key, or ask the operator for one ('rotator client add NAME')")
	}
	return c, nil
}

// rereadClients waits for a forced read of the clients secret that starts
// after the call, and reports whether one ended in time.
func (a *authenticator) rereadClients(ctx context.Context) bool {
	_, ok := a.reread.Wait(ctx, rereadMaxWait)
	return ok
}

// find looks key up in the cached client list.
func (a *authenticator) find(ctx context.Context, key string) (clientkeys.Client, bool, *authError) {
	set, aerr := a.clients(ctx)
	if aerr != nil {
		return clientkeys.Client{}, false, aerr
	}
	c, ok := set.index.Lookup(key)
	return c, ok, nil
}

// presentedKey returns the client key of r: from Authorization: Bearer,
// as OpenAI's SDKs send it, or else from x-api-key, as Anthropic's do.
// The key itself never appears in a message.
func presentedKey(r *http.Request) (string, *authError) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, key, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(key) == "" {
			return "", unauthorized(reasonBadHeader, codeInvalidKey,
				"invalid Authorization header: send 'Authorization: Bearer %sYOUR_KEY'", clientkeys.Prefix)
		}
		return strings.TrimSpace(key), nil
	}
	if key := strings.TrimSpace(r.Header.Get("X-Api-Key")); key != "" {
		return key, nil
	}
	return "", unauthorized(reasonNoKey, codeInvalidKey,
		"missing client key: send 'Authorization: Bearer %sYOUR_KEY'; the router's operator issues keys with 'rotator client add NAME'", clientkeys.Prefix)
}

// clients returns the parsed client list of the clients secret's current
// version.
func (a *authenticator) clients(ctx context.Context) (*clientSet, *authError) {
	keys, err := a.keys.Get(ctx, a.secretID)
	if err != nil {
		return nil, a.readError(err)
	}
	set := a.setFor(keys.Current)
	if set.err != nil {
		return nil, &authError{status: http.StatusServiceUnavailable, code: codeClientsReadFail,
			message: fmt.Sprintf("the router cannot check client keys: its clients secret %s version %s is invalid, and the router's log has the cause",
				a.secretID, set.versionID)}
	}
	return set, nil
}

// setFor returns the parsed client list of v, parsing it on first use.
func (a *authenticator) setFor(v keystore.Version) *clientSet {
	if set := a.set.Load(); set != nil && set.versionID == v.VersionID {
		return set
	}
	return a.parseVersion(v)
}

func (a *authenticator) parseVersion(v keystore.Version) *clientSet {
	a.parse.Lock()
	defer a.parse.Unlock()
	if set := a.set.Load(); set != nil && set.versionID == v.VersionID {
		return set
	}
	set := &clientSet{versionID: v.VersionID}
	list, err := clientkeys.Parse([]byte(v.Value.Reveal()))
	if err != nil {
		set.err = err
		a.log.Error("invalid clients secret: every request is rejected until it is fixed",
			"secret", a.secretID, "version_id", v.VersionID, "error", err)
	} else {
		set.index = clientkeys.NewIndex(list)
		a.log.Info("client keys loaded", "secret", a.secretID, "version_id", v.VersionID, "clients", len(list.Clients))
	}
	a.set.Store(set)
	return set
}

// readError words a failed read of the clients secret. A read past the
// cache's max_stale fails with ErrUnavailable wrapping the store's last
// error, which may be a not-found (a store that vanished), so the outage
// is checked first: the router cannot tell that the secret is gone.
func (a *authenticator) readError(err error) *authError {
	if !errors.Is(err, keystore.ErrUnavailable) && errors.Is(err, keystore.ErrNotFound) {
		return unauthorized(reasonNoClients, codeClientsMissing,
			"this router has no client keys yet: its operator creates one with 'rotator client add NAME' (in secret %s)", a.secretID)
	}
	// The cache logs the failed fetch itself, once per fetch rather than
	// once per request.
	return &authError{status: http.StatusServiceUnavailable, code: codeClientsReadFail,
		message: fmt.Sprintf("the router cannot read its clients secret %s: retry later", a.secretID)}
}
