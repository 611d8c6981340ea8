// Package images is the one image step both guest drivers take before they
// create a guest: it makes sure the image is in the host's Docker daemon,
// pulling it there when the spec's pullPolicy says so, and returns its
// content-addressed ID.
//
// The pull is the daemon's own (POST /images/create): it goes through the
// daemon's proxy settings and registry mirrors, with the registry
// credentials the host's docker CLI would use (~/.docker/config.json and its
// credential helpers, read with github.com/docker/cli/cli/config). A guest
// therefore never needs egress to a registry: a docker guest runs the
// pulled image, and the smolvm driver exports it as a `docker save` archive.
package images
