package sidecar

import "github.com/bottle-reconcile/bottle-reconcile/reconciler"

// The reconciler's interfaces are checked here, in a test, so that the
// driver itself does not import the reconciler (see drivers/deps_test.go).
var (
	_ reconciler.Driver     = (*Driver)(nil)
	_ reconciler.Cleaner    = (*Driver)(nil)
	_ reconciler.HashFacter = (*Driver)(nil)
	_ reconciler.Preparer   = (*Driver)(nil)
)
