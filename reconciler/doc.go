// Package reconciler turns a directory of bottle specs into running bottles.
//
// It is level-triggered: every pass loads every spec, observes every driver
// once, computes a Plan with the pure function Diff, and hands the plan to an
// executor that carries it out without making decisions. Nothing is cached
// between passes, so a crash, a half-finished create or out-of-band drift is
// healed by the next pass.
package reconciler
