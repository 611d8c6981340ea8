// Package dockernet implements the network and bundle drivers of a bottle on
// a Docker daemon: a per-bottle internal bridge network with a pinned /29, and
// a hardened sidecar "bundle" container at a pinned address on it.
//
// Everything it creates carries the reconciler's labels; anything without
// them is never modified or removed.
package dockernet
