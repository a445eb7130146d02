// Package cdp holds Custos's domain: the types every stage shares (events,
// identities, workspaces, sources) and the rules that belong to no single
// adapter. It imports only the standard library; stores, the log, the HTTP
// surfaces and destinations depend on it, never the other way round.
package cdp
