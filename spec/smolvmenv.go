package spec

import "strings"

// SmolvmHostEnv reports whether setting k in smolvm's own environment could
// change what smolvm (a bash wrapper around a dynamically linked binary)
// does on the host: the loader, the shell, smolvm's own settings, proxies
// and TLS roots, and the names smolvm 1.9.2 itself reads (SSH_AUTH_SOCK,
// SMOL_CLOUD_TOKEN, SMOL_NO_HOT_RELOAD, CUDA_VISIBLE_DEVICES,
// VIRGL_RENDER_SERVER_PATH, EDITOR, RUST_LOG, SMOLVM_*; the proxy variables
// feed its in-guest image pull, cli/proxy_opts.rs 26-44). The smolvm driver passes such a variable on smolvm's
// command line instead of in its environment, which is fine for a spec.env
// value (public, reviewed in git) and not for an envFromHost secret, which
// validation therefore refuses for smolvm guests.
func SmolvmHostEnv(k string) bool {
	switch strings.ToUpper(k) {
	case "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TMPDIR", "PWD", "OLDPWD", "IFS", "ENV",
		"BASH_ENV", "CDPATH", "GLOBIGNORE", "SHELLOPTS", "BASHOPTS", "PS4", "TZ", "TZDIR",
		"LANG", "LANGUAGE", "GCONV_PATH", "LOCPATH", "NLSPATH", "HOSTALIASES", "RES_OPTIONS",
		"LOCALDOMAIN", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY",
		"NO_PROXY", "DOCKER_HOST", "DOCKER_CONFIG", "SSH_AUTH_SOCK", "CUDA_VISIBLE_DEVICES",
		"VIRGL_RENDER_SERVER_PATH", "EDITOR":
		return true
	}
	for _, p := range []string{"LD_", "SMOLVM_", "SMOL_", "RUST_", "XDG_", "BASH_FUNC_", "LC_", "MALLOC_", "GLIBC_", "KRUN"} {
		if strings.HasPrefix(strings.ToUpper(k), p) {
			return true
		}
	}
	return false
}
