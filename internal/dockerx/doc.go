// Package dockerx holds the Docker helpers the Docker-backed drivers share
// (the network driver in drivers/dockernet, the bundle driver in
// drivers/dockernet/sidecar, the guest driver in drivers/dockerguest):
// reading a listed container as a Resource, the one-call-per-pass container
// list, removal, name checks, ownership by label, error wrapping, the pool
// and the subnet lock. Each exists once, so the drivers read and judge
// containers the same way.
package dockerx
