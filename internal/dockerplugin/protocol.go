package dockerplugin

// The messages of Docker's plugin protocol: JSON over HTTP POST, one path per method.
// Field names are Docker's (libnetwork's remote driver and remote IPAM APIs).

// Plugin handshake.
const (
	pathActivate  = "/Plugin.Activate"
	contentType   = "application/vnd.docker.plugins.v1+json"
	networkDriver = "NetworkDriver"
	ipamDriver    = "IpamDriver"
)

type activateResponse struct {
	Implements []string
}

// errorResponse is how every method reports a failure. Docker's plugin client reads Err
// from the body of any non-200 answer, for network drivers and IPAM drivers alike.
type errorResponse struct {
	Err string
}

// Network driver.

type capabilitiesResponse struct {
	Scope             string
	ConnectivityScope string
}

type ipamData struct {
	AddressSpace string
	Pool         string // CIDR
	Gateway      string // CIDR
	AuxAddresses map[string]string
}

type createNetworkRequest struct {
	NetworkID string
	Options   map[string]any
	IPv4Data  []ipamData
	IPv6Data  []ipamData
}

type networkRequest struct {
	NetworkID string
}

type endpointInterface struct {
	Address     string
	AddressIPv6 string
	MacAddress  string
}

type createEndpointRequest struct {
	NetworkID  string
	EndpointID string
	Interface  *endpointInterface
	Options    map[string]any
}

// createEndpointResponse carries no Interface: Docker supplies the address (from the
// IPAM) and refuses an answer that sets what it supplied.
type createEndpointResponse struct {
	Interface *endpointInterface `json:",omitempty"`
}

type endpointRequest struct {
	NetworkID  string
	EndpointID string
}

type endpointInfoResponse struct {
	Value map[string]any
}

type joinRequest struct {
	NetworkID  string
	EndpointID string
	SandboxKey string
	Options    map[string]any
}

type interfaceName struct {
	SrcName   string
	DstPrefix string
}

type joinResponse struct {
	InterfaceName         *interfaceName
	Gateway               string `json:",omitempty"`
	GatewayIPv6           string `json:",omitempty"`
	DisableGatewayService bool
}

// IPAM driver.

type ipamCapabilitiesResponse struct {
	RequiresMACAddress    bool
	RequiresRequestReplay bool
}

type addressSpacesResponse struct {
	LocalDefaultAddressSpace  string
	GlobalDefaultAddressSpace string
}

type requestPoolRequest struct {
	AddressSpace string
	Pool         string
	SubPool      string
	Options      map[string]string
	V6           bool
}

type requestPoolResponse struct {
	PoolID string
	Pool   string
	Data   map[string]string
}

type releasePoolRequest struct {
	PoolID string
}

type requestAddressRequest struct {
	PoolID  string
	Address string
	Options map[string]string
}

type requestAddressResponse struct {
	Address string // CIDR
	Data    map[string]string
}

type releaseAddressRequest struct {
	PoolID  string
	Address string
}

// Option keys.
const (
	// Docker's request type for the gateway address, in RequestAddress's Options.
	optAddressType = "RequestAddressType"
	addressGateway = "com.docker.network.gateway"
	// Docker puts the driver options (docker network create -o) under this key.
	optGeneric = "com.docker.network.generic"

	// Options that adopt an existing Neutron network: -o for the network driver,
	// --ipam-opt for the IPAM driver (which also takes the subnet ones).
	OptNetName    = "neutron.net.name"
	OptNetID      = "neutron.net.id"
	OptSubnetName = "neutron.subnet.name"
	OptSubnetID   = "neutron.subnet.id"
	// OptSecurityGroups (driver side, -o) puts the network's container ports in these
	// security groups (names or IDs, comma-separated) instead of the project's default.
	OptSecurityGroups = "neutron.security_groups"
)

// The address spaces the IPAM announces; a network driver request naming another one
// comes from another IPAM driver.
const (
	LocalAddressSpace  = "ovn-local"
	GlobalAddressSpace = "ovn-global"
)
