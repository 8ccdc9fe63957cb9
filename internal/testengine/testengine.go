// Package testengine starts the real database and object-store engines that
// tests of the PostgreSQL and S3 backends run against: a private PostgreSQL
// cluster (initdb + pg_ctl, from Debian's postgresql package) and a MinIO
// server (built by `go install` from the module proxy), each on a free
// loopback port with a temporary data directory.
//
// Each engine is started at most once per test binary, on first use, and
// stopped by Main after the tests. A test gets its own empty database or
// bucket. When an engine cannot be found the test is skipped, or fails when
// PACKYARD_REQUIRE_REAL=1 (as CI sets).
package testengine

import (
	"os"
	"sync"
	"testing"
)

// RequireReal reports whether a missing engine must fail the test instead of
// skipping it.
func RequireReal() bool { return os.Getenv("PACKYARD_REQUIRE_REAL") == "1" }

// Unavailable skips t, or fails it under PACKYARD_REQUIRE_REAL=1, because an
// engine could not be started.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if RequireReal() {
		t.Fatalf(format+" (required: PACKYARD_REQUIRE_REAL=1)", args...)
	}
	t.Skipf(format+"; set PACKYARD_REQUIRE_REAL=1 to make this a failure", args...)
}

var (
	stopMu sync.Mutex
	stops  []func()
)

// atExit registers fn to run when Main returns (engines started this run).
func atExit(fn func()) {
	stopMu.Lock()
	stops = append(stops, fn)
	stopMu.Unlock()
}

// Main runs the tests of a package that uses engines and stops the engines
// afterwards. Call it from TestMain: func TestMain(m *testing.M) { testengine.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// Stop stops the engines this test binary started. Main calls it; a
// TestMain of its own calls it after m.Run.
func Stop() {
	stopMu.Lock()
	defer stopMu.Unlock()
	for i := len(stops) - 1; i >= 0; i-- {
		stops[i]()
	}
	stops = nil
}
