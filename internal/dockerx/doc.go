// Package dockerx holds the Docker helpers the Docker-backed drivers share
// (the network and bundle drivers in drivers/dockernet, the guest driver in
// drivers/dockerguest): reading a listed container as a Resource, the
// one-call-per-pass container list, removal, name checks, ownership by label
// and error wrapping. Each exists once, so the drivers read and judge
// containers the same way.
package dockerx
