// Package bottle is the vocabulary the drivers share with the reconciler:
// the Resource a driver observes and the Want it creates from, the roles,
// states and health values, the labels that mark what an instance owns, the
// fixed address layout of a bottle subnet, and the per-pass shared calls.
//
// It holds no behaviour of the controller, so a driver that imports it pulls
// in neither the reconciler's watcher nor its metrics.
package bottle
