package images

import (
	"fmt"

	"github.com/distribution/reference"
	"github.com/docker/cli/cli/config"
	"github.com/docker/docker/api/types/registry"
)

// Credentials returns the encoded registry auth (the X-Registry-Auth value)
// for pulling ref, or "" for an anonymous pull.
type Credentials func(ref reference.Named) (string, error)

// HostCredentials reads the credentials the docker CLI would use for ref's
// registry: the auths of the docker config file (DOCKER_CONFIG, or
// ~/.docker/config.json) and its credsStore/credHelpers. The file is read
// at every pull, so a `docker login` takes effect without a restart. A
// missing file means anonymous pulls.
func HostCredentials(ref reference.Named) (string, error) {
	return credentialsFrom(config.Dir(), ref)
}

// credentialsFrom reads the docker config in dir.
func credentialsFrom(dir string, ref reference.Named) (string, error) {
	host := reference.Domain(ref)
	cf, err := config.Load(dir)
	if err != nil {
		return "", fmt.Errorf("read docker config in %s for registry %s: %w", dir, host, err)
	}
	ac, err := cf.GetAuthConfig(host)
	if err != nil {
		return "", fmt.Errorf("get credentials for registry %s from docker config in %s: %w", host, dir, err)
	}
	if ac.Username == "" && ac.Password == "" && ac.Auth == "" && ac.IdentityToken == "" && ac.RegistryToken == "" {
		return "", nil
	}
	enc, err := registry.EncodeAuthConfig(registry.AuthConfig{
		Username:      ac.Username,
		Password:      ac.Password,
		Auth:          ac.Auth,
		ServerAddress: ac.ServerAddress,
		IdentityToken: ac.IdentityToken,
		RegistryToken: ac.RegistryToken,
	})
	if err != nil {
		return "", fmt.Errorf("encode credentials for registry %s: %w", host, err)
	}
	return enc, nil
}
