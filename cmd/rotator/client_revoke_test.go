package main

import "testing"

func TestClientRevokePrintsBound(t *testing.T) {
	e := newClientEnv(t)
	e.mustRun(exitOK, "client", "add", "ci")
	r := e.mustRun(exitOK, "client", "revoke", "ci")
	assertContains(t, "revoke", r.stdout,
		"routers stop accepting its key within their cache refresh interval (cache.refresh, 5m by default), "+
			"or up to cache.max_stale (1h by default) while they cannot read the store\n")
	help := e.mustRun(exitOK, "client", "revoke", "--help")
	assertContains(t, "help", help.stdout+help.stderr, "up to\ncache.max_stale (1h by default) while it cannot read the store")
}
