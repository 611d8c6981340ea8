package bundle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/time/rate"

	"github.com/bottle-reconcile/bottle-reconcile/bundle/audit"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/egress"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/policy"
	"github.com/bottle-reconcile/bottle-reconcile/bundle/resolver"
)

// Daemon names accepted in Config.Daemons.
const (
	DaemonEgress = "egress"
	DaemonDNS    = "dns"
)

// runOptions are seams for tests; the zero value is production.
type runOptions struct {
	controlAddr string // default ControlAddr
	// ephemeral binds the daemons to free ports instead of ProxyPort and
	// DNSPort, so tests need neither privileges nor fixed ports.
	ephemeral     bool
	audit         io.Writer       // default os.Stderr
	resolvConf    string          // default /etc/resolv.conf
	proxyResolver egress.Resolver // default the pure-Go resolver
	// ready receives the bound addresses by role once every socket is open;
	// default: the ready line on stdout.
	ready func(map[string]string)
	// watchdog is the self-check interval; default WatchdogInterval.
	watchdog time.Duration
}

// daemon is one running service the control endpoint reports on.
type daemon struct {
	name    string
	serving func() bool
	serve   func(context.Context) error
}

// Run starts the daemons cfg selects ("egress": the HTTP proxy on
// cfg.Listen:ProxyPort, "dns": the resolver on cfg.Listen:DNSPort, UDP and
// TCP) and the control endpoint on ControlAddr, whose /healthz answers 503
// while a selected daemon is not serving. With no daemons it only serves
// the control endpoint. Once every socket is bound it writes ReadyLine to
// stdout, once; a watchdog then checks every daemon with a real request
// every WatchdogInterval. Decisions go to stderr as JSON lines (package
// audit). Run blocks until ctx ends or a daemon fails or hangs.
func Run(ctx context.Context, log logr.Logger, cfg Config) error {
	return run(ctx, log, cfg, runOptions{})
}

func run(ctx context.Context, log logr.Logger, cfg Config, o runOptions) (err error) {
	o = o.withDefaults()
	want, err := selected(cfg)
	if err != nil {
		return err
	}
	// Every socket is bound before anything serves, so a bad address fails
	// the bundle at once; whatever was bound is closed on the way out.
	sk, err := bind(cfg.Listen, want, o)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			sk.close()
		}
	}()
	local := localAddrs(log, cfg.Listen)
	pol, err := egressPolicy(cfg, local)
	if err != nil {
		return err
	}
	al := audit.New(o.audit, cfg.Bottle)
	defer al.Flush() // a counted run of denials is not lost at exit
	quiet := newQuietSet()
	al.Skip(quiet.has)

	var daemons []daemon
	if sk.proxy != nil {
		d, err := proxyDaemon(log, cfg, o, sk, pol, al, local)
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
	}
	if sk.dnsPC != nil {
		d, err := dnsDaemon(log, cfg, o, sk, pol, al)
		if err != nil {
			return err
		}
		daemons = append(daemons, d)
	}
	daemons = append(daemons, controlDaemon(cfg, daemons, sk.ctl), daemon{"watchdog", func() bool { return true }, func(ctx context.Context) error {
		return watch(ctx, o.watchdog, quiet, probes(sk.addrs))
	}})

	// Every socket is bound, so the kernel queues what comes in from here
	// on: the bundle is ready, and says so once.
	o.ready(sk.addrs)
	log.Info("bundle running", "bottle", cfg.Bottle, "daemons", cfg.Daemons, "addrs", sk.addrs)
	return serveAll(ctx, daemons)
}

// withDefaults fills in production values for unset seams.
func (o runOptions) withDefaults() runOptions {
	if o.controlAddr == "" {
		o.controlAddr = ControlAddr
	}
	if o.audit == nil {
		o.audit = os.Stderr
	}
	if o.resolvConf == "" {
		o.resolvConf = "/etc/resolv.conf"
	}
	if o.ready == nil {
		o.ready = func(addrs map[string]string) { writeReady(os.Stdout, addrs) }
	}
	if o.watchdog == 0 {
		o.watchdog = WatchdogInterval
	}
	return o
}

// sockets are the bundle's bound sockets, by daemon; addrs has their
// addresses by role ("egress", "dns", "control").
type sockets struct {
	proxy, dnsLn, ctl net.Listener
	dnsPC             net.PacketConn
	addrs             map[string]string
	closers           []io.Closer
}

func (sk *sockets) close() {
	for _, c := range sk.closers {
		_ = c.Close()
	}
}

// bind opens the selected daemons' sockets and the control endpoint's; on
// an error it closes what it opened.
func bind(listen netip.Addr, want map[string]bool, o runOptions) (sk *sockets, err error) {
	sk = &sockets{addrs: map[string]string{}}
	defer func() {
		if err != nil {
			sk.close()
		}
	}()
	if want[DaemonEgress] {
		port := ProxyPort
		if o.ephemeral {
			port = 0
		}
		ap := netip.AddrPortFrom(listen, uint16(port)).String()
		if sk.proxy, err = net.Listen("tcp", ap); err != nil {
			return nil, fmt.Errorf("bundle: listen egress %s: %w", ap, err)
		}
		sk.closers = append(sk.closers, sk.proxy)
		sk.addrs[DaemonEgress] = sk.proxy.Addr().String()
	}
	if want[DaemonDNS] {
		if sk.dnsPC, sk.dnsLn, err = listenDNS(listen, o.ephemeral); err != nil {
			return nil, err
		}
		sk.closers = append(sk.closers, sk.dnsPC, sk.dnsLn)
		sk.addrs[DaemonDNS] = sk.dnsPC.LocalAddr().String()
	}
	if sk.ctl, err = net.Listen("tcp", o.controlAddr); err != nil {
		return nil, fmt.Errorf("bundle: listen control %s: %w", o.controlAddr, err)
	}
	sk.closers = append(sk.closers, sk.ctl)
	sk.addrs["control"] = sk.ctl.Addr().String()
	return sk, nil
}

// egressPolicy is cfg's allowlist against the refused ranges, the host's
// addresses and the bundle's own (local), whatever range they are in.
func egressPolicy(cfg Config, local []netip.Addr) (*policy.Policy, error) {
	refuse := slices.Clone(cfg.Refuse)
	for _, a := range cfg.HostAddrs {
		refuse = append(refuse, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	for _, a := range local {
		refuse = append(refuse, netip.PrefixFrom(a, a.BitLen()))
	}
	pol, err := policy.New(cfg.Allow, refuse)
	if err != nil {
		return nil, fmt.Errorf("bundle: egress policy: %w", err)
	}
	return pol, nil
}

// proxyDaemon is the egress proxy on its bound listener.
func proxyDaemon(log logr.Logger, cfg Config, o runOptions, sk *sockets, pol *policy.Policy, al *audit.Log, local []netip.Addr) (daemon, error) {
	var self []netip.AddrPort
	for _, a := range sk.addrs {
		if ap, err := netip.ParseAddrPort(a); err == nil {
			self = append(self, ap)
		}
	}
	res := o.proxyResolver
	if res == nil && cfg.Upstream != "" {
		// The proxy resolves through the same upstream as the resolver
		// daemon, so both judge a name by the same answers.
		res = upstreamResolver(cfg.Upstream)
	}
	p, err := egress.New(egress.Options{Policy: pol, Audit: al, Log: log.WithName("egress"),
		Resolver: res, Self: self, LocalAddrs: local, MaxWildcardBytes: cfg.MaxWildcardBytes})
	if err != nil {
		return daemon{}, fmt.Errorf("bundle: egress: %w", err)
	}
	return daemon{DaemonEgress, p.Serving, func(ctx context.Context) error { return p.Serve(ctx, sk.proxy) }}, nil
}

// dnsDaemon is the filtering resolver on its bound sockets, forwarding to
// cfg.Upstream or, without one, resolv.conf's first server.
func dnsDaemon(log logr.Logger, cfg Config, o runOptions, sk *sockets, pol *policy.Policy, al *audit.Log) (daemon, error) {
	up := cfg.Upstream
	if up == "" {
		var err error
		if up, err = resolver.UpstreamFromResolvConf(o.resolvConf); err != nil {
			return daemon{}, fmt.Errorf("bundle: dns upstream: %w", err)
		}
	}
	if up == sk.addrs[DaemonDNS] {
		return daemon{}, fmt.Errorf("bundle: dns upstream %s is the bundle's own resolver", up)
	}
	s, err := resolver.New(resolver.Options{Policy: pol, Upstream: up, Audit: al, Log: log.WithName("dns"),
		QueryRate: rate.Limit(cfg.DNSQueryRate), QueryBurst: cfg.DNSQueryBurst, MaxWildcardBytes: cfg.MaxWildcardBytes})
	if err != nil {
		return daemon{}, fmt.Errorf("bundle: dns: %w", err)
	}
	return daemon{DaemonDNS, s.Serving, func(ctx context.Context) error { return s.Serve(ctx, sk.dnsPC, sk.dnsLn) }}, nil
}

// controlDaemon serves the control endpoint on ctl, reporting on daemons.
func controlDaemon(cfg Config, daemons []daemon, ctl net.Listener) daemon {
	srv := &http.Server{Handler: controlMux(cfg, daemons), ReadHeaderTimeout: 5 * time.Second}
	return daemon{"control", func() bool { return true }, func(ctx context.Context) error {
		stop := context.AfterFunc(ctx, func() {
			shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shut)
		})
		defer stop()
		if err := srv.Serve(ctl); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("bundle: control server: %w", err)
		}
		return nil
	}}
}

// serveAll runs the daemons until ctx ends or the first of them stops,
// failed or not, which stops the bundle: its exit is a Docker event the
// reconciler heals at once, never a half-working gate.
func serveAll(ctx context.Context, daemons []daemon) (err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, len(daemons))
	var wg sync.WaitGroup
	for _, d := range daemons {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- d.serve(ctx)
		}()
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
		if err == nil && ctx.Err() == nil {
			err = errors.New("bundle: a daemon stopped")
		}
	}
	cancel()
	wg.Wait()
	return err
}

// selected checks cfg.Daemons and the listen address they need.
func selected(cfg Config) (map[string]bool, error) {
	want := map[string]bool{}
	for _, d := range cfg.Daemons {
		switch d {
		case DaemonEgress, DaemonDNS:
			want[d] = true
		default:
			return nil, fmt.Errorf("bundle: unknown daemon %q (want %s or %s)", d, DaemonEgress, DaemonDNS)
		}
	}
	// Guest-facing daemons bind the bottle-network address only: 0.0.0.0
	// would also expose them on the egress network.
	if len(want) > 0 && (!cfg.Listen.IsValid() || cfg.Listen.IsUnspecified() || cfg.Listen.Zone() != "") {
		return nil, fmt.Errorf("bundle: listen address %q must be the bundle's address on the bottle network", cfg.Listen)
	}
	return want, nil
}

// listenDNS binds UDP and TCP on the same port; for an ephemeral port it
// retries when the kernel's UDP pick is taken for TCP.
func listenDNS(addr netip.Addr, ephemeral bool) (net.PacketConn, net.Listener, error) {
	port := uint16(DNSPort)
	if ephemeral {
		port = 0
	}
	var lastErr error
	for range 10 {
		ap := netip.AddrPortFrom(addr, port).String()
		pc, err := net.ListenPacket("udp", ap)
		if err != nil {
			return nil, nil, fmt.Errorf("bundle: listen dns udp %s: %w", ap, err)
		}
		tcp := pc.LocalAddr().String()
		ln, err := net.Listen("tcp", tcp)
		if err == nil {
			return pc, ln, nil
		}
		_ = pc.Close()
		lastErr = fmt.Errorf("bundle: listen dns tcp %s: %w", tcp, err)
		if !ephemeral {
			break
		}
	}
	return nil, nil, lastErr
}

// localAddrs lists the bundle's own addresses. A failure only loses
// defence in depth (the built-in ranges still hold), so it is logged.
func localAddrs(log logr.Logger, listen netip.Addr) []netip.Addr {
	var out []netip.Addr
	if listen.IsValid() {
		out = append(out, listen.Unmap())
	}
	ifaddrs, err := net.InterfaceAddrs()
	if err != nil {
		log.Error(err, "list interface addresses")
		return out
	}
	for _, a := range ifaddrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && !slices.Contains(out, p.Addr().Unmap()) {
			out = append(out, p.Addr().Unmap())
		}
	}
	return out
}

// controlMux serves /healthz: 200 when every selected daemon serves.
func controlMux(cfg Config, daemons []daemon) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		var down []string
		for _, d := range daemons {
			if !d.serving() {
				down = append(down, d.name)
			}
		}
		if len(down) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "unhealthy %s: not serving: %s\n", cfg.Bottle, strings.Join(down, ", "))
			return
		}
		fmt.Fprintf(w, "ok %s daemons=%v\n", cfg.Bottle, cfg.Daemons)
	})
	return mux
}

// upstreamResolver is a pure-Go resolver that asks only upstream (host:port).
func upstreamResolver(upstream string) *net.Resolver {
	return &net.Resolver{
		PreferGo: true,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, upstream)
		},
	}
}
