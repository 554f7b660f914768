package e2e

import (
	"os"
	"testing"

	"github.com/cairn-io/cairn/tests/e2e/framework"
)

func TestMain(m *testing.M) { os.Exit(framework.Main(m)) }
