// Package opendsr holds the pure parts of Custos's data subject request
// handling, shared by the processor API (brands send OpenDSR requests to
// Custos) and the controller side (Custos sends OpenDSR requests to the tools
// it forwarded data to): the wire types, strict request validation, the
// mapping of OpenDSR identities to Custos identities, the legal deadlines,
// and the RSA signatures that OpenDSR answers and callbacks carry.
//
// Nothing here does I/O or reads a clock: time is always passed in. Stores,
// HTTP handlers and workflows are built on top.
//
// # Version
//
// The package speaks the OpenDSR 2.0 wire format (APIVersion): the required
// regulation field, the /requests resource and the X-OpenDSR-* headers are
// what distinguish it from OpenGDPR 1.0, whose header names are still sent
// and accepted beside the new ones.
//
// # Personal data
//
// Identity values are personal data. No error, message or log value made
// here ever contains one: validation problems name the field, never its
// content, and SubjectIdentity and Request log with their values redacted.
//
// # Deadlines
//
// Deadlines are computed at receipt, in UTC, and keep the clock time of
// receipt (truncated to the second). GDPR Art. 12(3) gives one calendar
// month (the same date in the next month, or that month's last day),
// extendable once to three months from receipt. The CCPA (Cal. Civ. Code
// 1798.130, 11 CCR 7021) gives 10 business days to confirm receipt and 45
// calendar days to answer, extendable once to 90. Business days are Monday
// to Friday: public holidays are not counted out, which can only make the
// acknowledgement deadline earlier than the law's, never later. For the
// same reason a GDPR deadline falling on a weekend is not moved to the next
// working day.
package opendsr
