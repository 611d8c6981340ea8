// Package sidecar implements the bundle driver of a bottle on a Docker
// daemon: a hardened sidecar "bundle" container at a pinned address on the
// bottle network (which drivers/dockernet makes), also attached to its
// instance's egress network, which this driver makes on demand.
//
// Everything it creates carries the reconciler's labels; anything without
// them is never modified or removed.
package sidecar
