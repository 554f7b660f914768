package api

import (
	"os"
	"testing"

	"github.com/cairn-io/cairn/tests/e2e/framework"
)

func TestMain(m *testing.M) {
	code := framework.Main(m)
	removeCairnctl()
	os.Exit(code)
}
