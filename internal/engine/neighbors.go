package engine

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// Where neither DHCP nor a router port answers for a family (DHCP off, SLAAC or static
// IPv6, no router), OVN itself still does: the logical switch's pipeline on the local
// chassis answers ARP and neighbor solicitations for the addresses of the switch's other
// ports (not for the asking port's own). The answer can only come back once the local
// ovn-controller has installed the new port's flows, the very thing a DHCP offer proves.

// orphan is a family no DHCP or router port answers for, with why.
type orphan struct {
	src netip.Prefix // the port's address, with its subnet's length
	why string
}

// neighborLimit bounds the one list findNeighbors asks: the port itself and ports of the
// other family may take some of the page.
const neighborLimit = 16

// findNeighbors turns each orphan family into a proof through another port's address of
// that family (one Neutron list for all of them); with none, the family is not proven,
// and then nothing on the network can be reached yet either. A failed lookup does not
// fail the attach.
func (e *Engine) findNeighbors(ctx context.Context, att *state.Attachment, p proofPlan) proofPlan {
	if len(p.orphans) == 0 {
		return p
	}
	orphans := p.orphans
	p.orphans = nil
	ns, err := e.cfg.Neutron.Neighbors(ctx, att.NetworkID, neighborLimit)
	for _, o := range orphans {
		fam := family(o.src.Addr())
		if err != nil {
			p.skipped = append(p.skipped, fmt.Sprintf("%s (%s; looking for another port to answer failed: %v)", fam, o.why, err))
			continue
		}
		ip, n, ok := pickNeighbor(ns, att.PortID, o.src)
		if !ok {
			p.skipped = append(p.skipped, fmt.Sprintf("%s (%s, and nothing else on the network to answer: nothing on it can be reached yet either)", fam, o.why))
			continue
		}
		p.gateways = append(p.gateways, GatewayProof{Src: o.src, Gateway: ip, Neighbor: n.PortID, NeighborDown: !n.Active})
	}
	// Those whose silence may be the deployment's (see GatewayProof.NeighborDown) last:
	// they may use up the time the others need.
	slices.SortStableFunc(p.gateways, func(a, b GatewayProof) int {
		return cmp.Compare(b2i(a.NeighborDown), b2i(b.NeighborDown))
	})
	return p
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// pickNeighbor chooses the address OVN is asked for: one of src's family on another port
// whose addresses OVN answers for, an ACTIVE port's first, in src's subnet first, in
// Neutron's order otherwise. OVN does not answer for a port with port security off (its
// addresses carry "unknown") unless it is a router's, nor for a virtual port (a VIP: an
// address others hold as an allowed address pair), which Neutron makes of ports with no
// device_owner: those are left out.
func pickNeighbor(ns []neutron.Neighbor, own string, src netip.Prefix) (netip.Addr, neutron.Neighbor, bool) {
	var best netip.Addr
	var bestN neutron.Neighbor
	bestScore := -1
	for _, n := range ns {
		router := strings.HasPrefix(n.DeviceOwner, "network:router")
		if n.PortID == own || n.DeviceOwner == "" || (!n.PortSecurity && !router) {
			continue
		}
		for _, ip := range n.IPs {
			if ip.Is4() != src.Addr().Is4() || ip.Is4In6() || ip.IsLinkLocalUnicast() || ip == src.Addr() {
				continue
			}
			score := 2*b2i(n.Active) + b2i(src.Contains(ip))
			if score > bestScore {
				best, bestN, bestScore = ip, n, score
			}
		}
	}
	return best, bestN, bestScore >= 0
}

// unasked skips the orphans without asking Neutron (a replug: it must work while Neutron
// does not answer, and the port that answered at the attach may be gone since). The
// port's flows on the hypervisor are the same as when it was first proven.
func (p proofPlan) unasked() proofPlan {
	for _, o := range p.orphans {
		p.skipped = append(p.skipped, fmt.Sprintf("%s (%s; another port's address is not looked for on a replug)", family(o.src.Addr()), o.why))
	}
	p.orphans = nil
	return p
}
