package main

import (
	"github.com/docker/docker/client"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/drivers/dockerguest"
	"github.com/bottle-reconcile/bottle-reconcile/drivers/smolvm"
	"github.com/bottle-reconcile/bottle-reconcile/reconciler"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// smolvmImages lets the smolvm driver pull images through the host daemon
// and export them.
func smolvmImages(cli *client.Client, log logr.Logger) smolvm.ImageExporter {
	return smolvm.NewDockerImages(cli, log)
}

// addDockerGuest registers the docker guest driver, for hosts without smolvm.
func addDockerGuest(guests map[string]reconciler.Driver, cli *client.Client, log logr.Logger) error {
	d, err := dockerguest.New(cli, dockerguest.Options{}, log)
	if err != nil {
		return err
	}
	guests[spec.GuestDocker] = d
	return nil
}
