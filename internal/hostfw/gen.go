package hostfw

import (
	"context"
	"encoding/binary"
	"fmt"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// RulesetGen returns the generation of this network namespace's nf_tables
// ruleset. The kernel adds one to it for every change committed to any
// table, whoever makes it (iptables-nft, nft, firewalld), so two equal
// reads mean nothing in the ruleset changed between them: a check that
// costs one netlink round trip, where re-reading the filter table costs an
// iptables-save of every rule on the host. It says nothing of rules that
// iptables-legacy keeps; see Table.NFTables. The kernel answers at once;
// the wait for it is bounded by genTimeout and ctx's deadline all the same.
func RulesetGen(ctx context.Context) (uint32, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("read nf_tables generation: %w", err)
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_NETFILTER)
	if err != nil {
		return 0, fmt.Errorf("read nf_tables generation: open netlink socket: %w", err)
	}
	defer unix.Close(fd)
	wait := genTimeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, max(time.Until(dl), time.Millisecond))
	}
	tv := unix.NsecToTimeval(wait.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return 0, fmt.Errorf("read nf_tables generation: set timeout: %w", err)
	}
	kernel := &unix.SockaddrNetlink{Family: unix.AF_NETLINK}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("read nf_tables generation: bind: %w", err)
	}
	const seq = 1
	req := make([]byte, unix.NLMSG_HDRLEN+sizeofNfgenmsg)
	binary.NativeEndian.PutUint32(req[0:], uint32(len(req)))
	binary.NativeEndian.PutUint16(req[4:], unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN)
	binary.NativeEndian.PutUint16(req[6:], unix.NLM_F_REQUEST)
	binary.NativeEndian.PutUint32(req[8:], seq)
	req[unix.NLMSG_HDRLEN] = unix.AF_UNSPEC
	req[unix.NLMSG_HDRLEN+1] = unix.NFNETLINK_V0
	if err := unix.Sendto(fd, req, 0, kernel); err != nil {
		return 0, fmt.Errorf("read nf_tables generation: send: %w", err)
	}
	buf := make([]byte, 4096)
	for {
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if err != nil {
			return 0, fmt.Errorf("read nf_tables generation: receive: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(buf[:n])
		if err != nil {
			return 0, fmt.Errorf("read nf_tables generation: %w", err)
		}
		for _, m := range msgs {
			if m.Header.Seq != seq {
				continue
			}
			switch m.Header.Type {
			case unix.NLMSG_ERROR:
				if len(m.Data) < 4 {
					return 0, fmt.Errorf("read nf_tables generation: short error message")
				}
				if errno := int32(binary.NativeEndian.Uint32(m.Data)); errno != 0 {
					return 0, fmt.Errorf("read nf_tables generation: %w", syscall.Errno(-errno))
				}
			case unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWGEN:
				if id, ok := genID(m.Data); ok {
					return id, nil
				}
				return 0, fmt.Errorf("read nf_tables generation: the kernel's answer has no generation")
			}
		}
	}
}

// genID finds NFTA_GEN_ID in a NEWGEN message's body: an nfgenmsg, then
// netlink attributes, the ID big-endian as all of nf_tables' integers.
func genID(b []byte) (uint32, bool) {
	if len(b) < sizeofNfgenmsg {
		return 0, false
	}
	b = b[sizeofNfgenmsg:]
	for len(b) >= unix.SizeofNlAttr {
		l := int(binary.NativeEndian.Uint16(b))
		t := binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
		if l < unix.SizeofNlAttr || l > len(b) {
			return 0, false
		}
		if t == unix.NFTA_GEN_ID && l >= unix.SizeofNlAttr+4 {
			return binary.BigEndian.Uint32(b[unix.SizeofNlAttr:]), true
		}
		b = b[min((l+unix.NLA_ALIGNTO-1)&^(unix.NLA_ALIGNTO-1), len(b)):]
	}
	return 0, false
}

// genTimeout bounds the wait for the kernel's answer.
const genTimeout = time.Second

// sizeofNfgenmsg is the nfgenmsg header that follows every nfnetlink
// message's netlink header: family, version, resource ID.
const sizeofNfgenmsg = 4
