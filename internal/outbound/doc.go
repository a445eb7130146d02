// Package outbound builds the HTTP clients through which Custos reaches
// the outside: destinations (webhooks, Segment-compatible endpoints, raw
// batch URLs), data subject request status callbacks and OpenDSR requests
// to processors. Whoever configures one of those URLs chooses where Custos
// connects, so every connection is checked when it is made:
//
//   - Address guard (SSRF): loopback, private, link-local, carrier-grade
//     NAT, unspecified, multicast and reserved addresses, in IPv4, IPv6 and
//     IPv4-mapped, NAT64 and 6to4 forms, are refused. The check runs in the
//     dialer's Control hook, on the address the socket is about to connect
//     to after name resolution, so DNS rebinding cannot slip a private
//     address past it, and it covers every connection, redirects included.
//     Config.AllowPrivateNetworks lifts it for tests and local trials.
//   - Cloud metadata (169.254.169.254, fd00:ec2::254, 100.100.100.200 and
//     the like) is refused even then, and there is deliberately no setting
//     to allow it: no destination ever lives there, and reaching one from a
//     configured URL would hand the instance's credentials to its author.
//   - Proxies from the environment are ignored, so the guard judges the
//     real destination rather than the proxy.
//   - TLS 1.2 or later, verified against the system roots (or given ones).
//   - Optional public-key pinning: with Config.PinSHA256 set, a connection
//     is accepted only if a certificate of its verified chain has a pinned
//     SubjectPublicKeyInfo. The check is tls.Config.VerifyConnection, which
//     runs on resumed sessions too, and adds to chain verification rather
//     than replacing it. A pinned client refuses plain http.
//   - At most 3 redirects, never from https to http; each target is dialled
//     through the same guard.
//   - Timeouts on dialling, the TLS handshake, response headers and the
//     whole request, and a bounded pool of idle connections.
//
// CheckURL gives an early, clear refusal when a URL is saved; the
// connection-time guard is the defence.
package outbound
