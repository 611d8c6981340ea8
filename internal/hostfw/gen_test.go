package hostfw

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestGenID(t *testing.T) {
	attr := func(typ uint16, v []byte) []byte {
		b := make([]byte, unix.SizeofNlAttr, unix.SizeofNlAttr+len(v)+3)
		binary.NativeEndian.PutUint16(b, uint16(unix.SizeofNlAttr+len(v)))
		binary.NativeEndian.PutUint16(b[2:], typ)
		b = append(b, v...)
		for len(b)%unix.NLA_ALIGNTO != 0 {
			b = append(b, 0)
		}
		return b
	}
	be := func(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
	hdr := []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0}
	cat := func(parts ...[]byte) []byte {
		var out []byte
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	for _, tc := range []struct {
		name string
		in   []byte
		id   uint32
		ok   bool
	}{
		{"the kernel's answer", cat(hdr, attr(unix.NFTA_GEN_ID, be(330848)), attr(2, be(4242)), attr(3, []byte("iptables-nft\x00"))), 330848, true},
		{"after another attribute", cat(hdr, attr(3, []byte("nft\x00")), attr(unix.NFTA_GEN_ID, be(7))), 7, true},
		{"with the byte-order flag", cat(hdr, attr(unix.NFTA_GEN_ID|unix.NLA_F_NET_BYTEORDER, be(9))), 9, true},
		{"no generation", cat(hdr, attr(2, be(1))), 0, false},
		{"a short generation", cat(hdr, attr(unix.NFTA_GEN_ID, []byte{1, 2})), 0, false},
		{"an attribute longer than the message", cat(hdr, []byte{200, 0, 1, 0, 0, 0, 0, 1}), 0, false},
		{"no header", []byte{0, 0}, 0, false},
	} {
		id, ok := genID(tc.in)
		if id != tc.id || ok != tc.ok {
			t.Errorf("%s: %d, %v; want %d, %v", tc.name, id, ok, tc.id, tc.ok)
		}
	}
}

// TestRulesetGen asks the kernel: a chain made and removed with the host's
// iptables moves the generation each time. It needs root and iptables-nft.
func TestRulesetGen(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (CAP_NET_ADMIN) to read and change nf_tables")
	}
	if out, err := exec.Command("iptables", "-V").CombinedOutput(); err != nil || !strings.Contains(string(out), "nf_tables") {
		t.Skipf("needs iptables-nft: %s %v", strings.TrimSpace(string(out)), err)
	}
	g0, err := RulesetGen(context.Background())
	if errors.Is(err, unix.EPROTONOSUPPORT) || errors.Is(err, unix.ENOENT) {
		t.Skipf("no nf_tables here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	chain := fmt.Sprintf("BOTTLE-GENTEST-%d", os.Getpid())
	fw := Firewall{Run: ExecRunner{}, Family: IPv4}
	if err := fw.Apply(context.Background(), []string{":" + chain + " - [0:0]"}); err != nil {
		t.Fatal(err)
	}
	g1, err := RulesetGen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if err := fw.Apply(context.Background(), []string{"-X " + chain}); err != nil {
		t.Fatal(err)
	}
	g2, err := RulesetGen(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if g1 == g0 || g2 == g1 {
		t.Errorf("generations %d, %d, %d around a chain made and removed: want each to differ", g0, g1, g2)
	}
}

func TestRulesetGenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := RulesetGen(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a cancelled read: %v, want context.Canceled", err)
	}
}
