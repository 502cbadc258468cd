package web

import (
	"net"
	"strings"
)

// hostList is the set of names and addresses the server answers to
// (docs/security.md, "Host and Origin"). A request for any other Host is
// refused with 421 before anything else happens: a page on another site
// whose name was rebound to this machine's address (DNS rebinding) names
// that site in Host, and gets nothing.
type hostList struct {
	ips      []net.IP // every address named here is allowed, any port
	loopback bool     // loopback names and addresses
	names    []string // lower case; "*.example.com" allows its sub-domains
}

// newHostList builds the list for a server bound on bound (host:port as
// configured; the host may be a name) and the --allowed-hosts entries.
// On loopback it is the loopback names and addresses. Elsewhere it is the
// bound address — every address of the machine's interfaces for a
// wildcard address such as 0.0.0.0, loopback included — and the
// configured name, if the address was given as one. The allowed entries
// are added in every case.
func newHostList(bound string, allowed []string) *hostList {
	h := &hostList{}
	host, _, err := net.SplitHostPort(bound)
	if err != nil {
		host = bound
	}
	ip := net.ParseIP(host)
	switch {
	case host == "localhost" || ip != nil && ip.IsLoopback():
		h.loopback = true
	case host == "" || ip != nil && ip.IsUnspecified():
		h.loopback = true
		if addrs, err := net.InterfaceAddrs(); err == nil {
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					h.ips = append(h.ips, n.IP)
				}
			}
		}
	case ip != nil:
		h.ips = append(h.ips, ip)
	default:
		h.names = append(h.names, strings.ToLower(strings.TrimSuffix(host, ".")))
	}
	for _, a := range allowed {
		if ip := net.ParseIP(strings.Trim(a, "[]")); ip != nil {
			h.ips = append(h.ips, ip)
			continue
		}
		h.names = append(h.names, strings.ToLower(strings.TrimSuffix(a, ".")))
	}
	return h
}

// allows reports whether a Host header (or an Origin's host) names this
// server; the port is not checked.
func (h *hostList) allows(hostport string) bool {
	host := hostport
	if hp, _, err := net.SplitHostPort(hostport); err == nil {
		host = hp
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if ip := net.ParseIP(host); ip != nil {
		if h.loopback && ip.IsLoopback() {
			return true
		}
		for _, a := range h.ips {
			if a.Equal(ip) {
				return true
			}
		}
		return false
	}
	if h.loopback && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
		return true
	}
	for _, n := range h.names {
		if n == host || strings.HasPrefix(n, "*.") && strings.HasSuffix(host, n[1:]) {
			return true
		}
	}
	return false
}

// CheckAllowedHosts checks --allowed-hosts entries: host names (a leading
// "*." allows the sub-domains), IPv4 or IPv6 addresses, without a port.
func CheckAllowedHosts(hosts []string) error {
	for _, h := range hosts {
		name := strings.TrimPrefix(h, "*.")
		if ip := net.ParseIP(strings.Trim(h, "[]")); ip != nil {
			continue
		}
		if name == "" || strings.ContainsAny(name, ":/ *@?#") {
			return Errorf(CodeBadParameter, "allowed host %q: want a host name (*.example.com for its sub-domains) or an address, without a port", h)
		}
	}
	return nil
}
