// Package e2e holds the end-to-end acceptance suite of bottle-reconcile.
//
// The tests build the real binary (CGO_ENABLED=0) and the smolvm emulator
// once, then drive the binary as a subprocess against the real Docker daemon
// and the emulator, which is put first on PATH as `smolvm`. Every test has
// its own spec directory, state directory, SMOLVM_DATA_DIR, --instance and
// --subnet-pool (a /24 of 10.216.0.0/16), and removes everything carrying
// its instance label when it ends, failing if the product left anything
// behind.
//
// Tests that need Docker skip when the daemon does not answer, unless
// BOTTLE_REQUIRE_DOCKER=1, which makes that a failure.
//
//	BOTTLE_REQUIRE_DOCKER=1 go test -count=1 ./e2e/
package e2e
