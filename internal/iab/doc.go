// Package iab parses the consent strings of the IAB frameworks that clients
// send: the TCF v2.x TC string (Transparency & Consent Framework, core
// segment: "Consent string and vendor list formats v2") and the GPP string
// (Global Privacy Platform v1 header, with the tcfeuv2, uspv1, usnat and
// usca sections). The strings are untrusted input: every read is bounds
// checked, sizes are capped, and a malformed string is an *Error with a
// stable reason, never a panic and never a partial result.
package iab
