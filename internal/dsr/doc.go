// Package dsr runs data subject requests: it takes OpenDSR requests in,
// computes their legal deadlines, resolves the people they name through the
// identity graph, and carries them out: access and portability exports, and
// erasure everywhere Custos holds or sent the data, with suppression,
// destination propagation, status callbacks and a proof that outlives the
// person's data.
package dsr
