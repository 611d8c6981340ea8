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
	want, err := selected(cfg)
	if err != nil {
		return err
	}
	// Every socket is bound before anything serves, so a bad address fails
	// the bundle at once; whatever was bound is closed on the way out.
	var closers []io.Closer
	defer func() {
		if err != nil {
			for _, c := range closers {
				_ = c.Close()
			}
		}
	}()
	addrs := map[string]string{}
	var proxyLn, dnsLn net.Listener
	var dnsPC net.PacketConn
	if want[DaemonEgress] {
		port := ProxyPort
		if o.ephemeral {
			port = 0
		}
		ap := netip.AddrPortFrom(cfg.Listen, uint16(port)).String()
		if proxyLn, err = net.Listen("tcp", ap); err != nil {
			return fmt.Errorf("bundle: listen egress %s: %w", ap, err)
		}
		closers = append(closers, proxyLn)
		addrs[DaemonEgress] = proxyLn.Addr().String()
	}
	if want[DaemonDNS] {
		if dnsPC, dnsLn, err = listenDNS(cfg.Listen, o.ephemeral); err != nil {
			return err
		}
		closers = append(closers, dnsPC, dnsLn)
		addrs[DaemonDNS] = dnsPC.LocalAddr().String()
	}
	ctl, err := net.Listen("tcp", o.controlAddr)
	if err != nil {
		return fmt.Errorf("bundle: listen control %s: %w", o.controlAddr, err)
	}
	closers = append(closers, ctl)
	addrs["control"] = ctl.Addr().String()

	local := localAddrs(log, cfg.Listen)
	refuse := slices.Clone(cfg.Refuse)
	for _, a := range cfg.HostAddrs {
		refuse = append(refuse, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	for _, a := range local {
		// The bundle's own addresses, whatever range they are in.
		refuse = append(refuse, netip.PrefixFrom(a, a.BitLen()))
	}
	pol, err := policy.New(cfg.Allow, refuse)
	if err != nil {
		return fmt.Errorf("bundle: egress policy: %w", err)
	}
	al := audit.New(o.audit, cfg.Bottle)
	defer al.Flush() // a counted run of denials is not lost at exit
	quiet := newQuietSet()
	al.Skip(quiet.has)

	var daemons []daemon
	if proxyLn != nil {
		var self []netip.AddrPort
		for _, a := range addrs {
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
			return fmt.Errorf("bundle: egress: %w", err)
		}
		daemons = append(daemons, daemon{DaemonEgress, p.Serving, func(ctx context.Context) error { return p.Serve(ctx, proxyLn) }})
	}
	if dnsPC != nil {
		up := cfg.Upstream
		if up == "" {
			if up, err = resolver.UpstreamFromResolvConf(o.resolvConf); err != nil {
				return fmt.Errorf("bundle: dns upstream: %w", err)
			}
		}
		if up == addrs[DaemonDNS] {
			return fmt.Errorf("bundle: dns upstream %s is the bundle's own resolver", up)
		}
		s, err := resolver.New(resolver.Options{Policy: pol, Upstream: up, Audit: al, Log: log.WithName("dns"),
			QueryRate: rate.Limit(cfg.DNSQueryRate), QueryBurst: cfg.DNSQueryBurst, MaxWildcardBytes: cfg.MaxWildcardBytes})
		if err != nil {
			return fmt.Errorf("bundle: dns: %w", err)
		}
		daemons = append(daemons, daemon{DaemonDNS, s.Serving, func(ctx context.Context) error { return s.Serve(ctx, dnsPC, dnsLn) }})
	}

	srv := &http.Server{Handler: controlMux(cfg, daemons), ReadHeaderTimeout: 5 * time.Second}
	daemons = append(daemons, daemon{"control", func() bool { return true }, func(ctx context.Context) error {
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
	}})

	daemons = append(daemons, daemon{"watchdog", func() bool { return true }, func(ctx context.Context) error {
		return watch(ctx, o.watchdog, quiet, probes(addrs))
	}})

	// Every socket is bound, so the kernel queues what comes in from here
	// on: the bundle is ready, and says so once.
	o.ready(addrs)
	log.Info("bundle running", "bottle", cfg.Bottle, "daemons", cfg.Daemons, "addrs", addrs)
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
	// The first daemon to stop, failed or not, stops the bundle: its exit is
	// a Docker event the reconciler heals at once, never a half-working gate.
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
