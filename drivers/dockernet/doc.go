// Package dockernet implements the network driver of a bottle on a Docker
// daemon, a per-bottle internal bridge network with a pinned /29, and the
// Docker event source watch mode listens to. The bundle driver, which puts
// a sidecar container on that network, is in package sidecar below.
//
// Everything it creates carries the reconciler's labels; anything without
// them is never modified or removed.
package dockernet
