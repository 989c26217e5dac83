package tests

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// emulatorPackage is the main package of the AWS Lambda Runtime Interface
// Emulator, pinned in the tools module.
const emulatorPackage = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie"

// Paths of the binaries TestMain builds once for every test.
var (
	rotatorBinary  string
	routerBinary   string
	emulatorBinary string
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

// runTests builds the binaries and runs the tests. A failed build fails the
// whole run: no test is skipped for want of a binary.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "keyturn-e2e-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "tests: create build directory: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	if err := buildBinaries(dir); err != nil {
		fmt.Fprintf(os.Stderr, "tests: %v\n", err)
		return 1
	}
	return m.Run()
}

// goBuild is one `go build` run.
type goBuild struct {
	name string
	dir  string // directory to run go build in
	args []string
}

// buildBinaries builds the rotator and the router from this module and the
// emulator from the tools module into dir, in parallel.
func buildBinaries(dir string) error {
	root, err := filepath.Abs("..")
	if err != nil {
		return fmt.Errorf("find the module root: %w", err)
	}
	rotatorBinary = filepath.Join(dir, "rotator")
	routerBinary = filepath.Join(dir, "router")
	emulatorBinary = filepath.Join(dir, "aws-lambda-rie")
	builds := []goBuild{
		{"rotator", root, []string{"build", "-tags", "lambda.norpc", "-o", rotatorBinary, "./cmd/rotator"}},
		{"router", root, []string{"build", "-o", routerBinary, "./cmd/router"}},
		{"emulator", filepath.Join(root, "tools"), []string{"build", "-o", emulatorBinary, emulatorPackage}},
	}

	errs := make([]error, len(builds))
	var wg sync.WaitGroup
	for i, b := range builds {
		wg.Go(func() { errs[i] = b.run() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (b goBuild) run() error {
	cmd := exec.Command("go", b.args...)
	cmd.Dir = b.dir
	// Building without cgo matches the static binary deployed to Lambda.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("build %s: go %s (in %s) failed: %w\n%s",
			b.name, strings.Join(b.args, " "), b.dir, err, out)
	}
	return nil
}
