// Package bus is Custos's durable log and queues on NATS JetStream. It starts
// the embedded JetStream server (file store in the data dir, fsync on every
// write, store encryption on) or connects to an external cluster; the code
// that writes and reads streams is the same in both modes.
//
// The event log is a work-queue stream: the gateway appends events through a
// group committer (the events of many concurrent requests share one log
// write, and each caller returns once that write is durable) and the
// processor consumes them with explicit acks. A log entry is removed once the
// processor has acked it, so personal data stays in the log only until it has
// been processed.
package bus
