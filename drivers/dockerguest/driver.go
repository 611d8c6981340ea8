package dockerguest

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/go-logr/logr"

	"github.com/bottle-reconcile/bottle-reconcile/bottle"
	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/bottle-reconcile/bottle-reconcile/internal/hostfw"
	"github.com/bottle-reconcile/bottle-reconcile/internal/images"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Kind is the driver's Kind, also the value of LabelDriver on its guests.
const Kind = "docker-guest"

// Labels the driver adds to w.Labels.
const (
	// LabelDriver marks guests made by this driver, so a guest of another
	// kind is never listed here.
	LabelDriver = "dev.bottle-reconcile.driver"
	// LabelNetwork records the bottle network, to find the guest's address
	// on it (the same key the bundle driver uses).
	LabelNetwork = dockerx.LabelNetwork
	// LabelReach lists the bundle daemons the host firewall lets the guest
	// reach ("egress", "dns"), so Observe knows which rules should exist.
	LabelReach = "dev.bottle-reconcile.reach"
)

// Driver manages docker guests and their host firewall rules.
type Driver struct {
	api  dockerAPI
	sh   shellAPI // exec and cp; nil when api cannot do them
	fw   firewall
	net  guestNet
	opts Options
	log  logr.Logger
	// hadGuests says the last Observe saw guests (or none has run yet), so
	// the next one reads the firewall beside its list.
	hadGuests atomic.Bool
}

// New returns the driver. api is usually a *client.Client made with
// client.FromEnv and API version negotiation. The host firewall is changed
// with iptables, so the process needs CAP_NET_ADMIN.
func New(api dockerAPI, opts Options, log logr.Logger) (*Driver, error) {
	return newDriver(api, opts, log, hostfw.ExecRunner{})
}

func newDriver(api dockerAPI, opts Options, log logr.Logger, run runner) (*Driver, error) {
	if api == nil {
		return nil, errors.New("dockerguest: no Docker client")
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	d := &Driver{api: api, fw: newFirewall(run), net: procNet{cgroupPIDs: newCgroupPIDs("/sys/fs/cgroup", "/proc"), run: run}, opts: opts, log: log.WithName("dockerguest")}
	if d.opts.Images == nil {
		d.opts.Images = images.New(api, nil, d.log)
	}
	d.sh, _ = api.(shellAPI)
	d.hadGuests.Store(true)
	return d, nil
}

// Kind implements reconciler.Driver.
func (d *Driver) Kind() string { return Kind }

// Role implements reconciler.Driver.
func (d *Driver) Role() bottle.Role { return bottle.RoleGuest }

// NameFor implements reconciler.Namer: the guest is named apart from the
// bottle network, which is called bottle-<bottle>.
func (d *Driver) NameFor(bottle string) string { return "bottle-" + bottle + "-guest" }

// isGuest reports whether labels mark a guest this driver made, of any
// instance: guestFilter's test, for a listing of every managed container.
func isGuest(labels map[string]string) bool {
	return managed(labels) && labels[bottle.LabelRole] == string(bottle.RoleGuest) && labels[LabelDriver] == Kind
}

// guestFilter selects the guests this driver made, of every instance.
func guestFilter() filters.Args {
	return filters.NewArgs(
		filters.Arg("label", bottle.LabelManagedBy+"="+bottle.ManagedByValue),
		filters.Arg("label", bottle.LabelRole+"="+string(bottle.RoleGuest)),
		filters.Arg("label", LabelDriver+"="+Kind),
	)
}

// Observe implements reconciler.Driver with one ContainerList (shared in a
// pass with the bundle driver: dockerx.ManagedContainers) and, when
// there is a guest, one read of the host firewall. A guest whose rules are
// not all in place carries Drift, and so does a running guest whose routing
// table holds more than the route to its bundle: checking that reads its
// init's pid from its cgroup (the list has none; see pid.go) and its
// /proc/<pid>/net/route, with no Docker call.
//
// The firewall read runs iptables-save only when the host's ruleset
// changed since the last one (hostfw.NewFirewall); otherwise it is one
// netlink call. So a pass over one bottle (bottle.WithScope: a heal's)
// reads it too, and sees rules removed a moment ago, at next to no cost.
func (d *Driver) Observe(ctx context.Context) ([]bottle.Resource, error) {
	// The firewall read may run iptables-save: while the last pass saw
	// guests, it runs beside the list rather than after it.
	type fwRead struct {
		rs  hostfw.Table
		err error
	}
	var early chan fwRead
	if d.hadGuests.Load() {
		early = make(chan fwRead, 1)
		go func() {
			rs, err := d.fw.Read(ctx)
			early <- fwRead{rs, err}
		}()
	}
	cs, err := dockerx.ManagedContainers(ctx, d.api)
	if err != nil {
		return nil, wrap("list guest containers", err)
	}
	out := make([]bottle.Resource, 0, len(cs))
	for _, c := range cs {
		if isGuest(c.Labels) {
			out = append(out, guestResource(c))
		}
	}
	if bottle.ScopeOf(ctx) == "" {
		// One bottle's list says nothing of the others' guests.
		d.hadGuests.Store(len(out) > 0)
	}
	if len(out) == 0 {
		if early != nil {
			<-early // nothing of Observe outlives it
		}
		return out, nil
	}
	// Each running guest's routes are read from /proc while iptables-save
	// runs, a few guests at a time.
	rules := make([]guestRules, len(out))
	ruleErrs := make([]error, len(out))
	routes := make([]string, len(out))
	var wg sync.WaitGroup
	slots := make(chan struct{}, routeReaders)
	for i := range out {
		rules[i], ruleErrs[i] = rulesFor(out[i])
		if ruleErrs[i] == nil && out[i].State == bottle.StateRunning {
			wg.Go(func() {
				slots <- struct{}{}
				defer func() { <-slots }()
				routes[i] = d.routeDrift(ctx, out[i], rules[i].Bundle)
			})
		}
	}
	var fr fwRead
	if early != nil {
		fr = <-early
	} else {
		fr.rs, fr.err = d.fw.Read(ctx)
	}
	wg.Wait()
	if fr.err != nil {
		return nil, fmt.Errorf("dockerguest: observe guests: %w", fr.err)
	}
	for i := range out {
		err := ruleErrs[i]
		if errors.Is(err, errNoAddr) && out[i].State != bottle.StateRunning {
			// A daemon killed between create and start can leave a
			// container with no endpoint address: it can get no rules, so
			// no start is safe, and no pass would ever repair it.
			out[i].Broken = "never got an address on its bottle network (left half made, e.g. by a Docker daemon crash)"
			continue
		}
		if err != nil {
			out[i].Drift = "host firewall rules cannot be checked: " + err.Error()
			continue
		}
		out[i].Drift = drift(fr.rs, rules[i])
		if out[i].Drift == "" {
			out[i].Drift = routes[i]
		}
	}
	// Sorted so repeated passes see the same order whatever the daemon's.
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// routeReaders bounds the guests whose routes are read at once: the reads
// are short syscalls, so a few in flight keep every core busy.
const routeReaders = 8

func guestResource(c container.Summary) bottle.Resource {
	return dockerx.ContainerResource(c, Kind, bottle.RoleGuest)
}

// safeWord is what may go into a rule comment: it is split on spaces when
// read back.
var safeWord = regexp.MustCompile(`^[A-Za-z0-9._:@+-]{1,100}$`)

// rulesFor works out a guest's firewall rules from what it carries.
func rulesFor(r bottle.Resource) (guestRules, error) {
	reach := strings.Split(r.Labels[LabelReach], ",")
	g := guestRules{
		Instance: r.Instance,
		Bottle:   r.Bottle,
		Guest:    r.Addr,
		Egress:   slices.Contains(reach, spec.DaemonEgress),
		DNS:      slices.Contains(reach, spec.DaemonDNS),
	}
	g.Bundle, _ = netip.ParseAddr(r.Labels[bottle.LabelBundleAddr])
	return g, g.check()
}

func (g guestRules) check() error {
	switch {
	case !safeWord.MatchString(g.Instance) || !safeWord.MatchString(g.Bottle):
		return fmt.Errorf("instance %q or bottle %q is empty or has characters a rule comment cannot carry", g.Instance, g.Bottle)
	case !g.Guest.Is4():
		return errNoAddr
	case !g.Bundle.Is4():
		return fmt.Errorf("guest has no IPv4 %s label", bottle.LabelBundleAddr)
	}
	return nil
}

// Create implements reconciler.Driver. Fail-closed: the container is created
// stopped, its host firewall rules go in, and only then is it started; if a
// step fails, what was done is undone. A container of that name, ours or
// not, is a conflict (the reconciler deletes first).
func (d *Driver) Create(ctx context.Context, w bottle.Want) (bottle.Resource, error) {
	op := fmt.Sprintf("create guest %q", w.Name)
	g, err := checkWant(w)
	if err != nil {
		return bottle.Resource{}, fmt.Errorf("dockerguest: %s: %w", op, err)
	}
	instance := w.Labels[bottle.LabelInstance]
	// The same image step as smolvm guests: the host's daemon pulls the
	// image as spec.pullPolicy says, with the host's credentials.
	if _, err := d.opts.Images.Ensure(ctx, w.Guest.Image, w.Guest.PullPolicy); err != nil {
		return bottle.Resource{}, fmt.Errorf("dockerguest: %s: %w", op, err)
	}
	env := guestEnv(w)

	reach := []string{}
	if g.Egress {
		reach = append(reach, spec.DaemonEgress)
	}
	if g.DNS {
		reach = append(reach, spec.DaemonDNS)
	}
	labels := dockerx.WithLabels(w.Labels,
		bottle.LabelRole, string(bottle.RoleGuest),
		LabelDriver, Kind,
		LabelNetwork, w.Network,
		LabelReach, strings.Join(reach, ","),
		bottle.LabelBundleAddr, w.BundleAddr.String())
	// No lookup of the name first: Docker refuses a taken name with a
	// conflict, and only then is it worth a call to say whose it is.
	resp, err := d.api.ContainerCreate(ctx,
		&container.Config{Image: w.Guest.Image, Env: env, Labels: labels},
		d.hostConfig(w),
		&network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
			w.Network: {IPAMConfig: &network.EndpointIPAMConfig{IPv4Address: w.GuestAddr.String()}},
		}}, nil, w.Name)
	if cerrdefs.IsConflict(err) {
		// Made meanwhile by someone else: say by whom.
		if err := dockerx.ContainerNameTaken(ctx, d.api, "dockerguest", op, "guest", w.Name, instance); err != nil {
			return bottle.Resource{}, err
		}
	}
	if err != nil {
		return bottle.Resource{}, wrap(op, err)
	}

	// From here on a failure undoes everything: nothing half made stays.
	undo := func(err error, rules bool) error {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if rmErr := d.api.ContainerRemove(uctx, resp.ID, container.RemoveOptions{Force: true}); rmErr != nil && !cerrdefs.IsNotFound(rmErr) {
			err = errors.Join(err, wrap(fmt.Sprintf("remove failed guest %q", w.Name), rmErr))
		}
		if rules {
			if fwErr := d.fw.remove(uctx, g.Comment()); fwErr != nil {
				err = errors.Join(err, fmt.Errorf("dockerguest: remove rules of failed guest %q: %w", w.Name, fwErr))
			}
		}
		return err
	}
	if _, err := d.fw.install(ctx, g, nil); err != nil {
		// A failed transaction leaves nothing, but one cut off by ctx may
		// have applied: remove the rules too.
		return bottle.Resource{}, undo(fmt.Errorf("dockerguest: %s: %w", op, err), true)
	}
	if err := d.api.ContainerStart(ctx, resp.ID, container.StartOptions{}); err != nil {
		return bottle.Resource{}, undo(wrap(op+": start", err), true)
	}
	if err := d.narrowGuest(ctx, resp.ID, g.Bundle); err != nil {
		return bottle.Resource{}, undo(fmt.Errorf("dockerguest: %s: %w", op, err), true)
	}
	d.log.V(1).Info("guest created", "guest", w.Name, "addr", w.GuestAddr.String(), "bundle", w.BundleAddr.String())
	// What a list would say of it now, without the call: narrowGuest just
	// saw it running.
	r := bottle.Labelled(Kind, bottle.RoleGuest, w.Name, labels)
	r.ID, r.State, r.Addr = resp.ID, bottle.StateRunning, w.GuestAddr
	return r, nil
}

// checkWant makes sure w describes a guest that will be observed and whose
// rules can be written, and returns those rules.
func checkWant(w bottle.Want) (guestRules, error) {
	if err := dockerx.CheckWantLabels(w); err != nil {
		return guestRules{}, err
	}
	if w.Guest.Image == "" {
		return guestRules{}, fmt.Errorf("spec.image is empty: %w", cerrdefs.ErrInvalidArgument)
	}
	if w.Network == "" || !w.GuestAddr.Is4() || !w.BundleAddr.Is4() || w.GuestAddr == w.BundleAddr ||
		(w.Subnet.IsValid() && (!w.Subnet.Contains(w.GuestAddr) || !w.Subnet.Contains(w.BundleAddr))) {
		return guestRules{}, fmt.Errorf("need a network and IPv4 guest and bundle addresses in its subnet (network %q, guest %s, bundle %s, subnet %s): %w",
			w.Network, w.GuestAddr, w.BundleAddr, w.Subnet, cerrdefs.ErrInvalidArgument)
	}
	g := guestRules{
		Instance: w.Labels[bottle.LabelInstance],
		Bottle:   w.Bottle,
		Guest:    w.GuestAddr,
		Bundle:   w.BundleAddr,
		Egress:   w.Guest.Runs(spec.DaemonEgress),
		DNS:      w.Guest.Runs(spec.DaemonDNS),
	}
	if b := w.Labels[bottle.LabelBottle]; b != "" && b != w.Bottle {
		return guestRules{}, fmt.Errorf("bottle label %q is not the bottle %q: %w", b, w.Bottle, cerrdefs.ErrInvalidArgument)
	}
	if err := g.check(); err != nil {
		return guestRules{}, fmt.Errorf("%w: %w", err, cerrdefs.ErrInvalidArgument)
	}
	if ws := w.Guest.Workspace; ws != nil {
		if err := ws.CheckPaths(); err != nil {
			return guestRules{}, fmt.Errorf("%w: %w", err, cerrdefs.ErrInvalidArgument)
		}
	}
	return g, nil
}

// guestEnv is the guest's environment as Docker takes it: the variables
// the reconciler resolved (spec.env, the host's envFromHost values, the
// bundle's proxy settings), in their order. Docker keeps them in the
// container's config, readable by root only, not on a command line.
func guestEnv(w bottle.Want) []string {
	out := make([]string, 0, len(w.Guest.Env))
	for _, v := range w.Guest.Env {
		out = append(out, v.Name+"="+v.Value)
	}
	return out
}

// hostConfig is the hardened runtime setup of a guest: no capabilities, no
// mounts but its workspace, no published ports, no extra hosts, and only the
// bottle network.
func (d *Driver) hostConfig(w bottle.Want) *container.HostConfig {
	pids := d.opts.PidsLimit
	mem := int64(w.Guest.MemoryMiB) << 20
	sysctls := dockerx.NoIPv6()
	return &container.HostConfig{
		NetworkMode: container.NetworkMode(w.Network),
		Privileged:  false,
		CapDrop:     []string{"ALL"},
		SecurityOpt: []string{"no-new-privileges"},
		Sysctls:     sysctls,
		// Always the bundle, even when it runs no resolver: otherwise
		// Docker's embedded DNS forwards the guest's queries to the host's
		// resolvers, from the host's network namespace where the guest's
		// firewall rules do not apply.
		DNS:     []string{w.BundleAddr.String()},
		IpcMode: container.IPCModePrivate,
		// "no": the reconciler heals a dead guest, after checking its rules.
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyDisabled},
		LogConfig:     dockerx.BoundedLogs(),
		Mounts:        workspaceMounts(w.Guest.Workspace),
		Resources: container.Resources{
			NanoCPUs:   int64(w.Guest.CPUs) * 1e9,
			Memory:     mem,
			MemorySwap: mem, // no swap on top
			PidsLimit:  &pids,
		},
	}
}

// Start implements reconciler.Starter. It puts the guest's firewall rules
// back first, if they are not all there: a guest never runs without them.
// A guest Stop froze is thawed, with its processes as they were; any other
// is started, in a fresh network namespace whose routes are then narrowed.
func (d *Driver) Start(ctx context.Context, r bottle.Resource) error {
	op := fmt.Sprintf("start guest %q", r.Name)
	// What Docker says of the guest and the read of the host firewall do
	// not depend on each other, and each takes tens of milliseconds at a
	// few hundred bottles: they run at once. Nothing is written until
	// Docker has answered: a guest that is gone gets no rules, as they
	// would outlive it.
	type inspected struct {
		c   container.InspectResponse
		err error
	}
	ic := make(chan inspected, 1)
	go func() {
		c, err := d.api.ContainerInspect(ctx, dockerx.Ref(r))
		ic <- inspected{c, err}
	}()
	var in inspected
	g, _, err := d.installRules(ctx, r, func() error { in = <-ic; return in.err })
	if in.err != nil {
		return wrap(op, in.err)
	}
	if err != nil {
		return fmt.Errorf("dockerguest: %s: %w", op, err)
	}
	c := in.c
	if err := d.narrowRunning(ctx, r, g, &c); err != nil {
		return fmt.Errorf("dockerguest: %s: %w", op, err)
	}
	if c.State != nil && c.State.Paused {
		// Its routes were narrowed above: a freeze keeps its namespace.
		if err := d.api.ContainerUnpause(ctx, dockerx.Ref(r)); err != nil {
			return wrap(op+": thaw", err)
		}
		return nil
	}
	if err := d.api.ContainerStart(ctx, dockerx.Ref(r), container.StartOptions{}); err != nil {
		if staleTask(err) {
			// A Docker daemon killed while it started the container leaves
			// containerd's task behind, and no start succeeds again: the
			// container goes, so the next pass creates it afresh.
			if derr := d.Delete(ctx, r); derr != nil {
				return fmt.Errorf("dockerguest: %s: %w; removing it failed too: %w", op, err, derr)
			}
			return fmt.Errorf("dockerguest: %s: Docker holds a stale task for it (left by a daemon crash), so it can never start; removed it, and the next pass creates it again: %w", op, err)
		}
		return wrap(op, err)
	}
	// A start makes a fresh network namespace, with Docker's routes.
	if err := d.narrowGuest(ctx, dockerx.Ref(r), g.Bundle); err != nil {
		return fmt.Errorf("dockerguest: %s: %w", op, err)
	}
	return nil
}

// staleTask reports whether a start failed because containerd still has a
// task for the container ("task ...: already exists").
func staleTask(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "task ") && strings.Contains(msg, "already exists")
}

// Stop implements reconciler.Starter. The reconciler stops a guest only
// while its bundle is replaced, so Stop freezes it (docker pause, the
// cgroup freezer): nothing in it runs, and Start thaws it in about a tenth
// of what a stop and a start take, with the agent's processes and memory as
// they were. A guest that is missing, not running or already frozen is
// left as it is.
func (d *Driver) Stop(ctx context.Context, r bottle.Resource) error {
	op := fmt.Sprintf("stop guest %q", r.Name)
	err := d.api.ContainerPause(ctx, dockerx.Ref(r))
	if err == nil || cerrdefs.IsNotFound(err) {
		return nil
	}
	// Docker refuses to pause a container that is not running or is
	// paused already; that is this call's goal met.
	c, ierr := d.api.ContainerInspect(ctx, dockerx.Ref(r))
	switch {
	case cerrdefs.IsNotFound(ierr):
		return nil
	case ierr == nil && c.State != nil && (c.State.Paused || !c.State.Running):
		return nil
	}
	return wrap(op+": freeze", err)
}

// Repair implements reconciler.Repairer: it installs the guest's firewall
// rules, and the chain and jumps they need, where they are not all in
// place, and narrows a running guest's routes to its bundle again. What is
// in place is left alone.
func (d *Driver) Repair(ctx context.Context, r bottle.Resource) error {
	g, _, err := d.installRules(ctx, r, nil)
	if err != nil {
		return err
	}
	c, err := d.api.ContainerInspect(ctx, dockerx.Ref(r))
	switch {
	case cerrdefs.IsNotFound(err):
		return nil // gone: nothing runs without its rules
	case err != nil:
		return wrap(fmt.Sprintf("repair routes of guest %q", r.Name), err)
	}
	return d.narrowRunning(ctx, r, g, &c)
}

// installRules puts r's firewall rules, and the chain and jumps they need,
// in place where they are not all there, and says whether it changed any;
// wait is firewall.install's.
func (d *Driver) installRules(ctx context.Context, r bottle.Resource, wait func() error) (guestRules, bool, error) {
	g, err := rulesFor(r)
	if err != nil {
		return g, false, fmt.Errorf("dockerguest: repair firewall of guest %q: %w", r.Name, err)
	}
	changed, err := d.fw.install(ctx, g, wait)
	if err != nil {
		return g, false, fmt.Errorf("dockerguest: repair firewall of guest %q: %w", r.Name, err)
	}
	if changed {
		d.log.V(1).Info("firewall rules put back", "guest", r.Name, "addr", g.Guest.String())
	}
	return g, changed, nil
}

// narrowRunning narrows the routes of the guest c to g's bundle, if it
// runs (a frozen guest does: a freeze keeps its namespace); Start narrows
// the namespace of a guest it starts.
func (d *Driver) narrowRunning(ctx context.Context, r bottle.Resource, g guestRules, c *container.InspectResponse) error {
	if c.State == nil || !c.State.Running {
		return nil
	}
	if err := d.narrow(ctx, c.State.Pid, g.Bundle); err != nil {
		return fmt.Errorf("dockerguest: repair routes of guest %q: %w", r.Name, err)
	}
	return nil
}

// narrowGuest narrows the routes of the running container id.
func (d *Driver) narrowGuest(ctx context.Context, id string, bundleAddr netip.Addr) error {
	c, err := d.api.ContainerInspect(ctx, id)
	if err != nil {
		return wrap("inspect started guest", err)
	}
	if c.State == nil || !c.State.Running {
		// A precondition, where a bundle's early stop is unavailable
		// (sidecar's stopped): the image's command is the spec's.
		return fmt.Errorf("guest stopped as it started: %w", cerrdefs.ErrFailedPrecondition)
	}
	return d.narrow(ctx, c.State.Pid, bundleAddr)
}

// routeDrift says how a running guest's routes differ from its bundle's
// /32 alone, or "".
func (d *Driver) routeDrift(ctx context.Context, r bottle.Resource, bundleAddr netip.Addr) string {
	pid, err := d.net.netPID(r.ID)
	if errors.Is(err, errPIDUnknown) {
		c, err := d.api.ContainerInspect(ctx, dockerx.Ref(r))
		switch {
		case cerrdefs.IsNotFound(err):
			return "" // gone since the list: the next pass sees it missing
		case err != nil:
			return "guest routes cannot be checked: " + err.Error()
		case c.State == nil || !c.State.Running:
			return ""
		}
		pid = c.State.Pid
	} else if err != nil {
		return "guest routes cannot be checked: " + err.Error()
	}
	rs, err := d.net.routes(ctx, pid)
	if err != nil {
		return "guest routes cannot be checked: " + err.Error()
	}
	return routeDrift(rs, bundleAddr)
}

// Delete implements reconciler.Driver: a forced remove of the guest, then
// its firewall rules. A missing guest is success, and its rules still go.
func (d *Driver) Delete(ctx context.Context, r bottle.Resource) error {
	op := fmt.Sprintf("remove guest %q", r.Name)
	instance, name := r.Instance, r.Bottle
	c, err := d.api.ContainerInspect(ctx, dockerx.Ref(r))
	switch {
	case cerrdefs.IsNotFound(err):
	case err != nil:
		return wrap(op, err)
	case c.Config == nil || !managed(c.Config.Labels):
		return fmt.Errorf("dockerguest: %s: not a guest made by bottle-reconcile; leaving it alone: %w", op, cerrdefs.ErrConflict)
	default:
		// By name, it may find what another instance made since r was observed.
		if err := dockerx.OtherInstance("dockerguest", op, "guest", c.Config.Labels, r.Instance); err != nil {
			return err
		}
		instance, name = c.Config.Labels[bottle.LabelInstance], c.Config.Labels[bottle.LabelBottle]
		if err := dockerx.RemoveContainer(ctx, d.api, c.ID); err != nil {
			return wrap(op, err)
		}
	}
	if instance == "" || name == "" {
		return nil
	}
	// The rules are tagged by instance and bottle, not by container: while
	// another guest of the bottle exists (a stray, or a newer one than r),
	// they are its rules too and stay; its Repair trims them to its own.
	f := guestFilter()
	f.Add("label", bottle.LabelInstance+"="+instance)
	f.Add("label", bottle.LabelBottle+"="+name)
	others, err := d.api.ContainerList(ctx, container.ListOptions{All: true, Filters: f})
	if err != nil {
		return wrap(op+": list the bottle's other guests", err)
	}
	if len(others) > 0 {
		d.log.V(1).Info("firewall rules kept for another guest of the bottle", "guest", r.Name, "bottle", name)
		return nil
	}
	// The rules r was observed with, when it names the bottle found.
	if g, gerr := rulesFor(r); gerr == nil && g.Instance == instance && g.Bottle == name {
		err = d.fw.removeKnown(ctx, g)
	} else {
		err = d.fw.remove(ctx, ruleComment(instance, name))
	}
	if err != nil {
		return fmt.Errorf("dockerguest: %s: %w", op, err)
	}
	return nil
}

// workspaceMounts is the guest's one bind mount, if its spec has a
// workspace: rprivate, so no mount made on either side later propagates to
// the other, and read-only when asked. Docker refuses a source that is not
// there rather than creating it.
func workspaceMounts(ws *spec.Workspace) []mount.Mount {
	if ws == nil {
		return nil
	}
	return []mount.Mount{{
		Type:        mount.TypeBind,
		Source:      ws.HostPath,
		Target:      ws.GuestPath,
		ReadOnly:    ws.ReadOnly,
		BindOptions: &mount.BindOptions{Propagation: mount.PropagationRPrivate},
	}}
}
