package service

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultMetadataURL is OpenStack's metadata service's description of the VM's NICs:
// for each, its MAC and its Neutron port (vif_id), as Nova knows them.
const DefaultMetadataURL = "http://169.254.169.254/openstack/latest/network_data.json"

// metadataTimeout bounds the question: a VM without the service (config drive only, or
// no route to it) must not wait long before the next way of finding its port.
const metadataTimeout = 3 * time.Second

// networkData is the part of network_data.json that names ports.
type networkData struct {
	Links []struct {
		MAC   string `json:"ethernet_mac_address"`
		VIFID string `json:"vif_id"`
	} `json:"links"`
}

// vifFromMetadata asks the metadata service which Neutron port has the MAC.
func vifFromMetadata(ctx context.Context, url string, mac net.HardwareAddr) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, metadataTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", fmt.Errorf("the metadata service: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("the metadata service: %s answered %s", url, resp.Status)
	}
	var nd networkData
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&nd); err != nil {
		return "", fmt.Errorf("the metadata service's network_data.json: %w", err)
	}
	for _, l := range nd.Links {
		if strings.EqualFold(l.MAC, mac.String()) && l.VIFID != "" {
			return l.VIFID, nil
		}
	}
	return "", fmt.Errorf("the metadata service knows no NIC with MAC %s", mac)
}
