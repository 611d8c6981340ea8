package dockerguest

import (
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/bottle-reconcile/bottle-reconcile/internal/procroute"
)

// procRoute is /proc/<pid>/net/route of a container Docker put at
// 10.219.77.3 on a /29 whose gateway is .1.
const procRoute = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n" +
	"eth0\t00000000\t014DDB0A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n" +
	"eth0\t004DDB0A\t00000000\t0001\t0\t0\t0\tF8FFFFFF\t0\t0\t0\n"

func TestRouteBatch(t *testing.T) {
	bun := netip.MustParseAddr("10.219.77.2")
	docker, _ := procroute.Parse(strings.NewReader(procRoute))
	only := []procroute.Route{{Dev: "eth0", Dst: netip.MustParsePrefix("10.219.77.2/32")}}
	tests := []struct {
		name  string
		rs    []procroute.Route
		drift string
		batch []string
		err   bool
	}{
		{"docker's routes", docker, "guest routes beyond its bundle: 0.0.0.0/0 via 10.219.77.1 dev eth0, 10.219.77.0/29 dev eth0",
			[]string{"route replace 10.219.77.2/32 dev eth0 scope link", "route del 0.0.0.0/0 dev eth0", "route del 10.219.77.0/29 dev eth0"}, false},
		{"narrowed", only, "", nil, false},
		{"narrowed plus a default", append(slices.Clone(only), docker[0]), "guest routes beyond its bundle: 0.0.0.0/0 via 10.219.77.1 dev eth0",
			[]string{"route replace 10.219.77.2/32 dev eth0 scope link", "route del 0.0.0.0/0 dev eth0"}, false},
		{"no route at all", nil, "guest has no route to its bundle 10.219.77.2", nil, true},
		{"only a default", docker[:1], "guest routes beyond its bundle: 0.0.0.0/0 via 10.219.77.1 dev eth0", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := routeDrift(tt.rs, bun); got != tt.drift {
				t.Errorf("drift %q, want %q", got, tt.drift)
			}
			b, err := routeBatch(tt.rs, bun)
			if (err != nil) != tt.err || !slices.Equal(b, tt.batch) {
				t.Errorf("batch %q, %v; want %q (error %v)", b, err, tt.batch, tt.err)
			}
		})
	}
}
