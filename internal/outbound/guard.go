package outbound

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/custos-cdp/custos/internal/cdp"
)

// ErrBlockedAddress is wrapped by the error of a connection the guard
// refused, and matches the "blocked_address" errors of CheckURL.
var ErrBlockedAddress error = cdp.Reason(cdp.Invalid, "blocked_address",
	"the address is loopback, private, link-local, cloud metadata or otherwise not a public destination")

const (
	dialTimeout = 5 * time.Second
	keepAlive   = 30 * time.Second
	maxURLLen   = 2048
)

// blockedRange is a range of addresses that is never a public destination.
// The first range that holds an address decides.
type blockedRange struct {
	prefix  netip.Prefix
	reason  string
	private bool // lifted by allowPrivate
}

var blockedRanges = []blockedRange{
	// IPv4.
	{netip.MustParsePrefix("0.0.0.0/8"), "unspecified", false}, // Linux connects 0.0.0.0 to the local host
	{netip.MustParsePrefix("10.0.0.0/8"), "private", true},
	{netip.MustParsePrefix("100.64.0.0/10"), "carrier-grade NAT", true},
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback", true},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local", true},
	{netip.MustParsePrefix("172.16.0.0/12"), "private", true},
	{netip.MustParsePrefix("192.0.0.0/24"), "special-purpose", true},
	{netip.MustParsePrefix("192.168.0.0/16"), "private", true},
	{netip.MustParsePrefix("198.18.0.0/15"), "benchmarking", true},
	{netip.MustParsePrefix("224.0.0.0/4"), "multicast", false},
	{netip.MustParsePrefix("240.0.0.0/4"), "reserved", false}, // and 255.255.255.255
	// IPv6. IPv4-mapped addresses are unmapped before the table is read;
	// NAT64 and 6to4 addresses are judged by the IPv4 address they embed.
	{netip.MustParsePrefix("::1/128"), "loopback", true},
	{netip.MustParsePrefix("::/128"), "unspecified", false},
	{netip.MustParsePrefix("::/96"), "IPv4-compatible", false},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "IPv4-translated", false},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "local-use NAT64", true},
	{netip.MustParsePrefix("2001::/32"), "Teredo", false},
	{netip.MustParsePrefix("fc00::/7"), "unique local", true},
	{netip.MustParsePrefix("fe80::/10"), "link-local", true},
	{netip.MustParsePrefix("fec0::/10"), "site-local", true},
	{netip.MustParsePrefix("ff00::/8"), "multicast", false},
}

// metadataAddrs are cloud metadata and credential services. They stay
// blocked even when private networks are allowed: reaching one from a
// destination URL hands the instance's credentials to whoever configured it.
var metadataAddrs = map[netip.Addr]bool{
	netip.MustParseAddr("169.254.169.254"): true, // AWS, Google Cloud, Azure, OpenStack, DigitalOcean, Oracle Cloud
	netip.MustParseAddr("169.254.170.2"):   true, // AWS ECS task credentials
	netip.MustParseAddr("169.254.170.23"):  true, // AWS EKS Pod Identity agent
	netip.MustParseAddr("fd00:ec2::254"):   true, // AWS instance metadata over IPv6
	netip.MustParseAddr("fd00:ec2::23"):    true, // AWS EKS Pod Identity agent over IPv6
	netip.MustParseAddr("fd20:ce::254"):    true, // Google Cloud metadata on IPv6-only instances
	netip.MustParseAddr("100.100.100.200"): true, // Alibaba Cloud
	netip.MustParseAddr("192.0.0.192"):     true, // Oracle Cloud Infrastructure Classic
	netip.MustParseAddr("168.63.129.16"):   true, // Azure WireServer (a public address used only inside Azure)
}

var (
	nat64  = netip.MustParsePrefix("64:ff9b::/96")
	sixto4 = netip.MustParsePrefix("2002::/16")
)

// IsBlocked reports whether the guard refuses to connect to ip. Loopback,
// private (RFC 1918, unique local), link-local, carrier-grade NAT and
// benchmarking addresses are refused unless allowPrivate; unspecified,
// multicast, reserved and IPv6 transition forms that cannot be judged are
// always refused, and so are cloud metadata services. IPv4-mapped, NAT64
// and 6to4 addresses are judged by the IPv4 address they carry. An invalid
// Addr is refused.
func IsBlocked(ip netip.Addr, allowPrivate bool) bool {
	_, blocked := blockReason(ip, allowPrivate)
	return blocked
}

// blockReason is IsBlocked that also names the range, for errors.
func blockReason(ip netip.Addr, allowPrivate bool) (string, bool) {
	if !ip.IsValid() {
		return "invalid", true
	}
	ip = ip.WithZone("").Unmap()
	if metadataAddrs[ip] {
		return "cloud metadata", true
	}
	if v4, ok := embeddedIPv4(ip); ok {
		return blockReason(v4, allowPrivate)
	}
	for _, r := range blockedRanges {
		if r.prefix.Contains(ip) {
			if r.private && allowPrivate {
				return "", false
			}
			return r.reason, true
		}
	}
	return "", false
}

// embeddedIPv4 returns the IPv4 address a NAT64 (64:ff9b::/96) or 6to4
// (2002::/16) address reaches.
func embeddedIPv4(ip netip.Addr) (netip.Addr, bool) {
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return netip.AddrFrom4([4]byte(b[12:16])), true
	case sixto4.Contains(ip):
		return netip.AddrFrom4([4]byte(b[2:6])), true
	}
	return netip.Addr{}, false
}

// guard refuses, at connect time, addresses IsBlocked refuses.
type guard struct {
	allowPrivate bool
}

// control runs after name resolution, on the very address the socket is
// about to connect to, so a name that resolves to a public address when it
// is checked and to a private one when it is dialled (DNS rebinding) is
// still refused. Only TCP is allowed: a Unix socket is a local service.
func (g guard) control(network, address string, _ syscall.RawConn) error {
	if network != "tcp4" && network != "tcp6" {
		return fmt.Errorf("%s connection: %w", network, ErrBlockedAddress)
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("unparseable address: %w", ErrBlockedAddress)
	}
	if reason, blocked := blockReason(ap.Addr(), g.allowPrivate); blocked {
		return fmt.Errorf("%s address: %w", reason, ErrBlockedAddress)
	}
	return nil
}

// Dialer returns the guarded dial function NewClient's clients use, for
// callers that open their own TCP connections (a warehouse's database). It
// applies cfg.AllowPrivateNetworks; cfg's TLS settings and pins are not
// applied, since the caller runs its own protocol over the connection. A
// refused address is an error wrapping ErrBlockedAddress; networks other
// than TCP are refused. When a name resolves to several addresses, the
// blocked ones are never connected to and the others are tried in turn.
func Dialer(cfg Config) func(ctx context.Context, network, address string) (net.Conn, error) {
	d := &net.Dialer{
		Timeout:   dialTimeout,
		KeepAlive: keepAlive,
		Control:   guard{allowPrivate: cfg.AllowPrivateNetworks}.control,
	}
	return d.DialContext
}

// localSuffixes are names that only resolve inside a network.
var localSuffixes = []string{"localhost", "localdomain", "local", "internal", "home.arpa", "lan"}

// CheckURL validates a URL a user configures (a destination endpoint, a
// callback URL) before it is stored: the scheme is http or https, there is
// a host and no user name or password, the port (if any) is 1 to 65535,
// the host is an IP address or an ASCII host name (internationalised names
// in their xn-- form), and the URL is at most 2048 bytes. Unless
// allowPrivate, a literal IP address IsBlocked refuses, "localhost", a
// name without a dot, and names under .localhost, .local, .localdomain,
// .internal, .home.arpa and .lan are refused too; metadata addresses always
// are.
//
// The error is an Invalid *cdp.Error with code "invalid_url" or
// "blocked_address" (which matches ErrBlockedAddress), and its message
// never repeats the URL, which may hold a token. This check only gives an
// early, clear answer: the connection-time guard is the defence, since a
// name may resolve to anything later.
func CheckURL(raw string, allowPrivate bool) error {
	if len(raw) > maxURLLen {
		return invalidURL("the URL is longer than 2048 bytes")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return invalidURL("the URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return invalidURL("the URL must start with http:// or https://")
	}
	if u.User != nil {
		return invalidURL("the URL must not hold a user name or password; use the destination's credentials")
	}
	host := u.Hostname()
	if host == "" {
		return invalidURL("the URL has no host")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return invalidURL("the URL's port is not between 1 and 65535")
		}
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if reason, blocked := blockReason(ip, allowPrivate); blocked {
			return blockedURL("the URL's host is a " + reason + " address")
		}
		return nil
	}
	if strings.HasPrefix(u.Host, "[") {
		return invalidURL("the URL's host is not a valid IPv6 address")
	}
	name, ok := hostName(host)
	if !ok {
		return invalidURL("the URL's host is not a valid host name or IP address")
	}
	if !allowPrivate && isLocalName(name) {
		return blockedURL("the URL's host is a local network name")
	}
	return nil
}

func invalidURL(msg string) error { return cdp.Reason(cdp.Invalid, "invalid_url", msg) }
func blockedURL(msg string) error { return cdp.Reason(cdp.Invalid, "blocked_address", msg) }

// hostName returns host lower-cased without a final dot if it is a valid
// ASCII host name. Names whose labels are all numbers ("127.1",
// "2130706433", "0x7f.1") are refused: resolvers that follow inet_aton read
// them as IPv4 addresses, and no public name looks like that.
func hostName(host string) (string, bool) {
	name := strings.TrimSuffix(strings.ToLower(host), ".")
	if name == "" || len(name) > 253 {
		return "", false
	}
	labels := strings.Split(name, ".")
	numeric := 0
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return "", false
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return "", false
			}
		}
		if isNumericLabel(l) {
			numeric++
		}
	}
	if numeric == len(labels) || isAllDigits(labels[len(labels)-1]) {
		return "", false
	}
	return name, true
}

func isNumericLabel(l string) bool {
	if hex, ok := strings.CutPrefix(l, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return isAllDigits(l)
}

func isAllDigits(l string) bool {
	return l != "" && strings.Trim(l, "0123456789") == ""
}

// isLocalName reports whether name (lower-case, no final dot) only
// resolves inside a network: a single label, which a resolver completes
// with its search domains, or a name under a local suffix.
func isLocalName(name string) bool {
	if !strings.Contains(name, ".") {
		return true
	}
	for _, s := range localSuffixes {
		if name == s || strings.HasSuffix(name, "."+s) {
			return true
		}
	}
	return false
}
