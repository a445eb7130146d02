package loadgen

import (
	"fmt"
	"strconv"
	"time"
)

// Formats the generator speaks.
const (
	FormatSegment   = "segment"
	FormatMParticle = "mparticle"
)

// Limits of the wire formats (tracking-api.md), in decimal bytes so that
// either reading of "KB" holds.
const (
	segmentMaxMessageBytes = 32_000
	segmentMaxBatchBytes   = 500_000
	segmentMaxBatchLen     = 2_500
	mparticleMaxBatchBytes = 128_000
)

// A message id is <run id>-<worker>-<seq>: unique per run, and parseable
// back into the worker's ledger during verification.

func appendMessageID(b []byte, runID string, worker int, seq uint64) []byte {
	b = append(b, runID...)
	b = append(b, '-')
	b = strconv.AppendInt(b, int64(worker), 10)
	b = append(b, '-')
	return strconv.AppendUint(b, seq, 10)
}

// parseMessageID reads the worker and seq out of an id of run runID. ok is
// false for any other id (other runs, other clients, server-made ids).
func parseMessageID(id, runID string) (worker int, seq uint64, ok bool) {
	if len(id) <= len(runID)+1 || id[:len(runID)] != runID || id[len(runID)] != '-' {
		return 0, 0, false
	}
	rest := id[len(runID)+1:]
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i == 0 || i == len(rest) || rest[i] != '-' || i > 9 {
		return 0, 0, false
	}
	w, err := strconv.Atoi(rest[:i])
	if err != nil {
		return 0, 0, false
	}
	digits := rest[i+1:]
	if digits == "" || digits[0] == '+' || digits[0] == '-' {
		return 0, 0, false
	}
	s, err := strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, 0, false
	}
	return w, s, true
}

type product struct {
	id, sku, name string
	cents         int64
}

// catalog is what the synthetic customers buy: two lines per order.
var catalog = [...]product{
	{"507f1f77bcf86cd799439011", "45790-32", "Monopoly: 3rd Edition", 1999},
	{"505bd76785ebb509fc183733", "46493-32", "Uno Card Game", 399},
	{"5f2c1e0a9d3b4c7a8e6f1d20", "10233-07", "Espresso Machine Pro", 24900},
	{"60a7d3f4b2c1e8f9a0d4c5b6", "88120-14", "Trail Running Shoes", 11950},
	{"61b8e4a5c3d2f9a0b1e5d6c7", "30981-02", "Noise Cancelling Headphones", 29999},
	{"62c9f5b6d4e3a0b1c2f6e7d8", "77415-55", "Organic Green Tea 100g", 850},
	{"63dafac7e5f4b1c2d3a7f8e9", "51200-19", "Merino Wool Sweater", 8900},
	{"64ebab08f6a5c2d3e4b8a9fa", "20644-71", "Stainless Water Bottle", 2450},
}

var userAgents = [...]string{
	"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
	"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
	"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
	"Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36",
	"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
}

// Documentation address ranges (RFC 5737): realistic, and nobody's address.
var ipPrefixes = [...]string{"192.0.2.", "198.51.100.", "203.0.113."}

// Salts that derive independent per-user values from one hash.
const (
	saltUser = iota + 1
	saltAnonymousID
	saltDevice
	saltMPID
)

// mix is the splitmix64 finaliser: a fast, well-spread hash of a uint64.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ x>>30) * 0xbf58476d1ce4e5b9
	x = (x ^ x>>27) * 0x94d049bb133111eb
	return x ^ x>>31
}

// generator builds request bodies for one worker. Per-user values (the
// anonymous id, the device, the mpid) are derived from the run seed, so a
// user looks the same in every request of a run without a table of users.
// Not safe for concurrent use.
type generator struct {
	format string
	runID  string
	worker int
	users  int
	seed   uint64
	rng    uint64 // splitmix64 state
	ts     []byte // scratch for the timestamp
}

func newGenerator(format, runID string, seed uint64, worker, users int) *generator {
	return &generator{
		format: format, runID: runID, worker: worker, users: users,
		seed: seed, rng: mix(seed ^ uint64(worker)<<32),
	}
}

func (g *generator) next() uint64 {
	g.rng += 0x9e3779b97f4a7c15
	return mix(g.rng)
}

func (g *generator) intn(n int) int { return int(g.next() % uint64(n)) }

func (g *generator) userHash(salt uint64, user int) uint64 {
	return mix(g.seed ^ salt<<56 ^ uint64(user))
}

// pickUser returns a user number in 1..users, uniformly.
func (g *generator) pickUser() int { return 1 + g.intn(g.users) }

// build appends to dst one request body carrying n events with seqs
// first..first+n-1, all stamped now.
func (g *generator) build(dst []byte, first uint64, n int, now time.Time) []byte {
	if g.format == FormatMParticle {
		return g.appendMParticleBatch(dst, first, n, now)
	}
	g.ts = now.UTC().AppendFormat(g.ts[:0], time.RFC3339Nano)
	if n == 1 {
		return g.appendSegmentTrack(dst, first, g.pickUser())
	}
	dst = append(dst, `{"batch":[`...)
	for i := range n {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = g.appendSegmentTrack(dst, first+uint64(i), g.pickUser())
	}
	dst = append(dst, `],"sentAt":"`...)
	dst = append(dst, g.ts...)
	return append(dst, `"}`...)
}

func appendUUID(b []byte, h uint64) []byte {
	const hex = "0123456789abcdef"
	var raw [16]byte
	hi, lo := mix(h), mix(h+1)
	for i := range 8 {
		raw[i] = byte(hi >> (8 * i))
		raw[8+i] = byte(lo >> (8 * i))
	}
	raw[6] = raw[6]&0x0f | 0x40 // version 4
	raw[8] = raw[8]&0x3f | 0x80 // RFC 4122 variant
	for i, c := range raw {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hex[c>>4], hex[c&0x0f])
	}
	return b
}

func appendCents(b []byte, cents int64) []byte {
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	c := cents % 100
	return append(b, byte('0'+c/10), byte('0'+c%10))
}

// appendProducts appends the lines of one order and returns its revenue.
func (g *generator) appendProducts(b []byte) ([]byte, int64) {
	a := g.intn(len(catalog))
	second := (a + 1 + g.intn(len(catalog)-1)) % len(catalog)
	var revenue int64
	for i, idx := range [2]int{a, second} {
		p := &catalog[idx]
		qty := int64(1 + g.intn(3))
		revenue += p.cents * qty
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"product_id":"`...)
		b = append(b, p.id...)
		b = append(b, `","sku":"`...)
		b = append(b, p.sku...)
		b = append(b, `","name":"`...)
		b = append(b, p.name...)
		b = append(b, `","price":`...)
		b = appendCents(b, p.cents)
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, qty, 10)
		b = append(b, '}')
	}
	return b, revenue
}

// appendSegmentTrack appends one Segment "Order Completed" track message
// (about 700 bytes, most of it the products and the user agent).
func (g *generator) appendSegmentTrack(b []byte, seq uint64, user int) []byte {
	b = append(b, `{"type":"track","userId":"user-`...)
	b = strconv.AppendInt(b, int64(user), 10)
	b = append(b, `","anonymousId":"`...)
	b = appendUUID(b, g.userHash(saltAnonymousID, user))
	b = append(b, `","messageId":"`...)
	b = appendMessageID(b, g.runID, g.worker, seq)
	b = append(b, `","timestamp":"`...)
	b = append(b, g.ts...)
	b = append(b, `","event":"Order Completed","properties":{"order_id":"ord-`...)
	b = appendMessageID(b, g.runID, g.worker, seq)
	b = append(b, `","products":[`...)
	b, revenue := g.appendProducts(b)
	b = append(b, `],"revenue":`...)
	b = appendCents(b, revenue)
	b = append(b, `,"currency":"USD"},"context":{"ip":"`...)
	h := g.userHash(saltUser, user)
	b = append(b, ipPrefixes[h%uint64(len(ipPrefixes))]...)
	b = strconv.AppendUint(b, 1+(h>>8)%254, 10)
	b = append(b, `","library":{"name":"analytics-go","version":"3.3.0"},"userAgent":"`...)
	b = append(b, userAgents[(h>>16)%uint64(len(userAgents))]...)
	return append(b, `"}}`...)
}

// appendMParticleBatch appends one mParticle batch (one user) with n
// custom events. It carries no user_attributes, so the server derives no
// extra identify event from it and every stored event is one that was sent.
func (g *generator) appendMParticleBatch(b []byte, first uint64, n int, now time.Time) []byte {
	user := g.pickUser()
	ms := now.UnixMilli()
	b = append(b, `{"environment":"production","source_request_id":"`...)
	b = append(b, g.runID...)
	b = append(b, "-req-"...)
	b = strconv.AppendInt(b, int64(g.worker), 10)
	b = append(b, '-')
	b = strconv.AppendUint(b, first, 10)
	b = append(b, `","mpid":`...)
	b = strconv.AppendInt(b, int64(g.userHash(saltMPID, user)>>1), 10)
	b = append(b, `,"user_identities":{"customer_id":"user-`...)
	b = strconv.AppendInt(b, int64(user), 10)
	b = append(b, `","email":"user-`...)
	b = strconv.AppendInt(b, int64(user), 10)
	b = append(b, `@example.com"},"device_info":{"ios_idfv":"`...)
	b = appendUUID(b, g.userHash(saltDevice, user))
	b = append(b, `"},"events":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		seq := first + uint64(i)
		b = append(b, `{"event_type":"custom_event","data":{"event_name":"Order Completed","custom_event_type":"transaction","source_message_id":"`...)
		b = appendMessageID(b, g.runID, g.worker, seq)
		b = append(b, `","timestamp_unixtime_ms":`...)
		b = strconv.AppendInt(b, ms, 10)
		b = append(b, `,"custom_attributes":{"order_id":"ord-`...)
		b = appendMessageID(b, g.runID, g.worker, seq)
		b = append(b, `","revenue":"`...)
		b = appendCents(b, 500+int64(g.intn(50000)))
		b = append(b, `","currency":"USD"}}}`...)
	}
	return append(b, `]}`...)
}

// checkSize builds the largest body this configuration can produce and
// fails if it is over the format's limits.
func checkSize(format, runID string, workers, users, batch int) error {
	g := newGenerator(format, runID, 1, workers-1, users)
	const bigSeq = 1 << 40
	now := time.Now()
	// Slack per message covers the longest product names and user agent.
	const slack = 160
	if format == FormatMParticle {
		if size := len(g.build(nil, bigSeq, batch, now)) + batch*16; size > mparticleMaxBatchBytes {
			return fmt.Errorf("an mParticle batch of %d events (about %d bytes) is over the limit of %d bytes", batch, size, mparticleMaxBatchBytes)
		}
		return nil
	}
	if one := len(g.build(nil, bigSeq, 1, now)) + slack; one > segmentMaxMessageBytes {
		return fmt.Errorf("a Segment message of %d bytes is over the limit of %d", one, segmentMaxMessageBytes)
	}
	if batch > segmentMaxBatchLen {
		return fmt.Errorf("a batch of %d messages is over the Segment limit of %d", batch, segmentMaxBatchLen)
	}
	if batch > 1 {
		if size := len(g.build(nil, bigSeq, batch, now)) + batch*slack; size > segmentMaxBatchBytes {
			return fmt.Errorf("a Segment batch of %d messages (about %d bytes) is over the limit of %d bytes", batch, size, segmentMaxBatchBytes)
		}
	}
	return nil
}
