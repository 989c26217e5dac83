package upstream

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/keyturn/keyturn/keystore"
)

// call is one client request, across its attempts.
type call struct {
	req    Request
	client *http.Request
	// body is the client's body with the upstream model, to send.
	body outgoingBody
	// versions is the secret's, set once its keys are read.
	versions *secretVersions
	outcome  Outcome
}

// stripUsage reports whether the response's stream must lose the usage
// that the client did not ask for.
func (c *call) stripUsage() bool {
	return c.req.Endpoint == ChatCompletions && c.req.Body.stream && !c.req.Body.includeUsage
}

// candidate is a version to try, at the stage the cache serves it.
type candidate struct {
	version *version
	stage   string
}

// Serve sends the client's request r upstream as req describes and writes
// the response to w. It reads r's headers and context, not its body: the
// body is req.Body, which ParseBody has checked. When the client goes
// away, the upstream request is cancelled. Serve writes every error
// itself, in OpenAI's error shape.
func (p *Proxy) Serve(w http.ResponseWriter, r *http.Request, req Request) {
	start := p.now()
	// The router's own recorder is reused, so that one recorder serves
	// each request.
	sw, ok := w.(*StatusRecorder)
	if !ok {
		sw = &StatusRecorder{ResponseWriter: w}
	}
	c := &call{req: req, client: r, outcome: Outcome{SecretID: req.SecretID, Endpoint: req.Endpoint}}
	defer p.finish(c, sw, start)

	if !p.prepare(sw, c) {
		return
	}
	keys, ok := p.getKeys(sw, c)
	if !ok {
		return
	}
	versions := p.versionsOf(req.SecretID)
	c.versions = versions
	first := p.firstChoice(versions, keys)
	tried := p.try(sw, c, first)
	if tried == nil || !tried.rejected {
		return
	}
	p.retry(sw, c, versions, keys, tried)
}

// prepare checks the request and rewrites its body, or writes the client's
// error.
func (p *Proxy) prepare(w http.ResponseWriter, c *call) bool {
	switch c.req.Endpoint {
	case ChatCompletions, Responses, Embeddings:
	default:
		p.log.Error("upstream request without a known endpoint", "endpoint", int(c.req.Endpoint), "secret", c.req.SecretID)
		WriteError(w, http.StatusInternalServerError, codeInternal, "keyturn has no upstream endpoint for this request")
		return false
	}
	if err := CheckContentEncoding(c.client.Header); err != nil {
		w.Header().Set("Accept-Encoding", "identity")
		WriteError(w, http.StatusUnsupportedMediaType, codeUnsupportedEncoding, err.Error())
		return false
	}
	if c.req.Body.model == "" || c.req.Model == "" {
		p.log.Error("upstream request without a parsed body or an upstream model", "secret", c.req.SecretID)
		WriteError(w, http.StatusInternalServerError, codeInternal, "keyturn has no request body or model to send upstream")
		return false
	}
	c.body = c.req.Body.withModel(c.req.Model)
	return true
}

// getKeys reads the secret's keys from the key source, or writes the
// client's error. The store's error goes to the log only, because it may name
// file paths and accounts that the client must not see.
func (p *Proxy) getKeys(w http.ResponseWriter, c *call) (keystore.Keys, bool) {
	id := c.req.SecretID
	keys, err := p.keys.Get(c.client.Context(), id)
	if err == nil && keys.Current.VersionID == "" {
		err = fmt.Errorf("secret %q has no AWSCURRENT version", id)
	}
	if err == nil {
		return keys, true
	}
	if errors.Is(c.client.Context().Err(), context.Canceled) {
		return keystore.Keys{}, false
	}
	p.log.Error("reading the key of a provider secret failed", "secret", id, "error", err)
	status, msg := http.StatusBadGateway, fmt.Sprintf(
		"keyturn could not read the key of secret %q: the router's log has the cause: "+
			"stage a key with 'rotator stage %s --file KEYFILE --validate' and run 'rotator rotate-now %s' if it has none",
		id, id, id)
	if errors.Is(err, keystore.ErrUnavailable) {
		status, msg = http.StatusServiceUnavailable, fmt.Sprintf(
			"keyturn could not read the key of secret %q because the key store is unavailable: retry later", id)
	}
	WriteError(w, status, codeKeyUnavailable, msg)
	return keystore.Keys{}, false
}

// firstChoice returns AWSCURRENT, unless servesPrevious picks AWSPREVIOUS.
func (p *Proxy) firstChoice(s *secretVersions, keys keystore.Keys) candidate {
	currentVersion, previousVersion := p.resolve(s, keys)
	if !servesPrevious(currentVersion, previousVersion, p.now()) {
		return candidate{currentVersion, keystore.StageCurrent}
	}
	cooldown := currentVersion.cooldownUntil.Load()
	if currentVersion.fallbackLogged.Swap(cooldown) != cooldown {
		p.log.Warn("serving AWSPREVIOUS while the provider rejects AWSCURRENT",
			"secret", keys.Current.SecretID, "version", previousVersion.id, "stage", keystore.StagePrevious,
			"rejected_version", currentVersion.id, "until", time.Unix(0, cooldown).UTC())
	}
	return candidate{previousVersion, keystore.StagePrevious}
}

// try sends one attempt with cand's key. It returns nil when it wrote an
// error to the client without calling the provider. Only an attempt that
// reached the provider sets the outcome's version and marks it Upstream.
func (p *Proxy) try(w http.ResponseWriter, c *call, cand candidate) *attempt {
	v := cand.version
	if v.unusable != nil {
		p.logUnusable(v, cand.stage)
		WriteError(w, http.StatusBadGateway, codeMisconfigured, v.unusable.Error())
		return nil
	}
	target, ok := endpointURL(v, c.req.Endpoint)
	if !ok {
		WriteError(w, http.StatusBadRequest, codeUnsupportedEndpoint, unsupportedEndpoint(c.req.Body.model, v.adapter, c.req.Endpoint))
		return nil
	}

	a := &attempt{call: c, version: v, stage: cand.stage, target: target}
	out := c.client.WithContext(context.WithValue(c.client.Context(), attemptKey{}, a))
	// The reverse proxy would forward out's body; rewrite sets the body.
	out.Body, out.ContentLength = http.NoBody, 0
	p.proxy.ServeHTTP(w, out)
	p.record(c, a)
	return a
}

// record adds an attempt to the call's outcome and the secret's health.
// An attempt whose connection the host policy refused sent nothing, so it
// leaves the outcome as it was.
func (p *Proxy) record(c *call, a *attempt) {
	if a.refused {
		return
	}
	v := a.version
	o := &c.outcome
	o.Upstream = true
	o.Attempts++
	o.VersionID, o.Stage, o.Provider = v.id, a.stage, v.adapter
	switch {
	case a.rejected:
		o.Rejected++
		now := p.now()
		v.startCooldown(now, p.cooldown)
		c.versions.recordRejected(now)
	case a.status != 0:
		// The provider took the key, so any cooldown from an earlier
		// rejection of this version is over.
		v.endCooldown()
		c.versions.recordAccepted()
	}
}

// logUnusable logs why a version cannot serve, with the base URL's host
// and the reason that the client's message leaves out.
func (p *Proxy) logUnusable(v *version, stage string) {
	u := v.unusable
	attrs := []any{"secret", v.secretID, "version", v.id, "stage", stage, "reason", u.Reason, "error", u.Error()}
	if u.Detail != "" {
		attrs = append(attrs, "host", u.Host, "detail", u.Detail)
	}
	p.log.Error("a provider secret's version cannot be used", attrs...)
}

// retry follows an attempt whose key was rejected. It refreshes the
// secret, within the bound of refreshGate, and tries once more with a
// newer AWSCURRENT, or else with AWSPREVIOUS. It writes a 502 when no
// other version is left or the provider rejects that key too.
func (p *Proxy) retry(w http.ResponseWriter, c *call, s *secretVersions, keys keystore.Keys, first *attempt) {
	keys = p.refresh(c, s, keys)
	p.logRejected(first, keys)
	next, ok := p.retryChoice(s, keys, first.version.id)
	if !ok {
		p.writeRejected(w, first, nil)
		return
	}
	if next.stage == keystore.StagePrevious {
		p.log.Warn("retrying with AWSPREVIOUS after the provider rejected a key",
			"secret", c.req.SecretID, "version", next.version.id, "stage", next.stage, "rejected_version", first.version.id)
	}
	second := p.try(w, c, next)
	c.outcome.Retried = second != nil && !second.refused
	if second != nil && second.rejected {
		p.logRejected(second, keys)
		p.writeRejected(w, first, second)
	}
}

// logRejected warns that the provider rejected a's key. keys are the
// secret's keys as read after the rejection. The line names the stage
// that the version had when the request read its keys. When keys show
// that it has moved since, as a rotation moves AWSCURRENT to AWSPREVIOUS,
// the line also names its stage now.
//
// The warning is logged at most once per version per cooldown, because
// every request in flight with a key when the provider revokes it is
// rejected. Repeats go to DEBUG, and the next warning counts them.
func (p *Proxy) logRejected(a *attempt, keys keystore.Keys) {
	v := a.version
	attrs := []any{"secret", v.secretID, "version", v.id, "stage", a.stage}
	if stageNow := stageOf(keys, v.id); stageNow != a.stage {
		// A rotation moved the version on, and the provider revoked its
		// key before this router read the rotation: the request is retried
		// with the newer key, but the grace is too short for this router.
		attrs = append(attrs, "stage_now", stageNow,
			"hint", "the key was revoked before this router read the rotation: keep keyturn:grace longer than the router's cache refresh")
	}
	attrs = append(attrs, "provider", v.adapter, "host", a.target.Host, "status", a.status, "cooldown", p.cooldown)
	now := p.now().UnixNano()
	after := v.rejectWarnAfter.Load()
	if now < after || !v.rejectWarnAfter.CompareAndSwap(after, now+int64(p.cooldown)) {
		v.rejectsUnwarned.Add(1)
		p.log.Debug("provider rejected the key of a provider secret again", attrs...)
		return
	}
	if n := v.rejectsUnwarned.Swap(0); n > 0 {
		attrs = append(attrs, "repeats_logged_at_debug", n)
	}
	p.log.Warn("provider rejected the key of a provider secret", attrs...)
}

// stageOf returns the stage of version id in keys: AWSCURRENT,
// AWSPREVIOUS, or "none" when keys serve it at neither.
func stageOf(keys keystore.Keys, id string) string {
	switch id {
	case keys.Current.VersionID:
		return keystore.StageCurrent
	case keys.Previous.VersionID:
		return keystore.StagePrevious
	}
	return "none"
}

// retryChoice returns the version to retry with after triedID was
// rejected: AWSCURRENT if it is another version, else AWSPREVIOUS if the
// secret has one and it is another version.
func (p *Proxy) retryChoice(s *secretVersions, keys keystore.Keys, triedID string) (candidate, bool) {
	current, previous := p.resolve(s, keys)
	if current.id != triedID {
		return candidate{current, keystore.StageCurrent}, true
	}
	if previous != nil && previous.id != triedID {
		return candidate{previous, keystore.StagePrevious}, true
	}
	return candidate{}, false
}

// writeRejected writes the error of a request for which the provider rejected every
// key tried. It never passes the provider's body on: that may quote part of
// the key, and the client can do nothing about it.
func (p *Proxy) writeRejected(w http.ResponseWriter, first, second *attempt) {
	if errors.Is(first.call.client.Context().Err(), context.Canceled) {
		return
	}
	first.call.versions.recordNoWorkingKey()
	v := first.version
	tried := fmt.Sprintf("version %s (%s)", v.id, first.stage)
	if second != nil {
		tried += fmt.Sprintf(" and version %s (%s)", second.version.id, second.stage)
	}
	WriteError(w, http.StatusBadGateway, codeKeyRejected, fmt.Sprintf(
		"the provider rejected the key of secret %q, %s: "+
			"rotate the secret, or stage a working key with 'rotator stage %s --file KEYFILE --validate' and run 'rotator rotate-now %s'",
		v.secretID, tried, v.secretID, v.secretID))
}

// finish completes the outcome and reports it. It runs also when the
// reverse proxy aborts a response whose stream broke.
func (p *Proxy) finish(c *call, w *StatusRecorder, start time.Time) {
	c.outcome.Status = w.Status(c.client)
	now := p.now()
	c.outcome.Duration = now.Sub(start)
	if c.outcome.Upstream {
		c.versions.recordOutcome(c.outcome.Status, now)
	}
	if p.observe != nil {
		p.observe(c.client, c.outcome)
	}
}
