package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Hash returns the hash of the spec fields that define the resource of the
// given role. Only fields whose change needs a new resource are included:
// suspend and protect are not, and neither are observed facts such as the
// allocated subnet, which the diff compares directly.
func Hash(role bottle.Role, s spec.Spec) string {
	return HashWith(role, s, "")
}

// HashWith is Hash with facts, what a driver makes the resource from beside
// the spec (HashFacter). Empty facts give Hash, so a driver with none, or
// whose settings are all defaults, keeps the hashes it had.
func HashWith(role bottle.Role, s spec.Spec, facts string) string {
	var v any
	switch role {
	case bottle.RoleNetwork:
		// The subnet is checked as an observed fact, not hashed. A docker
		// guest's network has no host address on its bridge (see dockernet),
		// so the guest kind decides the network's shape.
		shape := "internal-bridge"
		if s.Guest == spec.GuestDocker {
			shape = "internal-bridge-hostless"
		}
		v = struct {
			Shape string `json:"shape"`
		}{shape}
	case bottle.RoleBundle:
		v = struct {
			Daemons []string `json:"daemons"`
			Allow   []string `json:"allow"`
		}{sorted(s.Daemons), sorted(s.Egress.Allow)}
	case bottle.RoleGuest:
		// envFromHost contributes names only: its values are secrets and must
		// not be derivable from a label.
		v = struct {
			Guest       string            `json:"guest"`
			Image       string            `json:"image"`
			Env         map[string]string `json:"env"`
			EnvFromHost []string          `json:"envFromHost"`
			Daemons     []string          `json:"daemons"`
			AllowCIDRs  []string          `json:"allowCIDRs"`
			CPUs        int               `json:"cpus"`
			MemoryMiB   int               `json:"memoryMiB"`
			// omitempty: a bottle without one keeps the hash it had
			// before workspaces existed, so nothing is recreated for them.
			Workspace *spec.Workspace `json:"workspace,omitempty"`
		}{s.Guest, s.Image, s.Env, sorted(s.EnvFromHost), sorted(s.Daemons), sorted(s.AllowCIDRs), s.Resources.CPUs, s.Resources.MemoryMiB, s.Workspace}
	}
	b, err := json.Marshal(v) // maps marshal with sorted keys
	if err != nil {
		panic("reconciler: hash: " + err.Error()) // plain structs of strings cannot fail
	}
	if facts != "" {
		b = append(append(b, 0), facts...)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return out
}

// FactsDigest is the value of LabelFacts for facts, "" for none.
func FactsDigest(facts string) string {
	if facts == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(facts))
	return hex.EncodeToString(sum[:8])
}
