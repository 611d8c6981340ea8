// Package review says, bottle by bottle, what a change of spec files does on
// a host where the old specs are converged: create, delete, replace the
// guest, the bundle or the whole chain, or nothing, and which fields caused
// it. The plan it reads comes from reconciler.Review, so a review cannot
// disagree with what a pass would do.
package review
