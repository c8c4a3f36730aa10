package api

// PortOptions are what run (and a CNI ADD) asks of each port it makes beyond its network
// and security groups, as the user gave them; the service resolves them. The DNS name
// comes from the container's hostname.
type PortOptions struct {
	// AllowedAddresses are IP[/MAC] or CIDR[/MAC]: each goes to the ports whose network
	// has a subnet holding it, else to the first interface's.
	AllowedAddresses []string `json:"allowed_addresses,omitempty"`
	QoSPolicy        string   `json:"qos_policy,omitempty"` // name or ID
	NoPortSecurity   bool     `json:"no_port_security,omitempty"`
}
