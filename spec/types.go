package spec

import (
	"strings"

	yamlv3 "go.yaml.in/yaml/v3"
)

// APIVersion and Kind are the only values the loader accepts.
const (
	APIVersion = "bottle-reconcile/v1alpha1"
	Kind       = "Bottle"
)

// Guest kinds.
const (
	GuestSmolvm = "smolvm"
	GuestDocker = "docker"
)

// Bundle daemons.
const (
	DaemonEgress = "egress"
	DaemonDNS    = "dns"
)

// Defaults applied by the loader.
const (
	DefaultCPUs      = 2
	DefaultMemoryMiB = 2048
)

// Bottle is one bottle.yaml file.
type Bottle struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// Source is the file the bottle was loaded from. It is not part of the
	// bottle's identity: renaming a file changes nothing.
	Source string `json:"-"`

	doc      *yamlv3.Node // the parsed file, to locate problems found later
	warnings []Problem    // what the checks warned about; the spec is valid
}

// Metadata identifies a bottle.
type Metadata struct {
	// Name is the bottle's identity: a lowercase DNS label of at most 40
	// characters without "--".
	Name string `json:"name"`
}

// Spec is the desired state of a bottle.
type Spec struct {
	Guest string `json:"guest,omitempty"`
	Image string `json:"image"`
	// PullPolicy says when the host's Docker daemon pulls Image before the
	// guest is created: PullMissing (the default), PullAlways or PullNever.
	// It is not part of the guest's hash: changing it recreates nothing.
	PullPolicy  string            `json:"pullPolicy,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	EnvFromHost []string          `json:"envFromHost,omitempty"`
	// Daemons is nil when the file does not set it (the default, egress and
	// dns, is applied by the loader) and empty when it asks for none.
	Daemons    []string  `json:"daemons"`
	Egress     Egress    `json:"egress,omitempty"`
	AllowCIDRs []string  `json:"allowCIDRs,omitempty"`
	Resources  Resources `json:"resources,omitempty"`
	Network    Network   `json:"network,omitempty"`
	// Workspace, when set, mounts a host directory into the guest.
	Workspace *Workspace `json:"workspace,omitempty"`
	Suspend   bool       `json:"suspend,omitempty"`
	Protect   bool       `json:"protect,omitempty"`
}

// Egress configures the bundle's egress gate.
type Egress struct {
	// Allow lists the hosts the guest may reach through the gate: exact names
	// or "*.suffix", each with an optional ":port". Normalised by the loader.
	Allow []string `json:"allow,omitempty"`
}

// Resources sizes the guest.
type Resources struct {
	CPUs      int `json:"cpus,omitempty"`
	MemoryMiB int `json:"memoryMiB,omitempty"`
}

// Network configures the bottle's bridge network.
type Network struct {
	// Subnet pins the bottle's IPv4 subnet (a /29 or larger); empty means
	// allocate one from the reconciler's pool.
	Subnet string `json:"subnet,omitempty"`
}

// Runs reports whether the bundle runs daemon d.
func (s Spec) Runs(d string) bool {
	for _, x := range s.Daemons {
		if x == d {
			return true
		}
	}
	return false
}

// applyDefaults fills in what the file left out.
func (s *Spec) applyDefaults() {
	if s.Guest == "" {
		s.Guest = GuestSmolvm
	}
	if s.PullPolicy == "" {
		s.PullPolicy = PullMissing
	}
	if s.Daemons == nil {
		s.Daemons = []string{DaemonEgress, DaemonDNS}
	}
	if s.Resources.CPUs == 0 {
		s.Resources.CPUs = DefaultCPUs
	}
	if s.Resources.MemoryMiB == 0 {
		s.Resources.MemoryMiB = DefaultMemoryMiB
	}
}

// ReservedEnv lists the variables bottle-reconcile sets in guests itself
// (see bundle.GuestEnv); a spec may not set them in any case: some tools
// (Python's urllib among them) read proxy variables case-insensitively.
var ReservedEnv = []string{"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy", "all_proxy"}

// IsReservedEnv reports whether k is one of ReservedEnv, in any case.
func IsReservedEnv(k string) bool {
	for _, r := range ReservedEnv {
		if strings.EqualFold(r, k) {
			return true
		}
	}
	return false
}

// Pull policies (spec.pullPolicy): when the host's Docker daemon pulls the
// guest's image before the guest is created.
const (
	// PullMissing pulls only when the daemon does not have the image (the
	// default).
	PullMissing = "missing"
	// PullAlways pulls at every guest create, so a moved tag is picked up
	// then (and only then: a running guest is not recreated for it).
	PullAlways = "always"
	// PullNever never pulls: the image must already be on the host.
	PullNever = "never"
)
