package dockerplugin

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ovn-docker/ovn-docker/internal/neutron"
	"github.com/ovn-docker/ovn-docker/internal/state"
)

// The port options of a network's container ports (driver side, -o), as ovn-docker
// run's --allowed-address, --qos-policy and --no-port-security. Docker tells its drivers
// no container's hostname, so the plugin's ports get no dns_name.
const (
	// OptAllowedAddresses: IP[/MAC] or CIDR[/MAC], comma-separated, that every container
	// of the network may use too (a VRRP address its members share).
	OptAllowedAddresses = "neutron.allowed_addresses"
	// OptQoSPolicy: a QoS policy (name or ID) for the ports.
	OptQoSPolicy = "neutron.qos_policy"
	// OptPortSecurity: "false" turns the ports' port security off (and their groups).
	OptPortSecurity = "neutron.port_security"
)

// portOpts are the port options of a network's driver options, as given.
type portOpts struct {
	allowed        []string
	qos            string
	noPortSecurity bool
}

// takePortOptions reads the port options and returns the other options without them
// (parseAdoption refuses neutron.* keys it does not know).
func takePortOptions(opts map[string]string) (map[string]string, portOpts, error) {
	var o portOpts
	rest := make(map[string]string, len(opts))
	for k, v := range opts {
		switch k {
		case OptAllowedAddresses:
			for _, a := range strings.Split(v, ",") {
				if a = strings.TrimSpace(a); a == "" {
					continue
				}
				if _, err := neutron.ParseAddressPair(a); err != nil {
					return nil, o, fmt.Errorf("option %s: %w", k, err)
				}
				o.allowed = append(o.allowed, a)
			}
		case OptQoSPolicy:
			o.qos = strings.TrimSpace(v)
		case OptPortSecurity:
			on, err := strconv.ParseBool(v)
			if err != nil {
				return nil, o, fmt.Errorf("option %s=%q: want true or false", k, v)
			}
			o.noPortSecurity = !on
		default:
			rest[k] = v
			continue
		}
		if strings.TrimSpace(v) == "" {
			return nil, o, fmt.Errorf("option %s is empty", k)
		}
	}
	if o.noPortSecurity && len(o.allowed) > 0 {
		return nil, o, fmt.Errorf("options %s and %s=false: without port security the ports may use any address already", OptAllowedAddresses, OptPortSecurity)
	}
	return rest, o, nil
}

func (o portOpts) empty() bool { return len(o.allowed) == 0 && o.qos == "" && !o.noPortSecurity }

// checkPortOptions refuses what cannot go with the port options: security groups
// without port security, and a pool (its ports have Neutron's defaults).
func checkPortOptions(o portOpts, secGroups []string, poolMin int) error {
	if o.noPortSecurity && len(secGroups) > 0 {
		return fmt.Errorf("options %s and %s=false: a port without port security has no security groups", OptSecurityGroups, OptPortSecurity)
	}
	if !o.empty() && poolMin > 0 {
		return errors.New("option " + OptPoolMin + " with port options: a pool's interfaces have Neutron's defaults only")
	}
	return nil
}

// portOptionsOf is what a network's record asks of its ports.
func portOptionsOf(dn *state.DockerNetwork) (neutron.PortOptions, error) {
	var o neutron.PortOptions
	if dn == nil {
		return o, nil
	}
	for _, a := range dn.AllowedAddresses {
		p, err := neutron.ParseAddressPair(a)
		if err != nil {
			return o, fmt.Errorf("docker network %s: %w", dn.ID, err)
		}
		o.AllowedAddresses = append(o.AllowedAddresses, p)
	}
	o.QoSPolicyID, o.NoPortSecurity = dn.QoSPolicy, dn.NoPortSecurity
	return o, nil
}
