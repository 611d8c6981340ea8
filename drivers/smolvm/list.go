package smolvm

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
)

// machine is the part of one `machine ls --json` row the driver reads
// (smolvm-cli.md §2, machine_status_json). Unknown keys are ignored, so new
// smolvm fields do not break the listing.
type machine struct {
	Name      string            `json:"name"`
	State     string            `json:"state"`
	Image     *string           `json:"image"`
	Labels    map[string]string `json:"labels"`
	Ephemeral bool              `json:"ephemeral"`
	PID       *int              `json:"pid"`
	CPUs      int               `json:"cpus"`
	MemoryMiB int               `json:"memory_mib"`
}

// parseList decodes `machine ls --json` and returns its rows keyed by name,
// since the array order is arbitrary (built from a HashMap).
func parseList(out []byte) (map[string]machine, error) {
	var rows []machine
	if err := json.Unmarshal(out, &rows); err != nil {
		return nil, fmt.Errorf("decode machine ls --json: %w", err)
	}
	byName := make(map[string]machine, len(rows))
	for _, m := range rows {
		if m.Name == "" {
			return nil, fmt.Errorf("decode machine ls --json: a row has no name")
		}
		byName[m.Name] = m
	}
	return byName, nil
}

// ours reports whether m is a machine bottle-reconcile manages. `machine run`
// VMs are ephemeral and never ours, whatever their labels say.
func (m machine) ours() bool {
	return !m.Ephemeral && m.Labels[bottle.LabelManagedBy] == bottle.ManagedByValue
}

// vmmPID is the pid of m's VMM while it runs, else 0.
func (m machine) vmmPID() int {
	if m.State == "running" && m.PID != nil {
		return *m.PID
	}
	return 0
}

// mapState normalises a smolvm RecordState (src/config.rs). Anything that is
// not running is stopped: `start` boots a fresh VMM for stopped, failed and
// unreachable machines. A frozen one is stopped too, but start refuses it,
// so resource marks it Broken.
func mapState(s string) bottle.State {
	switch s {
	case "running":
		return bottle.StateRunning
	case "created":
		return bottle.StateCreated
	case "stopped", "failed", "unreachable", "frozen":
		return bottle.StateStopped
	default:
		return bottle.StateUnknown
	}
}

// frozenBroken is why a frozen machine is replaced rather than started.
const frozenBroken = "frozen (a smolvm fork base): smolvm refuses to start it (vm_common.rs 1312-1327)"

// resource converts one of our rows to the reconciler's view.
func (m machine) resource() bottle.Resource {
	r := bottle.Labelled(Kind, bottle.RoleGuest, m.Name, m.Labels)
	r.State, r.Detail = mapState(m.State), m.State
	if m.State == "frozen" {
		// bottle-reconcile never forks, so someone else froze it; a start
		// would fail on every pass. The diff replaces a Broken guest.
		r.Broken = frozenBroken
	}
	return r
}

// resources returns our machines, sorted by name so callers see a stable
// order regardless of smolvm's.
func resources(byName map[string]machine) []bottle.Resource {
	var out []bottle.Resource
	for _, m := range byName {
		if m.ours() {
			out = append(out, m.resource())
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}
