package main

import (
	"flag"
	"io"
	"testing"
)

// The DNS limit flags reach the bundle driver's options.
func TestDNSLimitFlags(t *testing.T) {
	var c common
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	c.register(fs)
	if err := fs.Parse([]string{"--dns-query-rate", "20.5", "--dns-query-burst", "40", "--dns-max-wildcard-bytes", "30"}); err != nil {
		t.Fatal(err)
	}
	o := c.sidecarOptions()
	if o.DNSQueryRate != 20.5 || o.DNSQueryBurst != 40 || o.MaxWildcardBytes != 30 {
		t.Errorf("options = %g/%d/%d, want 20.5/40/30", o.DNSQueryRate, o.DNSQueryBurst, o.MaxWildcardBytes)
	}
}
