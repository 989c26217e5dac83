package smtest

import (
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

const (
	minRotationDays = 1
	maxRotationDays = 1000
	minRateHours    = 4
)

var (
	ratePattern     = regexp.MustCompile(`^rate\(\s*(\d+)\s+(hours?|days?)\s*\)$`)
	durationPattern = regexp.MustCompile(`^([1-9]|1[0-9]|2[0-4])h$`)
)

// rotateSecret stores any rotation configuration given, creates the empty
// AWSPENDING version under the token and starts the rotation function
// asynchronously. It returns the new version's id.
func (s *Server) rotateSecret(in *rotateIn) (any, *apiError) {
	if err := checkToken(in.ClientRequestToken); err != nil {
		return nil, err
	}
	if in.RotationRules != nil {
		if err := checkRules(in.RotationRules); err != nil {
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

	s.configureRotation(sec, lambda, in.RotationRules)
	token := in.ClientRequestToken
	if token == "" {
		token = uuid.NewString()
	}
	if stale := sec.holder(stagePending); stale != nil {
		stale.remove(stagePending) // it is on the AWSCURRENT version: that rotation is complete
	}
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

// configureRotation turns rotation on with the function and rules given.
// The caller holds s.mu.
func (s *Server) configureRotation(sec *secret, lambda string, rules *rulesWire) {
	if !sec.rotationEnabled {
		sec.rotationSince = s.now()
	}
	sec.rotationEnabled = true
	sec.lambdaARN = lambda
	if rules != nil {
		r := *rules
		sec.rules = &r
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

// checkRules enforces RotationRulesType: exactly one of
// AutomaticallyAfterDays (1 to 1000) or ScheduleExpression, and a Duration
// of 1h to 24h.
//
// NOTE: cron() expressions are accepted without checking their fields.
func checkRules(r *rulesWire) *apiError {
	switch {
	case r.AutomaticallyAfterDays != nil && r.ScheduleExpression != "":
		return errInvalidParameter("You can't specify both AutomaticallyAfterDays and ScheduleExpression in RotationRules.")
	case r.AutomaticallyAfterDays != nil:
		if d := *r.AutomaticallyAfterDays; d < minRotationDays || d > maxRotationDays {
			return errInvalidParameter("AutomaticallyAfterDays %d is out of range: use %d to %d.",
				d, minRotationDays, maxRotationDays)
		}
	case r.ScheduleExpression != "":
		if err := checkSchedule(r.ScheduleExpression); err != nil {
			return err
		}
	default:
		return errInvalidParameter("RotationRules needs AutomaticallyAfterDays or ScheduleExpression.")
	}
	if r.Duration != "" && !durationPattern.MatchString(r.Duration) {
		return errInvalidParameter("Invalid Duration %q: use whole hours from 1h to 24h, such as 3h.", r.Duration)
	}
	return nil
}

func checkSchedule(expr string) *apiError {
	if strings.HasPrefix(expr, "cron(") && strings.HasSuffix(expr, ")") {
		return nil
	}
	every, ok := rateInterval(expr)
	if !ok {
		return errInvalidParameter("Invalid ScheduleExpression %q: use rate(N hours), rate(N days) or cron(...).", expr)
	}
	if every < minRateHours*time.Hour {
		return errInvalidParameter("Invalid ScheduleExpression %q: a secret can rotate at most every %d hours.",
			expr, minRateHours)
	}
	return nil
}

// rateInterval parses rate(N hours) or rate(N days).
func rateInterval(expr string) (time.Duration, bool) {
	m := ratePattern.FindStringSubmatch(expr)
	if m == nil {
		return 0, false
	}
	n, err := strconv.Atoi(m[1])
	if err != nil || n < 1 {
		return 0, false
	}
	unit := time.Hour
	if strings.HasPrefix(m[2], "day") {
		unit = 24 * time.Hour
	}
	return time.Duration(n) * unit, true
}

// nextRotation estimates NextRotationDate: the interval after the last
// rotation, or after rotation was turned on if it never ran.
//
// NOTE: Secrets Manager picks a time inside the rotation window; this is
// the window's start. cron() schedules get no date.
func nextRotation(sec *secret) time.Time {
	if !sec.rotationEnabled || sec.rules == nil {
		return time.Time{}
	}
	var every time.Duration
	switch {
	case sec.rules.AutomaticallyAfterDays != nil:
		every = time.Duration(*sec.rules.AutomaticallyAfterDays) * 24 * time.Hour
	default:
		d, ok := rateInterval(sec.rules.ScheduleExpression)
		if !ok {
			return time.Time{}
		}
		every = d
	}
	base := sec.lastRotated
	if base.IsZero() {
		base = sec.rotationSince
	}
	return base.Add(every)
}
