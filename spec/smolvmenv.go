package spec

import "strings"

// SmolvmHostEnv reports whether setting k in smolvm's own environment could
// change what smolvm (a bash wrapper around a dynamically linked binary)
// does on the host: the loader, the shell, smolvm's own settings, proxies
// and TLS roots. The smolvm driver passes such a variable on smolvm's
// command line instead of in its environment, which is fine for a spec.env
// value (public, reviewed in git) and not for an envFromHost secret, which
// validation therefore refuses for smolvm guests.
func SmolvmHostEnv(k string) bool {
	switch strings.ToUpper(k) {
	case "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "PWD", "OLDPWD", "IFS", "ENV",
		"BASH_ENV", "CDPATH", "GLOBIGNORE", "SHELLOPTS", "BASHOPTS", "PS4", "TZ", "TZDIR",
		"LANG", "LANGUAGE", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "RES_OPTIONS",
		"LOCALDOMAIN", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
		"NO_PROXY", "DOCKER_HOST", "DOCKER_CONFIG":
		return true
	}
	for _, p := range []string{"LD_", "SMOLVM_", "RUST_", "XDG_", "BASH_FUNC_", "LC_", "MALLOC_", "GLIBC_", "KRUN"} {
		if strings.HasPrefix(strings.ToUpper(k), p) {
			return true
		}
	}
	return false
}
