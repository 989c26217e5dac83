package rotation

import (
	"fmt"
	"strings"
)

// Step is one of the four rotation steps Secrets Manager invokes, spelled as
// in its rotation event.
type Step string

// The rotation steps, in the order Secrets Manager runs them.
const (
	CreateSecret Step = "createSecret"
	SetSecret    Step = "setSecret"
	TestSecret   Step = "testSecret"
	FinishSecret Step = "finishSecret"
)

// Steps lists the rotation steps in the order they run.
var Steps = []Step{CreateSecret, SetSecret, TestSecret, FinishSecret}

// ParseStep reads a step name as Secrets Manager sends it.
func ParseStep(s string) (Step, error) {
	for _, step := range Steps {
		if string(step) == s {
			return step, nil
		}
	}
	names := make([]string, len(Steps))
	for i, step := range Steps {
		names[i] = string(step)
	}
	return "", fmt.Errorf("unknown rotation step %q: use one of %s", s, strings.Join(names, ", "))
}
