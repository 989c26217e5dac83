package smtest

import (
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/keyturn/keyturn/internal/schedule"
	"github.com/keyturn/keyturn/keystore"
)

// maxRotationDays is the largest AutomaticallyAfterDays that the API
// reference for RotationRulesType allows.
const maxRotationDays = 1000

// rotateSecret stores any rotation configuration given, creates the empty
// AWSPENDING version under the token and starts the rotation function
// asynchronously. It returns the new version's id.
func (s *Server) rotateSecret(in *rotateIn) (any, *apiError) {
	if err := checkToken(in.ClientRequestToken); err != nil {
		return nil, err
	}
	var sched *schedule.Schedule
	if in.RotationRules != nil {
		var err *apiError
		if sched, err = parseRules(in.RotationRules); err != nil {
			return nil, err
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(in.SecretId)
	if err != nil {
		return nil, err
	}
	if v := sec.versions[in.ClientRequestToken]; v != nil {
		return s.rotateAgain(sec, v)
	}
	lambda := in.RotationLambdaARN
	if lambda == "" {
		lambda = sec.lambdaARN
	}
	if lambda == "" {
		return nil, newError(TypeInvalidRequest, "You tried to enable rotation on a secret that doesn't "+
			"already have a Lambda function ARN configured and you didn't include such an ARN as a parameter in this call.")
	}
	if sec.rotationPending() {
		return nil, errRotationInProgress()
	}

	s.configureRotation(sec, lambda, in.RotationRules, sched)
	token := in.ClientRequestToken
	if token == "" {
		token = uuid.NewString()
	}
	if stale := sec.holder(stagePending); stale != nil {
		stale.remove(stagePending) // it is on the AWSCURRENT version: that rotation is complete
	}
	// NOTE: the service model lists no LimitExceededException for
	// RotateSecret, so the test server prunes what it can and then adds the
	// AWSPENDING version even past maxVersions. What AWS does here is not
	// documented.
	sec.makeRoom(s.now())
	sec.addVersion(&version{id: token, stages: []string{stagePending}, created: s.now()})
	test := in.RotateImmediately != nil && !*in.RotateImmediately
	s.startRun(sec, token, lambda, test)
	return nameOut{ARN: sec.arn, Name: sec.name, VersionId: token}, nil
}

// rotateAgain handles a RotateSecret whose token names an existing version.
// A retry of the call that started the rotation in progress succeeds
// without starting another. The caller holds s.mu.
func (s *Server) rotateAgain(sec *secret, v *version) (any, *apiError) {
	if v.has(stagePending) && !v.has(stageCurrent) {
		return nameOut{ARN: sec.arn, Name: sec.name, VersionId: v.id}, nil
	}
	return nil, newError(TypeResourceExists, "A resource with the ID you requested already exists: "+
		"version %s of secret %s. Use a new ClientRequestToken for each rotation.", v.id, sec.name)
}

// configureRotation turns rotation on with the function given, and with
// the rules and their parsed schedule when rules is not nil. The caller
// holds s.mu.
func (s *Server) configureRotation(sec *secret, lambda string, rules *rulesWire, sched *schedule.Schedule) {
	if !sec.rotationEnabled {
		sec.rotationSince = s.now()
	}
	sec.rotationEnabled = true
	sec.lambdaARN = lambda
	if rules != nil {
		r := *rules
		sec.rules, sec.schedule = &r, sched
	}
	sec.changed = s.now()
}

func (s *Server) cancelRotateSecret(in *idIn) (any, *apiError) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, err := s.live(in.SecretId)
	if err != nil {
		return nil, err
	}
	sec.rotationEnabled = false
	sec.changed = s.now()
	s.cancelRuns(sec.name)
	out := nameOut{ARN: sec.arn, Name: sec.name}
	if sec.rotationPending() {
		out.VersionId = sec.holder(stagePending).id
	}
	return out, nil
}

// parseRules checks RotationRulesType with keyturn's schedule parser:
// exactly one of AutomaticallyAfterDays (1 to 1000) and ScheduleExpression,
// an expression Secrets Manager accepts, and a Duration that fits its
// windows.
func parseRules(r *rulesWire) (*schedule.Schedule, *apiError) {
	switch {
	case r.AutomaticallyAfterDays != nil && r.ScheduleExpression != "":
		// Secrets Manager's own message for this case.
		return nil, errInvalidParameter("You cannot specify both rotation frequency and schedule expression together.")
	case r.AutomaticallyAfterDays != nil && *r.AutomaticallyAfterDays == 0:
		// schedule.Parse reads 0 as unset; the request did set it.
		return nil, errInvalidParameter("AutomaticallyAfterDays 0 is out of range: use 1 to %d.", maxRotationDays)
	}
	rules := keystore.RotationRules{ScheduleExpression: r.ScheduleExpression, Duration: r.Duration}
	if r.AutomaticallyAfterDays != nil {
		rules.AutomaticallyAfterDays = *r.AutomaticallyAfterDays
	}
	sched, err := schedule.Parse(rules)
	if err != nil {
		return nil, errInvalidParameter("%s.", capitalize(err.Error()))
	}
	return sched, nil
}

// capitalize upper-cases the first letter of a Go error message, so that it
// reads as the sentence Secrets Manager messages are.
func capitalize(msg string) string {
	r, size := utf8.DecodeRuneInString(msg)
	return string(unicode.ToUpper(r)) + msg[size:]
}

// nextRotation returns NextRotationDate, counted from the last rotation or,
// before the first, from when rotation was turned on. It is when the next
// rotation window opens, or now if a window is open or overdue, and zero
// when rotation is off or has no rules. The caller holds s.mu.
//
// NOTE: the API reference describes NextRotationDate as the latest date the
// rotation will occur, which may be in the past after failed rotations.
// The test server returns the window's start, and never a time before now.
func (s *Server) nextRotation(sec *secret) time.Time {
	if !sec.rotationEnabled || sec.schedule == nil {
		return time.Time{}
	}
	base := sec.lastRotated
	if base.IsZero() {
		base = sec.rotationSince
	}
	return sec.schedule.Next(base, s.now())
}
