package outbound

import (
	"context"
	"errors"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"github.com/custos-cdp/custos/internal/cdp"
)

func TestIsBlocked(t *testing.T) {
	tests := []struct {
		name        string
		addr        string
		wantStrict  bool // allowPrivate false
		wantPrivate bool // allowPrivate true
	}{
		// Public addresses.
		{"public IPv4", "8.8.8.8", false, false},
		{"public IPv4 next to 10/8", "11.0.0.0", false, false},
		{"public IPv4 below CGNAT", "100.63.255.255", false, false},
		{"public IPv4 above CGNAT", "100.128.0.0", false, false},
		{"public IPv4 below 172.16/12", "172.15.255.255", false, false},
		{"public IPv4 above 172.16/12", "172.32.0.0", false, false},
		{"public IPv4 below 169.254/16", "169.253.255.255", false, false},
		{"last unicast IPv4", "223.255.255.255", false, false},
		{"public IPv6", "2606:4700:4700::1111", false, false},
		{"public IPv4-mapped", "::ffff:8.8.8.8", false, false},
		{"public NAT64", "64:ff9b::808:808", false, false},
		{"public 6to4", "2002:808:808::1", false, false},

		// Loopback.
		{"loopback", "127.0.0.1", true, false},
		{"loopback range end", "127.255.255.254", true, false},
		{"IPv6 loopback", "::1", true, false},
		{"mapped loopback", "::ffff:127.0.0.1", true, false},
		{"NAT64 of loopback", "64:ff9b::7f00:1", true, false},
		{"6to4 of loopback", "2002:7f00:1::", true, false},

		// Private.
		{"10/8", "10.1.2.3", true, false},
		{"172.16/12 start", "172.16.0.0", true, false},
		{"172.16/12 end", "172.31.255.255", true, false},
		{"192.168/16", "192.168.1.1", true, false},
		{"mapped 10/8", "::ffff:10.0.0.1", true, false},
		{"mapped 172.16/12", "::ffff:172.20.0.1", true, false},
		{"mapped 192.168/16", "::ffff:192.168.0.1", true, false},
		{"unique local", "fd12:3456::1", true, false},
		{"unique local fc", "fc00::1", true, false},
		{"site-local", "fec0::1", true, false},
		{"local-use NAT64", "64:ff9b:1::a00:1", true, false},
		{"benchmarking", "198.18.0.1", true, false},
		{"special-purpose 192.0.0/24", "192.0.0.8", true, false},

		// Link-local.
		{"link-local", "169.254.1.1", true, false},
		{"IPv6 link-local", "fe80::1", true, false},
		{"IPv6 link-local with zone", "fe80::1%eth0", true, false},
		{"mapped link-local", "::ffff:169.254.1.1", true, false},

		// Carrier-grade NAT.
		{"CGNAT start", "100.64.0.0", true, false},
		{"CGNAT end", "100.127.255.255", true, false},
		{"mapped CGNAT", "::ffff:100.64.0.1", true, false},

		// Always refused.
		{"unspecified", "0.0.0.0", true, true},
		{"this network", "0.1.2.3", true, true},
		{"IPv6 unspecified", "::", true, true},
		{"mapped unspecified", "::ffff:0.0.0.0", true, true},
		{"multicast", "224.0.0.1", true, true},
		{"multicast end", "239.255.255.255", true, true},
		{"IPv6 multicast", "ff02::1", true, true},
		{"mapped multicast", "::ffff:224.0.0.1", true, true},
		{"reserved", "240.0.0.1", true, true},
		{"broadcast", "255.255.255.255", true, true},
		{"IPv4-compatible", "::127.0.0.1", true, true},
		{"IPv4-translated", "::ffff:0:7f00:1", true, true},
		{"Teredo", "2001:0:4136:e378:8000:63bf:3fff:fdd2", true, true},

		// Cloud metadata: refused even with private networks allowed.
		{"metadata", "169.254.169.254", true, true},
		{"mapped metadata", "::ffff:169.254.169.254", true, true},
		{"NAT64 of metadata", "64:ff9b::a9fe:a9fe", true, true},
		{"6to4 of metadata", "2002:a9fe:a9fe::", true, true},
		{"AWS IPv6 metadata", "fd00:ec2::254", true, true},
		{"AWS ECS credentials", "169.254.170.2", true, true},
		{"AWS EKS Pod Identity", "169.254.170.23", true, true},
		{"AWS EKS Pod Identity IPv6", "fd00:ec2::23", true, true},
		{"Google Cloud IPv6 metadata", "fd20:ce::254", true, true},
		{"Alibaba metadata", "100.100.100.200", true, true},
		{"mapped Alibaba metadata", "::ffff:100.100.100.200", true, true},
		{"Oracle Classic metadata", "192.0.0.192", true, true},
		{"Azure WireServer", "168.63.129.16", true, true},
		{"Azure WireServer mapped", "::ffff:168.63.129.16", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ip := netip.MustParseAddr(tt.addr)
			if got := IsBlocked(ip, false); got != tt.wantStrict {
				t.Errorf("IsBlocked(%s, false): got %v, want %v", tt.addr, got, tt.wantStrict)
			}
			if got := IsBlocked(ip, true); got != tt.wantPrivate {
				t.Errorf("IsBlocked(%s, true): got %v, want %v", tt.addr, got, tt.wantPrivate)
			}
		})
	}

	t.Run("invalid address", func(t *testing.T) {
		if !IsBlocked(netip.Addr{}, true) {
			t.Error("IsBlocked(zero Addr, true): got false, want true")
		}
	})
}

func TestDialer(t *testing.T) {
	ts := startServer(t, &counter{})
	addr := strings.TrimPrefix(ts.URL, "http://")
	_, port, _ := strings.Cut(addr, ":")

	tests := []struct {
		name         string
		allowPrivate bool
		network      string
		address      string
		wantBlocked  bool
	}{
		{"loopback refused", false, "tcp", addr, true},
		{"loopback allowed", true, "tcp", addr, false},
		{"localhost refused after resolution", false, "tcp", "localhost:" + port, true},
		{"localhost allowed", true, "tcp", "localhost:" + port, false},
		{"mapped loopback refused", false, "tcp", "[::ffff:127.0.0.1]:" + port, true},
		{"unspecified refused even when allowed", true, "tcp", "0.0.0.0:" + port, true},
		{"metadata refused even when allowed", true, "tcp", "169.254.169.254:80", true},
		{"unix socket refused", true, "unix", "/run/custos-test.sock", true},
		{"udp refused", true, "udp", addr, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conn, err := Dialer(Config{AllowPrivateNetworks: tt.allowPrivate})(context.Background(), tt.network, tt.address)
			if conn != nil {
				conn.Close()
			}
			if tt.wantBlocked {
				if !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("got %v, want an error wrapping ErrBlockedAddress", err)
				}
				return
			}
			if err != nil {
				t.Errorf("got error %v, want a connection", err)
			}
		})
	}
}

func TestClientGuard(t *testing.T) {
	var hits counter
	ts := startServer(t, &hits)
	_, port, _ := strings.Cut(strings.TrimPrefix(ts.URL, "http://"), ":")

	tests := []struct {
		name         string
		allowPrivate bool
		url          string
		wantBlocked  bool
	}{
		{"127.0.0.1 refused", false, ts.URL, true},
		{"127.0.0.1 allowed", true, ts.URL, false},
		{"localhost refused after resolution", false, "http://localhost:" + port, true},
		{"localhost allowed", true, "http://localhost:" + port, false},
		{"mapped loopback refused", false, "http://[::ffff:127.0.0.1]:" + port, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hits.n.Store(0)
			c := newClient(t, Config{AllowPrivateNetworks: tt.allowPrivate})
			resp, err := get(c, tt.url)
			if tt.wantBlocked {
				if !errors.Is(err, ErrBlockedAddress) {
					t.Errorf("error: got %v, want one wrapping ErrBlockedAddress", err)
				}
				if !cdp.IsKind(err, cdp.Invalid) {
					t.Errorf("kind: got %v, want invalid", cdp.ErrorKind(err))
				}
				if got := hits.n.Load(); got != 0 {
					t.Errorf("requests served: got %d, want 0", got)
				}
				return
			}
			if err != nil || resp.StatusCode != http.StatusOK {
				t.Fatalf("got %v, %v, want status 200", resp, err)
			}
			if got := hits.n.Load(); got != 1 {
				t.Errorf("requests served: got %d, want 1", got)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	tests := []struct {
		name         string
		url          string
		wantStrict   string // code with allowPrivate false; "" for no error
		wantAllowing string // code with allowPrivate true
	}{
		{"https", "https://hooks.example.com/custos?x=1", "", ""},
		{"http with port", "http://hooks.example.com:8080/in", "", ""},
		{"upper-case scheme and host", "HTTPS://Hooks.Example.COM/", "", ""},
		{"trailing dot", "https://example.com./", "", ""},
		{"punycode", "https://xn--bcher-kva.example/", "", ""},
		{"public IPv4", "https://93.184.216.34/", "", ""},
		{"public IPv6", "https://[2606:4700:4700::1111]:8443/", "", ""},
		{"underscore", "https://my_host.example.com/", "", ""},

		{"empty", "", "invalid_url", "invalid_url"},
		{"no scheme", "hooks.example.com/in", "invalid_url", "invalid_url"},
		{"scheme-relative", "//hooks.example.com/in", "invalid_url", "invalid_url"},
		{"ftp", "ftp://files.example.com/", "invalid_url", "invalid_url"},
		{"file", "file:///etc/passwd", "invalid_url", "invalid_url"},
		{"javascript", "javascript:alert(1)", "invalid_url", "invalid_url"},
		{"no host", "https:///path", "invalid_url", "invalid_url"},
		{"opaque", "https:example.com", "invalid_url", "invalid_url"},
		{"user and password", "https://user:secret@hooks.example.com/", "invalid_url", "invalid_url"},
		{"user only", "https://token@hooks.example.com/", "invalid_url", "invalid_url"},
		{"port zero", "https://hooks.example.com:0/", "invalid_url", "invalid_url"},
		{"port too large", "https://hooks.example.com:65536/", "invalid_url", "invalid_url"},
		{"space in host", "https://hooks example.com/", "invalid_url", "invalid_url"},
		{"unicode host", "https://ｌｏｃａｌｈｏｓｔ/", "invalid_url", "invalid_url"},
		{"decimal IP", "http://2130706433/", "invalid_url", "invalid_url"},
		{"short IP", "http://127.1/", "invalid_url", "invalid_url"},
		{"hex IP", "http://0x7f000001/", "invalid_url", "invalid_url"},
		{"dotted hex IP", "http://0x7f.0.0.1/", "invalid_url", "invalid_url"},
		{"octal IP", "http://0177.0.0.1/", "invalid_url", "invalid_url"},
		{"numeric top-level label", "http://example.123/", "invalid_url", "invalid_url"},
		{"empty label", "http://hooks..example.com/", "invalid_url", "invalid_url"},
		{"label too long", "http://" + strings.Repeat("a", 64) + ".example.com/", "invalid_url", "invalid_url"},
		{"name in brackets", "http://[hooks.example.com]/", "invalid_url", "invalid_url"},
		{"too long", "https://example.com/" + strings.Repeat("a", 2048), "invalid_url", "invalid_url"},

		{"loopback", "http://127.0.0.1:8080/", "blocked_address", ""},
		{"IPv6 loopback", "http://[::1]:8080/", "blocked_address", ""},
		{"mapped loopback", "http://[::ffff:127.0.0.1]/", "blocked_address", ""},
		{"private", "https://10.0.0.5/", "blocked_address", ""},
		{"link-local with zone", "http://[fe80::1%25eth0]/", "blocked_address", ""},
		{"CGNAT", "http://100.64.1.1/", "blocked_address", ""},
		{"localhost", "http://localhost:8080/", "blocked_address", ""},
		{"localhost upper case with dot", "http://LOCALHOST./", "blocked_address", ""},
		{"sub.localhost", "http://api.localhost/", "blocked_address", ""},
		{"internal", "http://metadata.google.internal/", "blocked_address", ""},
		{"local", "http://printer.local/", "blocked_address", ""},
		{"home.arpa", "http://nas.home.arpa/", "blocked_address", ""},
		{"single label", "http://redis:6379/", "blocked_address", ""},
		{"metadata", "http://169.254.169.254/latest/meta-data/", "blocked_address", "blocked_address"},
		{"IPv6 metadata", "http://[fd00:ec2::254]/", "blocked_address", "blocked_address"},
		{"Alibaba metadata", "http://100.100.100.200/", "blocked_address", "blocked_address"},
		{"unspecified", "http://0.0.0.0:8080/", "blocked_address", "blocked_address"},
		{"multicast", "http://224.0.0.1/", "blocked_address", "blocked_address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, c := range []struct {
				allowPrivate bool
				want         string
			}{{false, tt.wantStrict}, {true, tt.wantAllowing}} {
				err := CheckURL(tt.url, c.allowPrivate)
				if c.want == "" {
					if err != nil {
						t.Errorf("CheckURL(allowPrivate=%v): got %v, want no error", c.allowPrivate, err)
					}
					continue
				}
				var e *cdp.Error
				if !errors.As(err, &e) || e.Kind != cdp.Invalid || e.Code != c.want {
					t.Errorf("CheckURL(allowPrivate=%v): got %v, want invalid/%s", c.allowPrivate, err, c.want)
					continue
				}
				if got := errors.Is(err, ErrBlockedAddress); got != (c.want == "blocked_address") {
					t.Errorf("errors.Is(err, ErrBlockedAddress): got %v, want %v", got, !got)
				}
				if u, perr := url.Parse(tt.url); perr == nil && u.Host != "" && strings.Contains(e.Message, u.Host) {
					t.Errorf("message: got %q, want one that does not repeat the host", e.Message)
				}
			}
		})
	}
}

func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{
		"https://hooks.example.com/in", "http://127.0.0.1:8080/", "http://[::ffff:169.254.169.254]/",
		"http://0x7f.1/", "https://user:pw@example.com/", "http://[fe80::1%25eth0]:80/", "http://localhost./",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	// Messages come from a fixed set, so none can repeat the URL.
	messages := map[string]bool{
		"the URL is longer than 2048 bytes":                                                true,
		"the URL does not parse":                                                           true,
		"the URL must start with http:// or https://":                                      true,
		"the URL must not hold a user name or password; use the destination's credentials": true,
		"the URL has no host":                                                              true,
		"the URL's port is not between 1 and 65535":                                        true,
		"the URL's host is not a valid IPv6 address":                                       true,
		"the URL's host is not a valid host name or IP address":                            true,
		"the URL's host is a local network name":                                           true,
		"the URL's host is a cloud metadata address":                                       true,
	}
	for _, r := range blockedRanges {
		messages["the URL's host is a "+r.reason+" address"] = true
	}
	f.Fuzz(func(t *testing.T, raw string, allowPrivate bool) {
		err := CheckURL(raw, allowPrivate)
		if err != nil {
			var e *cdp.Error
			if !errors.As(err, &e) || e.Kind != cdp.Invalid || (e.Code != "invalid_url" && e.Code != "blocked_address") {
				t.Fatalf("error: got %v, want invalid/invalid_url or invalid/blocked_address", err)
			}
			if !messages[e.Message] {
				t.Fatalf("message: got %q, want one of the fixed messages", e.Message)
			}
			return
		}
		u, perr := url.Parse(raw)
		if perr != nil {
			t.Fatalf("accepted a URL that does not parse: %v", perr)
		}
		if u.Scheme != "http" && u.Scheme != "https" || u.Hostname() == "" || u.User != nil {
			t.Fatalf("accepted scheme %q, host %q, user %v", u.Scheme, u.Hostname(), u.User)
		}
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil && IsBlocked(ip, allowPrivate) {
			t.Fatalf("accepted blocked address %s (allowPrivate %v)", ip, allowPrivate)
		}
	})
}
