// Package forward sends people's data to the tools a workspace connects,
// only as their consent allows: the per-destination decision (source,
// enabled, filter, consent, minimisation), the durable per-destination
// queues with batching, retries, dead letters and replay, and the
// interface every destination type implements.
package forward
