// Package iab parses the consent strings of the IAB frameworks as browsers
// and SDKs send them to Custos, so that consent is stored exactly as the
// person gave it and a malformed string is refused with a machine-readable
// reason instead of being stored as consent:
//
//   - TCF v2 TC strings (IAB Europe Transparency & Consent Framework,
//     "Consent string and vendor list formats v2", core string format 2,
//     including TCF v2.2 strings, which carry TcfPolicyVersion 4).
//   - GPP strings (IAB Tech Lab Global Privacy Platform, "Consent String
//     Specification" v1) with their tcfeuv2 (2), uspv1 (6, the IAB CCPA /
//     US Privacy string), usnat (7, US National, 2022 and 2024 layouts)
//     and usca (8, California v1) sections. Other registered sections are
//     listed by id and name, not parsed.
//
// The strings are untrusted input. Both parsers refuse input over MaxLen
// before decoding, bound every allocation by the input length or by a
// 16-bit field, never panic, and return an *Error whose Reason is one of
// the Reason constants. The comment on each reader names the table of the
// specification its bit layout comes from.
package iab
