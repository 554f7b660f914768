package framework

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// Binaries are the paths of the built executables.
type Binaries struct {
	Scheduler string
	Worker    string
	Gateway   string
}

var (
	buildOnce sync.Once
	buildBins Binaries
	buildDir  string
	buildErr  error
)

// packages maps each binary to its main package.
var packages = []struct{ name, pkg string }{
	{"cairn-scheduler", "github.com/cairn-io/cairn/services/scheduler"},
	{"cairn-worker", "github.com/cairn-io/cairn/services/worker"},
	{"cairn-gateway", "github.com/cairn-io/cairn/services/gateway"},
}

// Build compiles the binaries once per test binary and returns their paths. A build failure
// fails t with the compiler's output.
func Build(t testing.TB) Binaries {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "cairn-e2e-bin-")
		if err != nil {
			buildErr = fmt.Errorf("build: temp dir: %w", err)
			return
		}
		buildDir = dir
		for _, p := range packages {
			out := filepath.Join(dir, p.name)
			// -race off: the binaries are exercised, not instrumented; building them with the
			// race detector would triple the build and slow every process.
			cmd := exec.Command("go", "build", "-o", out, p.pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if b, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("build %s (%s): %w\n%s", p.name, p.pkg, err, b)
				return
			}
		}
		buildBins = Binaries{
			Scheduler: filepath.Join(dir, "cairn-scheduler"),
			Worker:    filepath.Join(dir, "cairn-worker"),
			Gateway:   filepath.Join(dir, "cairn-gateway"),
		}
	})
	if buildErr != nil {
		t.Fatalf("framework: %v", buildErr)
	}
	return buildBins
}

// Main runs the tests of m and removes the built binaries afterwards. Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(framework.Main(m)) }
func Main(m *testing.M) int {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	return code
}
