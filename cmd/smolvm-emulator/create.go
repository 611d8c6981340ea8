package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Flags of `machine create` (CreateCmd). Placeholders other than <CIDR> are
// guesses; only the --allow-cidr one is quoted in the reference.
var (
	fName       = flagSpec{long: "name", short: 'n', value: "NAME"}
	fLabel      = flagSpec{long: "label", value: "KEY=VALUE", multi: true}
	fImage      = flagSpec{long: "image", short: 'I', value: "IMAGE"}
	fFrom       = flagSpec{long: "from", value: "PATH"}
	fSmolfile   = flagSpec{long: "smolfile", short: 's', value: "PATH"}
	fCPUs       = flagSpec{long: "cpus", value: "CPUS"}
	fMem        = flagSpec{long: "mem", value: "MEM"}
	fStorage    = flagSpec{long: "storage", value: "GIB"}
	fOverlay    = flagSpec{long: "overlay", value: "GIB"}
	fVolume     = flagSpec{long: "volume", short: 'v', value: "VOLUME", multi: true}
	fPort       = flagSpec{long: "port", short: 'p', value: "PORT", multi: true}
	fNetBackend = flagSpec{long: "net-backend", value: "NET_BACKEND"}
	fAllowCIDR  = flagSpec{long: "allow-cidr", value: "CIDR", multi: true}
	fAllowHost  = flagSpec{long: "allow-host", value: "HOST", multi: true}
	fDNS        = flagSpec{long: "dns", value: "DNS"}
	fGPUVram    = flagSpec{long: "gpu-vram", value: "MIB"}
)

func (a *app) createSpec() cmdSpec {
	flags := []flagSpec{fName}
	// --label is new in v1.8.0: an older smolvm rejects it as unknown.
	if versionAtLeast(a.version, "1.8.0") {
		flags = append(flags, fLabel)
	}
	flags = append(flags, fImage, fFrom, fSmolfile, fCPUs, fMem, fStorage, fOverlay, fVolume, fPort,
		flagSpec{long: "net"}, fNetBackend, fAllowCIDR, fAllowHost, flagSpec{long: "outbound-localhost-only"},
		fDNS, flagSpec{long: "network", value: "NETWORK"},
		flagSpec{long: "env", short: 'e', value: "KEY=VALUE", multi: true},
		flagSpec{long: "workdir", short: 'w', value: "WORKDIR"},
		flagSpec{long: "init", value: "CMD", multi: true},
		flagSpec{long: "ssh-agent"}, flagSpec{long: "gpu"}, fGPUVram, flagSpec{long: "cuda"},
		flagSpec{long: "auto-graph"}, flagSpec{long: "rosetta"}, flagSpec{long: "docker-socket"},
		flagSpec{long: "expose-socket", value: "SOCKET", multi: true},
		flagSpec{long: "mount-socket", value: "SOCKET", multi: true},
		flagSpec{long: "secret-env", value: "GUEST=HOSTVAR", multi: true},
		flagSpec{long: "secret-file", value: "GUEST=PATH", multi: true},
		flagSpec{long: "max-image-size", value: "SIZE"},
	)
	return cmdSpec{
		usage:     "smolvm machine create [OPTIONS] [-- <COMMAND>...]",
		flags:     flags,
		trailing:  true,
		conflicts: [][2]string{{"from", "image"}, {"from", "smolfile"}},
	}
}

const (
	defaultCPUs = 4
	maxCPUs     = 16
	defaultMem  = 8192
	minMem      = 64
)

// newRecord is a never-started machine with default resources.
func newRecord(name string) Record {
	return Record{Name: name, State: "created", CreatedAt: time.Now().Unix(), CPUs: defaultCPUs, MemoryMiB: defaultMem,
		Labels: map[string]string{}, Env: [][2]string{}, Mounts: []Mount{}, Ports: []string{},
		AllowedCIDRs: []string{}, DNSHosts: []string{}, Cmd: []string{}}
}

// createOpts is the create command line after clap-level validation.
type createOpts struct {
	rec       Record
	cpusAsked int
	policy    bool // any egress policy (allow-cidr, allow-host, outbound-localhost-only)
}

// parseCreate does what clap's value parsers would do: everything here fails
// with exit 2.
func (a *app) parseCreate(p parsedArgs) (createOpts, error) {
	o := createOpts{rec: newRecord("")}
	o.cpusAsked = defaultCPUs
	r := &o.rec
	var err error
	for _, c := range p.vals["allow-cidr"] {
		cidr, err := parseCIDR(c)
		if err != nil {
			return o, invalidValue(fAllowCIDR, c, err.Error())
		}
		r.AllowedCIDRs = append(r.AllowedCIDRs, cidr)
	}
	if v, ok := p.one("cpus"); ok {
		if o.cpusAsked, err = parseUint(fCPUs, v, 8); err != nil {
			return o, err
		}
	}
	if v, ok := p.one("mem"); ok {
		if r.MemoryMiB, err = parseUint(fMem, v, 32); err != nil {
			return o, err
		}
	}
	for _, f := range []flagSpec{fStorage, fOverlay, fGPUVram} {
		v, ok := p.one(f.long)
		if !ok {
			continue
		}
		n, err := parseUint(f, v, 64)
		if err != nil {
			return o, err
		}
		switch f.long {
		case "storage":
			r.StorageGB = &n
		case "overlay":
			r.OverlayGB = &n
		case "gpu-vram":
			r.GPUVramMiB = &n
		}
	}
	if v, ok := p.one("dns"); ok {
		ip, err := parseIPv4(v)
		if err != nil {
			return o, invalidValue(fDNS, v, "invalid IPv4 address syntax")
		}
		r.DNS = ip
	}
	if v, ok := p.one("net-backend"); ok {
		if v != "tsi" && v != "virtio-net" {
			return o, invalidValue(fNetBackend, v, "[possible values: tsi, virtio-net]")
		}
		r.NetBackend = v
	}
	for _, v := range p.vals["port"] {
		if err := parsePort(fPort, v); err != nil {
			return o, err
		}
	}
	r.Ports = append(r.Ports, p.vals["port"]...)
	return o, nil
}

// create implements `machine create`.
func (a *app) create(p parsedArgs) error {
	o, err := a.parseCreate(p)
	if err != nil {
		return err
	}
	r := &o.rec
	name, named := p.one("name")
	if !named {
		name = "vm-" + shortID()
	}
	r.Name = name
	if err := validateName(name); err != nil {
		return errorf("config operation failed: create machine: %s", err)
	}
	// --label is parsed at run time (util::parse_labels, util.rs 172-190),
	// so a bad one is exit 1, not a clap error.
	if r.Labels, err = parseLabels(p.vals["label"]); err != nil {
		return err
	}
	r.CPUs = o.cpusAsked
	if err := a.validateResources(r); err != nil {
		return err
	}
	if err := a.createSource(p, r); err != nil {
		return err
	}
	if err := a.createNetwork(p, &o); err != nil {
		return err
	}
	mounts, err := parseVolumes(p.vals["volume"])
	if err != nil {
		return err
	}
	r.Mounts = append(r.Mounts, mounts...)
	r.Env = parseEnvSpec(p.vals["env"], a.lookupEnv)
	r.Workdir, _ = p.one("workdir")
	r.Init = p.vals["init"]
	r.GPU = p.has("gpu")
	r.Cuda = p.has("cuda")
	if p.trailing != nil {
		r.Cmd = p.trailing
	}
	r.CreatedAt = time.Now().Unix()

	err = a.store.withLock(true, func(st *stateFile) error {
		if _, ok := st.Machines[name]; ok {
			return errorf("config operation failed: create machine: machine '%s' already exists or is being created", name)
		}
		st.Machines[name] = r
		return nil
	})
	if err != nil {
		return err
	}
	if err := a.makeDataDir(name); err != nil {
		return err
	}
	if a.getenv("SMOLVM_EMU_CRASH_AFTER_CREATE") != "" {
		// A create that dies after the record is stored: no success output.
		return exitCode(1)
	}
	fmt.Fprintf(a.stdout, "Created machine: %s\n", name)
	fmt.Fprintf(a.stdout, "  CPUs: %d, Memory: %d MiB\n", r.CPUs, r.MemoryMiB)
	if n := len(p.vals["volume"]); n > 0 {
		fmt.Fprintf(a.stdout, "  Mounts: %d\n", n)
	}
	// The hint wording is not from the source.
	fmt.Fprintf(a.stdout, "\nStart it with: smolvm machine start --name %s\n", name)
	return nil
}

// validateResources is VmResources::validate (data/resources.rs 84-121).
// Above 16 CPUs it only warns: the record keeps the number asked for (91-97).
func (a *app) validateResources(r *Record) error {
	switch {
	case r.CPUs == 0:
		return errorf("config operation failed: validate resources: CPU count must be at least 1")
	case r.CPUs > maxCPUs:
		fmt.Fprintf(a.stderr, "warning: requested %d vCPUs but the hypervisor supports at most %d; the VM will run with %d vCPUs\n", r.CPUs, maxCPUs, maxCPUs)
	}
	if r.MemoryMiB < minMem {
		return errorf("config operation failed: validate resources: memory must be at least %d MiB (got %d MiB)", minMem, r.MemoryMiB)
	}
	if r.StorageGB != nil && *r.StorageGB == 0 {
		return errorf("config operation failed: validate resources: storage disk size must be greater than 0 GiB")
	}
	if r.OverlayGB != nil && *r.OverlayGB == 0 {
		return errorf("config operation failed: validate resources: overlay disk size must be greater than 0 GiB")
	}
	return nil
}

// createSource checks --image/--from/--smolfile and fills r.Image.
func (a *app) createSource(p parsedArgs, r *Record) error {
	if from, ok := p.one("from"); ok {
		// Not from the reference: the wording of a missing sidecar.
		if st, err := os.Stat(from); err != nil || st.IsDir() {
			return errorf("failed to read .smolmachine '%s': file not found", from)
		}
		abs, err := filepath.Abs(from)
		if err != nil {
			return fmt.Errorf("resolve --from: %w", err)
		}
		r.From = abs
		// The real CLI records the manifest's image ref; the emulator does
		// not read pack manifests, so image stays null (as for --from-vm).
		fmt.Fprintln(a.stdout, "Extracting .smolmachine assets...")
	}
	if _, ok := p.one("smolfile"); ok {
		return errorf("smolvm emulator: --smolfile is not emulated")
	}
	img, ok := p.one("image")
	if !ok {
		return nil
	}
	if !isLocalImage(img) {
		r.Image = &img
		return nil
	}
	// A local archive is staged into smolvm's own content-addressed cache and
	// the record keeps "local:<sha256>", never the path given
	// (src/data/image_source.rs 196-244, 303).
	ref, err := a.stageArchive(img)
	if err != nil {
		return err
	}
	r.Image = &ref
	return nil
}

// createNetwork applies --net, the egress policy flags and --net-backend.
func (a *app) createNetwork(p parsedArgs, o *createOpts) error {
	r := &o.rec
	for _, h := range p.vals["allow-host"] {
		ips, err := a.resolveAllowHost(h)
		if err != nil {
			return err
		}
		for _, ip := range ips {
			cidr, err := parseCIDR(ip)
			if err != nil {
				return fmt.Errorf("allow-host %s: %w", h, err)
			}
			r.AllowedCIDRs = append(r.AllowedCIDRs, cidr)
		}
		r.DNSHosts = append(r.DNSHosts, h)
	}
	if p.has("outbound-localhost-only") {
		r.AllowedCIDRs = append(r.AllowedCIDRs, "127.0.0.0/8", "::1/128")
	}
	o.policy = p.has("allow-cidr") || p.has("allow-host") || p.has("outbound-localhost-only")
	r.Network = p.has("net") || o.policy || p.has("network")
	if o.policy && r.NetBackend == "tsi" {
		// The reference elides the middle of this text with "…"; the
		// emulator spells it out. Rejected at create here, though the
		// reference places the check in src/network/launch.rs.
		return errorf("config operation failed: egress: egress policy (--allow-cidr, --allow-host, --outbound-localhost-only) requires the virtio-net backend")
	}
	// validate_image_fetchable: a registry image is pulled in the guest on
	// first start, so it needs networking (--from is exempt). Wording not
	// from the reference.
	if r.Image != nil && !isLocalRef(*r.Image) && !r.Network {
		return errorf("config operation failed: image '%s' must be pulled from a registry, which needs networking: add --net", *r.Image)
	}
	return nil
}

// resolveAllowHost resolves an --allow-host on the host, as smolvm does at
// create. SMOLVM_EMU_RESOLVE gives fixed answers for tests without DNS.
func (a *app) resolveAllowHost(h string) ([]string, error) {
	// Wordings below are not from the source.
	if _, _, err := net.SplitHostPort(h); err == nil {
		return nil, errorf("invalid --allow-host '%s': expected a hostname without a port", h)
	}
	for _, kv := range a.envList("SMOLVM_EMU_RESOLVE") {
		if k, v, ok := strings.Cut(kv, "="); ok && k == h {
			return []string{v}, nil
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	ips, err := net.DefaultResolver.LookupHost(ctx, h)
	if err != nil || len(ips) == 0 {
		return nil, errorf("failed to resolve --allow-host '%s': %v", h, err)
	}
	return ips, nil
}

// Mount is a host directory mount as smolvm records it (config.rs
// `mounts: Vec<(String, String, bool)>`): the canonical host path, the guest
// path, read-only.
type Mount struct {
	Source   string
	Target   string
	ReadOnly bool
}

// MarshalJSON writes the tuple smolvm stores.
func (m Mount) MarshalJSON() ([]byte, error) {
	return json.Marshal([]any{m.Source, m.Target, m.ReadOnly})
}

// UnmarshalJSON reads it back.
func (m *Mount) UnmarshalJSON(b []byte) error {
	var t []json.RawMessage
	if err := json.Unmarshal(b, &t); err != nil || len(t) != 3 {
		return fmt.Errorf("mount %s: want [source, target, read_only]", b)
	}
	if err := json.Unmarshal(t[0], &m.Source); err != nil {
		return err
	}
	if err := json.Unmarshal(t[1], &m.Target); err != nil {
		return err
	}
	return json.Unmarshal(t[2], &m.ReadOnly)
}

// protectedMountPaths is smolvm's Linux ILLEGAL_SOURCE_MOUNT_PATH
// (src/data/storage.rs): the path itself, and with true its subtree.
var protectedMountPaths = []struct {
	path    string
	subtree bool
}{
	{"/", false}, {"/var", false}, {"/var/run", true}, {"/var/log", true}, {"/etc", true}, {"/boot", true},
	{"/usr", true}, {"/bin", true}, {"/sbin", true}, {"/lib", true}, {"/proc", true}, {"/sys", true},
	{"/dev", true}, {"/run", true},
}

// parseVolumes does what build_vm_record does with -v (vm_common.rs
// 589-609): remote sources (s3://…, :remote…) are set aside unchecked, the
// rest go through HostMount::parse (src/data/storage.rs): split from the
// right on an optional :ro or :rw, then on the guest path; the host path
// must exist and be a directory, is canonicalised, and may not be a
// protected system path; the guest path must start with '/'; no guest path
// twice. Texts are smolvm's.
func parseVolumes(specs []string) ([]Mount, error) {
	var out []Mount
	for _, v := range specs {
		if strings.HasPrefix(v, "s3://") || strings.HasPrefix(v, ":") {
			continue // mounted by rclone inside the guest at start: not emulated
		}
		rest, ro := v, false
		if i := strings.LastIndex(v, ":"); i >= 0 && (v[i+1:] == "ro" || v[i+1:] == "rw") {
			rest, ro = v[:i], v[i+1:] == "ro"
		}
		i := strings.LastIndex(rest, ":")
		if i <= 0 || i == len(rest)-1 {
			return nil, errorf("invalid mount path: invalid format '%s' (expected host:guest[:ro|:rw])", v)
		}
		src, target := rest[:i], rest[i+1:]
		st, err := os.Stat(src)
		if err != nil {
			return nil, errorf("mount source not found: %s", src)
		}
		if !st.IsDir() {
			return nil, errorf("mount operation failed: validate host path: source path on host must be a directory (virtiofs limitation): %s", src)
		}
		canon, err := filepath.Abs(src)
		if err == nil {
			canon, err = filepath.EvalSymlinks(canon)
		}
		if err != nil {
			return nil, errorf("mount operation failed: canonicalize host path: '%s': %v", src, err)
		}
		for _, p := range protectedMountPaths {
			if canon == p.path || (p.subtree && strings.HasPrefix(canon, p.path+"/")) {
				return nil, errorf("mount operation failed: validate host path: source path on host is a protected system path and cannot be mounted: %s", canon)
			}
		}
		if !strings.HasPrefix(target, "/") {
			return nil, errorf("mount operation failed: validate guest path: target path on guest should be an absolute directory: %s", target)
		}
		for _, m := range out {
			if m.Target == target {
				return nil, errorf("mount operation failed: validate mounts: duplicate mount target: %s is specified more than once", target)
			}
		}
		out = append(out, Mount{Source: canon, Target: target, ReadOnly: ro})
	}
	return out, nil
}

// makeDataDir creates smolvm's per-VM data dir with its `name` file
// (src/agent/manager.rs::vm_data_dir).
func (a *app) makeDataDir(name string) error {
	dir := a.vmDataDir(name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "name"), []byte(name), 0o644); err != nil {
		return fmt.Errorf("write data dir name: %w", err)
	}
	return nil
}

func (a *app) vmDataDir(name string) string {
	sum := sha256.Sum256([]byte(name))
	return filepath.Join(a.home, ".cache", "smolvm", "vms", hex.EncodeToString(sum[:])[:16])
}

// rootfsDir is the emulator's stand-in for the guest filesystem.
func (a *app) rootfsDir(name string) string {
	return filepath.Join(a.home, "emu", "rootfs", name)
}

func shortID() string {
	b := make([]byte, 4)
	rand.Read(b) // never fails since Go 1.24
	return hex.EncodeToString(b)
}

// parseIPv4 is Rust's Ipv4Addr::from_str.
func parseIPv4(s string) (string, error) {
	ip, err := netip.ParseAddr(s)
	if err != nil || !ip.Is4() {
		return "", fmt.Errorf("invalid IPv4 address syntax")
	}
	return ip.String(), nil
}
