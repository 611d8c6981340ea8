package reconciler

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"slices"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Hash returns the hash of what the resource of the given role is made
// from, resolved from s: HashWant of its role inputs.
func Hash(role bottle.Role, s spec.Spec) string {
	return HashWith(role, s, "")
}

// HashWith is Hash with facts, what a driver makes the resource from beside
// the spec (HashFacter).
func HashWith(role bottle.Role, s spec.Spec, facts string) string {
	w := bottle.Want{Role: role}
	inputs(&w, s)
	return HashWant(w, facts)
}

// HashWant returns the hash of w's role inputs, what its driver receives, so
// a change to anything a driver reads makes a new resource. Only inputs
// whose change needs a new resource are included: the pull policy is not,
// and neither are observed facts such as the allocated subnet or the
// addresses that follow from it, which the diff compares directly. Facts
// (HashFacter) are appended when there are any: a driver with none, or whose
// settings are all defaults, keeps the hashes it had.
//
// The encoding is the one hashes had when they were computed from the spec
// itself: an upgrade must not recreate every bottle (reconciler's golden
// hash test holds it).
func HashWant(w bottle.Want, facts string) string {
	var v any
	switch w.Role {
	case bottle.RoleNetwork:
		// The subnet is checked as an observed fact, not hashed.
		v = struct {
			Shape bottle.NetworkShape `json:"shape"`
		}{w.Shape}
	case bottle.RoleBundle:
		v = struct {
			Daemons []string `json:"daemons"`
			Allow   []string `json:"allow"`
		}{sorted(w.Bundle.Daemons), sorted(w.Bundle.Allow)}
	case bottle.RoleGuest:
		g := w.Guest
		// The one exception to "the hash covers what the driver receives":
		// envFromHost contributes names only. Its values are secrets, and a
		// label must not let anyone derive one. The bundle's proxy settings
		// follow from the daemons and the bundle address, both covered.
		var env map[string]string
		if g.EmptySpecEnv {
			env = map[string]string{}
		}
		host := []string{}
		for _, e := range g.Env {
			switch e.Source {
			case bottle.EnvFromSpec:
				if env == nil {
					env = map[string]string{}
				}
				env[e.Name] = e.Value
			case bottle.EnvFromHost:
				host = append(host, e.Name)
			}
		}
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
		}{g.Kind, g.Image, env, sorted(host), sorted(g.Daemons), sorted(g.AllowCIDRs), g.CPUs, g.MemoryMiB, g.Workspace}
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
