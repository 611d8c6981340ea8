package smolvm

import "os"

// smolvmEnvNames are the only variables smolvm inherits from the reconciler.
// smolvm's own environment changes what it does on the host
// (smolvm-network/src/egress.rs 133-199: SMOLVM_EGRESS_FLOOR and
// SMOLVM_PUBLISH_ADDR change the egress policy; cli/proxy_opts.rs 26-44:
// HTTPS_PROXY/HTTP_PROXY/ALL_PROXY in either case send the first-start
// pull through a proxy; also SSH_AUTH_SOCK, SMOL_CLOUD_TOKEN, RUST_LOG and
// the rest of SMOLVM_*), so it gets what it needs to run and to find its
// state, nothing else:
//
//   - PATH: the installed smolvm is a bash wrapper, and smolvm runs host
//     tools (mkfs.ext4 from e2fsprogs, crun).
//   - HOME: dirs::data_local_dir and dirs::cache_dir, i.e. the machine
//     database (~/.local/share/smolvm/server/smolvm.db, db.rs) and the
//     per-VM and image-archive caches, hang off it.
//   - SMOLVM_DATA_DIR: moves all of that (main.rs,
//     process::apply_system_data_root); the one SMOLVM_* name that is
//     about where state lives, not how smolvm behaves.
//   - XDG_DATA_HOME, XDG_CACHE_HOME, XDG_CONFIG_HOME: the same locations
//     when the operator set them; without them the reconciler would see a
//     different database than the operator's shell.
//   - TMPDIR: where temporary files go (Rust's env::temp_dir).
//
// No locale: smolvm's output, which classify reads, does not depend on it.
var smolvmEnvNames = []string{"PATH", "HOME", "SMOLVM_DATA_DIR", "XDG_DATA_HOME", "XDG_CACHE_HOME", "XDG_CONFIG_HOME", "TMPDIR"}

// smolvmEnv returns the base environment for smolvm, read through lookup
// (nil means this process's environment).
func smolvmEnv(lookup func(string) (string, bool)) []string {
	if lookup == nil {
		lookup = os.LookupEnv
	}
	var env []string
	for _, k := range smolvmEnvNames {
		if v, ok := lookup(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// MinimalEnv is the environment any caller of the smolvm CLI should give it
// (the probe's machine cp/exec too): smolvmEnvNames, read from this process.
func MinimalEnv() []string { return smolvmEnv(nil) }
