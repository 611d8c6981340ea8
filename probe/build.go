package probe

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"

	"github.com/bottle-reconcile/bottle-reconcile/bundle"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

// Target is everything a plan is built from: the bottle as observed, what
// its spec says, and the canaries running for this probe.
type Target struct {
	Bottle    string
	GuestKind string // spec.GuestDocker or spec.GuestSmolvm
	Subnet    netip.Prefix
	Gateway   netip.Addr // the host's side of the bottle bridge (.1)
	Bundle    netip.Addr // .2
	Daemons   []string   // what the spec runs in the bundle
	Allow     []spec.HostRule
	// HostAddrs are the host's own addresses other than loopback: LAN,
	// docker0, every bridge's gateway.
	HostAddrs []netip.Addr
	// PublicAddrs are the host's addresses outside every refused range,
	// which bundles refuse by address (bundle.Config.HostAddrs).
	PublicAddrs []netip.Addr
	Peers       []Peer // the instance's other bottles
	Canary      Canaries

	// MetadataToken is served at 169.254.169.254:80 by a stand-in, when
	// there is one; without it any data from that address fails the probe.
	MetadataToken string
	// Nonce labels the DNS exfiltration names; a canary upstream resolver
	// must never see it.
	Nonce string
	// DNSControl is an allowlisted name the upstream resolver answers: the
	// control that proves queries do reach it. Empty: no such control.
	DNSControl string
	// Rebind lists allowlisted names whose answers point into refused
	// ranges; the resolver must drop the answers and the proxy refuse them.
	Rebind []Rebind
	// Workspace is the spec's mounted host directory, if any: the one host
	// filesystem the guest may see.
	Workspace *spec.Workspace
}

// Peer is another bottle of the same instance.
type Peer struct {
	Bottle        string
	Bundle, Guest netip.Addr
}

// Rebind is an allowlisted name that resolves to refused addresses.
type Rebind struct {
	Name   string
	BadIPs []string // what the upstream answers; the guest must never get these
	// Proxy says to also ask the proxy for the name. The proxy resolves
	// through the same upstream as the bundle's resolver, and must refuse
	// the addresses it gets (403), not merely fail to resolve them.
	Proxy bool
}

// Canaries are the host's canary servers: each answers Token.
type Canaries struct {
	Token string
	// Mark is this run's: checks send it to the canaries, which count
	// traffic carrying another run's mark as stale.
	Mark     string
	Loopback uint16 // HTTP on 127.0.0.1
	Any      uint16 // HTTP on 0.0.0.0
	UDP      uint16 // UDP on 0.0.0.0
}

// Names used for denied targets. .invalid never resolves anywhere (RFC
// 6761), so a proxy that wrongly tried would still send nothing out.
const (
	deniedName = "denied.bottle-probe.invalid"
	evilName   = "evil.bottle-probe.invalid"
	exfilZone  = "exfil.bottle-probe.invalid"
)

// metadataAddr is the cloud metadata service's address.
const metadataAddr = "169.254.169.254"

// smolvmGateway is the guest-side gateway of smolvm's virtio-net backend,
// which PR #784 maps onto the host's loopback.
const smolvmGateway = "100.96.0.1"

// publicV4 are public addresses dialled only to show there is no route:
// a bottle network is internal, so nothing is sent.
var publicV4 = []string{"1.1.1.1", "8.8.8.8"}

// BuildPlan turns a target into the checks to run. It is pure, so the plan
// can be tested without a bottle.
func BuildPlan(t Target) Plan {
	b := &builder{t: t}
	b.build()
	return Plan{Checks: b.checks}
}

type builder struct {
	t      Target
	checks []Check
	group  int
	n      int
}

func (b *builder) section(g int) { b.group, b.n = g, 0 }

func (b *builder) add(c Check) {
	b.n++
	c.ID = strconv.Itoa(b.group) + "." + strconv.Itoa(b.n)
	if c.Expect == "" {
		c.Expect = Blocked
	}
	if c.Kind == KindHTTP || c.Kind == KindUDP || c.Kind == KindProxy {
		c.Mark = b.t.Canary.Mark
	}
	b.checks = append(b.checks, c)
}

func ap(a netip.Addr, port uint16) string { return netip.AddrPortFrom(a, port).String() }

func hp(host string, port uint16) string {
	if a, err := netip.ParseAddr(host); err == nil {
		return ap(a, port)
	}
	return host + ":" + strconv.Itoa(int(port))
}

func (b *builder) egress() bool { return slices.Contains(b.t.Daemons, spec.DaemonEgress) }
func (b *builder) dns() bool    { return slices.Contains(b.t.Daemons, spec.DaemonDNS) }
func (b *builder) proxy() string {
	return ap(b.t.Bundle, bundle.ProxyPort)
}

// viaProxy adds a request through the bottle's own proxy that must be
// refused with 403.
func (b *builder) viaProxy(name, method, target, host string) {
	if !b.egress() {
		return
	}
	b.add(Check{Name: name, Kind: KindProxy, Addr: b.proxy(), Method: method, Target: target, Host: host,
		Token: b.t.Canary.Token, Status: http.StatusForbidden})
}

// build adds the checks section by section; a section's number is its
// checks' group in their IDs.
func (b *builder) build() {
	for g, section := range []func(){
		b.controls, b.metadata, b.hostAddrs, b.bundlePorts, b.proxyPivot, b.allowlist, b.bypass,
		b.dnsExfil, b.rebinding, b.portScoping, b.ipv6, b.udpICMP, b.peers, b.dockerAndFiles, b.publicAddrs,
	} {
		b.section(g)
		section()
	}
}

func (b *builder) bundleDNS() string { return ap(b.t.Bundle, bundle.DNSPort) }

// controls (0): without them a guest with no network at all would pass
// every other probe.
func (b *builder) controls() {
	if b.egress() {
		b.add(Check{Name: "control: the bundle's proxy answers", Kind: KindTCP, Expect: Allowed, Addr: b.proxy()})
	}
	if b.dns() {
		b.add(Check{Name: "control: the bundle's resolver answers", Kind: KindDNS, Expect: Allowed, Addr: b.bundleDNS(),
			Query: "control." + deniedName, DNSWant: DNSReply})
		if b.t.DNSControl != "" {
			b.add(Check{Name: "control: an allowlisted name resolves via the bundle", Kind: KindDNS, Expect: Allowed,
				Addr: b.bundleDNS(), Query: b.t.DNSControl})
		}
	}
}

// metadata (1): the cloud metadata service.
func (b *builder) metadata() {
	md := netip.MustParseAddr(metadataAddr)
	b.add(Check{Name: "metadata 169.254.169.254:80 direct", Kind: KindHTTP, Addr: ap(md, 80), Token: b.t.MetadataToken})
	b.viaProxy("metadata via proxy (absolute URI)", http.MethodGet, "http://169.254.169.254/latest/meta-data/", "")
	b.viaProxy("metadata via proxy (CONNECT)", http.MethodConnect, "169.254.169.254:80", "")
}

// direct are the host's addresses a guest might dial directly: the bridge
// gateway, the host's own, and smolvm's gateway for a smolvm guest.
func (b *builder) direct() []netip.Addr {
	direct := []netip.Addr{b.t.Gateway}
	for _, a := range b.t.HostAddrs {
		if !slices.Contains(direct, a) {
			direct = append(direct, a)
		}
	}
	if b.t.GuestKind == spec.GuestSmolvm {
		direct = append(direct, netip.MustParseAddr(smolvmGateway))
	}
	return direct
}

// hostAddrs (2): the host's loopback in every spelling through the proxy,
// and its other addresses directly.
func (b *builder) hostAddrs() {
	t, tok := b.t, b.t.Canary.Token
	lp := strconv.Itoa(int(t.Canary.Loopback))
	for _, h := range []string{"127.0.0.1", "127.1", "2130706433", "0x7f000001", "[::1]", "[::ffff:127.0.0.1]", "localhost"} {
		b.viaProxy("host loopback "+h+" via proxy (absolute URI)", http.MethodGet, "http://"+h+":"+lp+"/", "")
	}
	for _, h := range []string{"127.0.0.1", "[::1]", "0.0.0.0"} {
		b.viaProxy("host loopback "+h+" via proxy (CONNECT)", http.MethodConnect, h+":"+lp, "")
	}
	b.add(Check{Name: "127.0.0.1 canary port from the guest's own loopback", Kind: KindHTTP,
		Addr: ap(netip.MustParseAddr("127.0.0.1"), t.Canary.Loopback), Token: tok})
	for _, a := range b.direct() {
		b.add(Check{Name: "host " + a.String() + " canary direct", Kind: KindHTTP, Addr: ap(a, t.Canary.Any), Token: tok})
	}
	b.add(Check{Name: "host loopback canary via the bridge gateway", Kind: KindHTTP, Addr: ap(t.Gateway, t.Canary.Loopback), Token: tok})
	b.viaProxy("host canary at the bridge gateway via proxy", http.MethodConnect, ap(t.Gateway, t.Canary.Any), "")
	for _, a := range t.HostAddrs {
		if a != t.Gateway {
			b.viaProxy("host canary at "+a.String()+" via proxy", http.MethodGet, "http://"+ap(a, t.Canary.Any)+"/", "")
			break // one is enough: every private range is refused alike
		}
	}
}

// bundlePorts (3): the bundle's ports.
func (b *builder) bundlePorts() {
	t := b.t
	var open []int
	if b.egress() {
		open = append(open, bundle.ProxyPort)
	}
	if b.dns() {
		open = append(open, bundle.DNSPort)
	}
	b.add(Check{Name: "bundle TCP scan 1-65535 (only " + ints(open) + " may be open)", Kind: KindScan, Addr: t.Bundle.String(), Ports: open})
	b.add(Check{Name: "bundle control port 9099 on the bundle address", Kind: KindHTTP, Addr: ap(t.Bundle, 9099)})
	if len(open) > 0 {
		// The scan's twin: a scan allowing nothing must find the daemons'
		// ports, or a scanner that saw nothing would pass above. Only over
		// their span: the full range is the host test's (TestScanFindsWhatIsOpen),
		// and a second full scan would double a probe run.
		lo, hi := slices.Min(open), slices.Max(open)
		b.add(Check{Name: fmt.Sprintf("control: a TCP scan of bundle ports %d-%d finds %s open", lo, hi, ints(open)),
			Kind: KindScan, Expect: Allowed, Addr: t.Bundle.String(), ScanFrom: lo, ScanTo: hi})
	}
}

// proxyPivot (4): the proxy as a pivot to its own loopback or itself.
func (b *builder) proxyPivot() {
	b.viaProxy("CONNECT to the bundle's control port", http.MethodConnect, ap(b.t.Bundle, 9099), "")
	b.viaProxy("CONNECT to 127.0.0.1:9099", http.MethodConnect, "127.0.0.1:9099", "")
	b.viaProxy("CONNECT to localhost:9099", http.MethodConnect, "localhost:9099", "")
	b.viaProxy("CONNECT to the proxy itself", http.MethodConnect, b.proxy(), "")
	b.viaProxy("GET http://127.0.0.1:9099/healthz", http.MethodGet, "http://127.0.0.1:9099/healthz", "")
	b.viaProxy("GET http://localhost:9099/healthz", http.MethodGet, "http://localhost:9099/healthz", "")
}

// allowlist (5): allowlist basics.
func (b *builder) allowlist() {
	b.viaProxy("CONNECT to a name not allowlisted", http.MethodConnect, deniedName+":443", "")
	b.viaProxy("absolute-URI GET of a name not allowlisted", http.MethodGet, "http://"+deniedName+"/", "")
	allowed := b.allowedName()
	if allowed == "" {
		allowed = deniedName
	}
	b.viaProxy("Host header differing from the URI ("+allowed+" vs "+evilName+")", http.MethodGet, "http://"+allowed+"/", evilName)
}

// bypass (6): the proxy bypassed: direct dials with no proxy variables.
func (b *builder) bypass() {
	for _, ip := range publicV4[:1] {
		b.add(Check{Name: "direct TCP to public " + ip + ":443", Kind: KindTCP, Addr: ip + ":443"})
		b.add(Check{Name: "direct HTTP to public " + ip + ":80", Kind: KindHTTP, Addr: ip + ":80"})
	}
}

// dnsExfil (7): DNS exfiltration through every resolver in reach.
func (b *builder) dnsExfil() {
	nonce := b.t.Nonce
	if nonce == "" {
		nonce = "n" + b.t.Canary.Token
	}
	servers := []string{DefaultResolver, b.bundleDNS(), ap(b.t.Gateway, 53)}
	for _, ip := range publicV4 {
		servers = append(servers, ip+":53")
	}
	for _, s := range servers {
		for _, nw := range []string{"udp", "tcp"} {
			name := s
			if s == DefaultResolver {
				name = "the default resolver"
			}
			b.add(Check{Name: fmt.Sprintf("exfil name via %s over %s", name, nw), Kind: KindDNS, Addr: s, Net: nw,
				Query: nonce + "-" + nw + "." + exfilZone})
		}
	}
	b.add(Check{Name: "DNS over TLS to 1.1.1.1:853", Kind: KindTCP, Addr: "1.1.1.1:853"})
}

// rebinding (8): allowlisted names that resolve to refused addresses.
func (b *builder) rebinding() {
	for _, r := range b.t.Rebind {
		if b.dns() && len(r.BadIPs) > 0 {
			b.add(Check{Name: "rebinding name " + r.Name + " via the bundle's resolver", Kind: KindDNS, Addr: b.bundleDNS(),
				Query: r.Name, BadIPs: r.BadIPs})
		}
		if r.Proxy {
			b.viaProxy("rebinding name "+r.Name+" via proxy (CONNECT)", http.MethodConnect, r.Name+":443", "")
			b.viaProxy("rebinding name "+r.Name+" via proxy (absolute URI)", http.MethodGet, "http://"+r.Name+"/", "")
		}
	}
}

// portScoping (9): an allowlisted host on a port its rule does not allow.
func (b *builder) portScoping() {
	if h, rule, ok := b.allowedRule(); ok {
		for _, p := range []uint16{22, 25, 6379} {
			if !rule.AllowsPort(p) {
				b.viaProxy(fmt.Sprintf("allowlisted %s on port %d", h, p), http.MethodConnect, hp(h, p), "")
			}
		}
	}
}

// ipv6 (10): no IPv6 way out.
func (b *builder) ipv6() {
	b.add(Check{Name: "no global or unique-local IPv6 address", Kind: KindIPv6})
	b.add(Check{Name: "no IPv6 route to a public address", Kind: KindRoute, Addr: "[2606:4700:4700::1111]:443"})
	b.add(Check{Name: "no IPv6 route to a unique-local address", Kind: KindRoute, Addr: "[fd00::1]:443"})
	b.add(Check{Name: "IPv6 loopback canary port direct", Kind: KindHTTP, Addr: "[::1]:" + strconv.Itoa(int(b.t.Canary.Loopback)), Token: b.t.Canary.Token})
}

// udpICMP (11): UDP and ICMP to the host.
func (b *builder) udpICMP() {
	t := b.t
	for _, a := range b.direct() {
		b.add(Check{Name: "UDP to host " + a.String() + " canary", Kind: KindUDP, Addr: ap(a, t.Canary.UDP), Token: t.Canary.Token})
	}
	b.add(Check{Name: "ICMP echo to the bridge gateway", Kind: KindICMP, Addr: t.Gateway.String()})
	for _, a := range t.HostAddrs {
		if a.Is4() && a != t.Gateway {
			b.add(Check{Name: "ICMP echo to host " + a.String(), Kind: KindICMP, Addr: a.String()})
			break
		}
	}
}

// peers (12): other bottles of the instance.
func (b *builder) peers() {
	for _, p := range b.t.Peers {
		b.add(Check{Name: "bottle " + p.Bottle + "'s proxy direct", Kind: KindTCP, Addr: ap(p.Bundle, bundle.ProxyPort)})
		b.add(Check{Name: "bottle " + p.Bottle + "'s resolver direct", Kind: KindDNS, Addr: ap(p.Bundle, bundle.DNSPort),
			Query: "peer." + deniedName, DNSWant: DNSReply})
		b.add(Check{Name: "bottle " + p.Bottle + "'s guest direct (TCP 22)", Kind: KindTCP, Addr: ap(p.Guest, 22)})
		b.viaProxy("bottle "+p.Bottle+"'s proxy via proxy", http.MethodConnect, ap(p.Bundle, bundle.ProxyPort), "")
		b.viaProxy("bottle "+p.Bottle+"'s guest via proxy", http.MethodGet, "http://"+p.Guest.String()+"/", "")
	}
}

// dockerAndFiles (13): the Docker daemon and the host's files.
func (b *builder) dockerAndFiles() {
	b.add(Check{Name: "no Docker or containerd socket", Kind: KindFiles,
		Paths: []string{"/var/run/docker.sock", "/run/docker.sock", "/run/containerd/containerd.sock", "/run/podman/podman.sock"}})
	if ws := b.t.Workspace; ws != nil {
		name, kind := "workspace "+ws.GuestPath+" mounted read-write", KindWorkspace
		if ws.ReadOnly {
			name = "workspace " + ws.GuestPath + " mounted read-only"
		}
		b.add(Check{Name: name, Kind: kind, Expect: Allowed, Paths: []string{ws.GuestPath}, ReadOnly: ws.ReadOnly})
		b.add(Check{Name: "no host filesystem mounted but the workspace", Kind: KindMounts, Paths: []string{ws.GuestPath}})
	} else {
		b.add(Check{Name: "no host filesystem mounted", Kind: KindMounts})
	}
	for _, port := range []uint16{2375, 2376} {
		b.add(Check{Name: fmt.Sprintf("Docker API on the bridge gateway :%d", port), Kind: KindTCP, Addr: ap(b.t.Gateway, port)})
	}
}

// publicAddrs (14): the host's public addresses through the proxy. No
// range refuses them, so each bundle is told them; the host-side control
// before each pair (publicControls) shows the canary is there.
func (b *builder) publicAddrs() {
	for _, a := range publicProbed(b.t) {
		b.n++ // the control's number
		b.viaProxy("host's public address "+a.String()+" via proxy (absolute URI)", http.MethodGet, "http://"+ap(a, b.t.Canary.Any)+"/", "")
		b.viaProxy("host's public address "+a.String()+" via proxy (CONNECT)", http.MethodConnect, ap(a, b.t.Canary.Any), "")
	}
}

// allowedRule returns an allowlisted host name and its rule, preferring an
// exact name; a wildcard gives a name under it.
func (b *builder) allowedRule() (string, spec.HostRule, bool) {
	for _, wild := range []bool{false, true} {
		for _, r := range b.t.Allow {
			if r.IP.IsValid() || r.Host == "" || r.Wildcard != wild {
				continue
			}
			if wild {
				return "probe." + r.Host, r, true
			}
			return r.Host, r, true
		}
	}
	return "", spec.HostRule{}, false
}

func (b *builder) allowedName() string {
	h, _, _ := b.allowedRule()
	return h
}

// publicProbed are the host's public addresses the plan probes: at most
// four, enough to show the rule without a long run on a host with many.
func publicProbed(t Target) []netip.Addr {
	return t.PublicAddrs[:min(len(t.PublicAddrs), 4)]
}
