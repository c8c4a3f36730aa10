package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/probe"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// GatewayProof proves one family's data path where OVN answers no DHCP for the port:
// the subnet's gateway is a Neutron router's port, so OVN's logical switch answers ARP
// (IPv4) or a neighbor solicitation (IPv6) for it, and where the IPv6 subnet has an
// ipv6_ra_mode, OVN's router answers a router solicitation with the subnet's prefix
// (which also proves the prefix). Without a router, Gateway is another port's address
// (Neighbor), which OVN's switch answers for just the same.
type GatewayProof struct {
	Src        netip.Prefix // the port's address, with its subnet's length
	Gateway    netip.Addr
	RA         bool   // IPv6: ask for a router advertisement of Src's prefix
	RouterPort string // the router port found at Gateway
	// Neighbor is the port whose address Gateway is, where no router port answers: OVN's
	// switch answers for it in its own pipeline (see neighbors.go).
	Neighbor string
	// NeighborDown: Neutron has Neighbor DOWN. OVN answers for it all the same unless
	// the deployment sets NB_Global options:ignore_lsp_down=false, which the VM cannot
	// read: its silence then does not fail the attach, the family is only not proven.
	NeighborDown bool
}

func (g GatewayProof) String() string {
	var s string
	switch {
	case g.Neighbor != "":
		s = "ARP reply from OVN for "
		if g.Gateway.Is6() {
			s = "neighbor advertisement from OVN for "
		}
		s += g.Gateway.String() + " (port " + g.Neighbor
		if g.NeighborDown {
			s += ", DOWN in Neutron"
		}
		return s + ")"
	case g.Gateway.Is4():
		s = "ARP reply of gateway " + g.Gateway.String()
	case g.RA:
		s = "router advertisement of " + g.Src.Masked().String()
	default:
		s = "neighbor advertisement of gateway " + g.Gateway.String()
	}
	if g.RouterPort != "" {
		s += " (router port " + g.RouterPort + ")"
	}
	return s
}

func (Netlink) ProbeGateway(ctx context.Context, nsPath, ifName string, mac net.HardwareAddr, g GatewayProof) error {
	if g.RA {
		return probe.RouterAdvert(ctx, nsPath, ifName, mac, g.Src.Masked())
	}
	return probe.Gateway(ctx, nsPath, ifName, mac, g.Src.Addr(), g.Gateway)
}

// findRouters keeps the plan's gateway proofs whose gateway is a router port (one
// Neutron lookup each); the others are left to another port (findNeighbors). A failed
// lookup does not fail the attach: the family is then not proven.
func (e *Engine) findRouters(ctx context.Context, att *state.Attachment, p proofPlan) proofPlan {
	var kept []GatewayProof
	for _, g := range p.gateways {
		fam := family(g.Gateway)
		port, err := e.cfg.Neutron.RouterPortAt(ctx, att.NetworkID, g.Gateway)
		switch {
		case err == nil:
			g.RouterPort = port.ID
			kept = append(kept, g)
		case errors.Is(err, neutron.ErrNotFound):
			p.orphans = append(p.orphans, orphan{src: g.Src, why: fmt.Sprintf("no DHCP, and no router port at its gateway %s", g.Gateway)})
		default:
			p.skipped = append(p.skipped, fmt.Sprintf("%s (no DHCP; looking for a router at its gateway %s failed: %v)", fam, g.Gateway, err))
		}
	}
	p.gateways = kept
	return p
}

// routers records the router ports found, for recorded.
func (p proofPlan) routers() []string {
	var out []string
	for _, g := range p.gateways {
		if g.Neighbor != "" {
			continue
		}
		out = append(out, g.Gateway.String()+"="+g.RouterPort)
	}
	return out
}

// recorded keeps the plan's gateway proofs whose router port was found when the path was
// first proven (no Neutron call: a replug must work while Neutron does not answer); the
// others are orphans, which a replug leaves unproven (see unasked).
func (p proofPlan) recorded(routers []string) proofPlan {
	var kept []GatewayProof
	for _, g := range p.gateways {
		for _, r := range routers {
			if ip, port, ok := strings.Cut(r, "="); ok && ip == g.Gateway.String() {
				g.RouterPort = port
				kept = append(kept, g)
			}
		}
		if g.RouterPort == "" {
			p.orphans = append(p.orphans, orphan{src: g.Src, why: fmt.Sprintf("no DHCP, and no router port was at its gateway %s", g.Gateway)})
		}
	}
	p.gateways = kept
	return p
}

func family(ip netip.Addr) string {
	if ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}
