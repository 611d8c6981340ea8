package main

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// validateName follows src/data/mod.rs::validate_vm_name: 1–128 chars of
// [A-Za-z0-9_-], first char alphanumeric, no trailing '-', no "--". Only the
// invalid-character text is quoted in the reference; the others are
// plausible wordings.
func validateName(name string) error {
	if name == "" {
		return fmt.Errorf("machine name cannot be empty")
	}
	if len(name) > 128 {
		return fmt.Errorf("machine name too long: %d characters (max 128)", len(name))
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("machine name contains invalid character: '%c'", c)
		}
	}
	if c := name[0]; c == '_' || c == '-' {
		return fmt.Errorf("machine name must start with a letter or digit")
	}
	if strings.HasSuffix(name, "-") {
		return fmt.Errorf("machine name cannot end with a hyphen")
	}
	if strings.Contains(name, "--") {
		return fmt.Errorf("machine name cannot contain consecutive hyphens")
	}
	return nil
}

// parseCIDR follows src/smolfile.rs::parse_cidr: a bare IP becomes /32 or
// /128, anything else must be a prefix and is kept as written (IpNet
// Display does not mask host bits). The error text is the reference's.
func parseCIDR(s string) (string, error) {
	bad := fmt.Errorf("invalid CIDR '%s': expected format like 10.0.0.0/8 or 1.1.1.1", s)
	if !strings.Contains(s, "/") {
		ip, err := netip.ParseAddr(s)
		if err != nil || ip.Zone() != "" {
			return "", bad
		}
		return netip.PrefixFrom(ip, ip.BitLen()).String(), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return "", bad
	}
	return p.String(), nil
}

// parseEnvSpec follows util::parse_env_spec: KEY=VALUE, or KEY alone to
// forward the value from this process's environment. Anything malformed, or
// a forwarded KEY that is unset, is dropped without a word.
func parseEnvSpec(specs []string, lookup func(string) (string, bool)) [][2]string {
	var out [][2]string
	for _, s := range specs {
		k, v, hasEq := strings.Cut(s, "=")
		if k == "" || strings.ContainsAny(k, " \t\n") {
			continue
		}
		if !hasEq {
			hv, ok := lookup(k)
			if !ok {
				continue
			}
			v = hv
		}
		out = append(out, [2]string{k, v})
	}
	return out
}

// parseLabels is util::parse_labels (util.rs 172-190): split on the first
// '=', an empty key is rejected, a repeated key keeps its last value. It runs
// after clap, so a bad label is a config error (exit 1), not exit 2.
func parseLabels(specs []string) (map[string]string, error) {
	out := map[string]string{}
	for _, s := range specs {
		k, v, ok := strings.Cut(s, "=")
		if !ok {
			return nil, errorf("config operation failed: --label: expected KEY=VALUE, got '%s'", s)
		}
		if k == "" {
			return nil, errorf("config operation failed: --label: label key cannot be empty (in '%s')", s)
		}
		out[k] = v
	}
	return out, nil
}

// parsePort accepts HOST:GUEST or PORT; port 0 is rejected. Reported as a
// clap value error (wording not from the source).
func parsePort(f flagSpec, s string) error {
	parts := strings.Split(s, ":")
	if len(parts) > 2 {
		return invalidValue(f, s, "expected HOST:GUEST or PORT")
	}
	for _, p := range parts {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return invalidValue(f, s, fmt.Sprintf("invalid port '%s'", p))
		}
		if n == 0 {
			return invalidValue(f, s, "port 0 is not allowed")
		}
	}
	return nil
}

// parseUint is clap's value_parser for an unsigned integer of the given
// bit size, with Rust's error texts.
func parseUint(f flagSpec, s string, bits int) (int, error) {
	n, err := strconv.ParseUint(s, 10, bits)
	if err == nil {
		return int(n), nil
	}
	if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
		return 0, invalidValue(f, s, fmt.Sprintf("%s is not in 0..=%d", s, uint64(1)<<bits-1))
	}
	if s == "" {
		return 0, invalidValue(f, s, "cannot parse integer from empty string")
	}
	return 0, invalidValue(f, s, "invalid digit found in string")
}

// isLocalImage follows src/data/image_source.rs::classify.
func isLocalImage(s string) bool {
	if s == "-" || strings.HasPrefix(s, "/") || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../") {
		return true
	}
	for _, suf := range []string{".tar", ".tar.gz", ".tgz"} {
		if strings.HasSuffix(s, suf) {
			return true
		}
	}
	return false
}

// isLocalRef is image_source::is_local_ref: a recorded image that start
// mounts from the host instead of pulling.
func isLocalRef(ref string) bool {
	return strings.HasPrefix(ref, "local:") || strings.HasPrefix(ref, "local-dir:")
}

// versionAtLeast compares dotted numeric versions ("1.7.0" < "1.8.0").
func versionAtLeast(v, min string) bool {
	a, b := strings.Split(v, "."), strings.Split(min, ".")
	for i := 0; i < len(b); i++ {
		var x, y int
		if i < len(a) {
			x, _ = strconv.Atoi(a[i])
		}
		y, _ = strconv.Atoi(b[i])
		if x != y {
			return x > y
		}
	}
	return true
}
