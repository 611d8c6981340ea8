package dockernet

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/internal/dockerx"
	"github.com/bottle-reconcile/bottle-reconcile/spec"
)

func mustPrefix(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, mustPrefix(s))
	}
	return out
}

func TestChooseSubnet(t *testing.T) {
	tests := []struct {
		name    string
		pool    string
		size    int
		taken   []netip.Prefix
		want    string
		wantErr string
	}{
		{name: "empty pool gives the first", pool: "10.213.0.0/16", size: 29, want: "10.213.0.0/29"},
		{name: "steps over a taken /29", pool: "10.213.0.0/16", size: 29, taken: prefixes("10.213.0.0/29"), want: "10.213.0.8/29"},
		{name: "reuses a freed hole", pool: "10.213.0.0/16", size: 29, taken: prefixes("10.213.0.8/29", "10.213.0.16/29"), want: "10.213.0.0/29"},
		{name: "steps over a larger overlap", pool: "10.213.0.0/16", size: 29, taken: prefixes("10.213.0.0/24"), want: "10.213.1.0/29"},
		{name: "a single taken address blocks its /29", pool: "10.213.0.0/16", size: 29, taken: prefixes("10.213.0.3/32"), want: "10.213.0.8/29"},
		{name: "a route covering the pool exhausts it", pool: "10.213.0.0/16", size: 29, taken: prefixes("10.0.0.0/8"), wantErr: "no free /29"},
		{name: "unrelated and IPv6 prefixes are ignored", pool: "10.213.0.0/16", size: 29, taken: prefixes("192.168.0.0/16", "fd00::/8"), want: "10.213.0.0/29"},
		{name: "the last one", pool: "10.213.0.0/28", size: 29, taken: prefixes("10.213.0.0/29"), want: "10.213.0.8/29"},
		{name: "full", pool: "10.213.0.0/28", size: 29, taken: prefixes("10.213.0.0/29", "10.213.0.8/29"), wantErr: "no free /29 left in pool 10.213.0.0/28"},
		{name: "unmasked pool", pool: "10.213.5.7/16", size: 29, want: "10.213.0.0/29"},
		{name: "subnet larger than the pool", pool: "10.213.0.0/30", size: 29, wantErr: "cannot carve"},
		{name: "IPv6 pool", pool: "fd00::/64", size: 29, wantErr: "not an IPv4 prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ChooseSubnet(mustPrefix(tt.pool), tt.size, tt.taken)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ChooseSubnet() = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != mustPrefix(tt.want) {
				t.Fatalf("ChooseSubnet() = %v, %v; want %s", got, err, tt.want)
			}
		})
	}
}

func TestChooseSubnetServesHundreds(t *testing.T) {
	pool := mustPrefix("10.213.0.0/16")
	var taken []netip.Prefix
	for range 300 {
		p, err := ChooseSubnet(pool, dockerx.SubnetBits, taken)
		if err != nil {
			t.Fatalf("after %d subnets: %v", len(taken), err)
		}
		for _, q := range taken {
			if q.Overlaps(p) {
				t.Fatalf("%s overlaps %s", p, q)
			}
		}
		taken = append(taken, p)
	}
}

func TestHostPrefixesIncludesLoopback(t *testing.T) {
	got, err := hostPrefixes()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range got {
		if p.Contains(netip.MustParseAddr("127.0.0.1")) {
			return
		}
	}
	t.Fatalf("hostPrefixes() = %v, want one covering 127.0.0.1", got)
}

func TestIsPoolOverlap(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{errString("Error response from daemon: Pool overlaps with other one on this address space"), true},
		{errString("network with name x already exists"), false},
		{nil, false},
	} {
		if got := isPoolOverlap(tt.err); got != tt.want {
			t.Errorf("isPoolOverlap(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{}.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if o.Pool != spec.DefaultPool || o.LockPath != dockerx.DefaultLockPath {
		t.Errorf("defaults = %+v", o)
	}
	if _, err := (Options{Pool: mustPrefix("10.0.0.0/30")}).withDefaults(); err == nil {
		t.Error("a /30 pool was accepted")
	}
}
