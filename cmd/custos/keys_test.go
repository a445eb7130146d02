package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

// TestKeysRotateWhileServing: `custos keys rotate` runs beside a serving
// process, which goes on taking and showing events afterwards; every data
// key is rewrapped, and a process started afterwards (with nothing cached)
// reads every profile: those rewrapped under the new version and the one
// the running process wrapped with the version it still had.
func TestKeysRotateWhileServing(t *testing.T) {
	eachBackend(t, func(t *testing.T, be backend) {
		dir := t.TempDir()
		srv := startInProcess(t, be, dir)
		c := newClient(srv.url)
		identify := func(c *client, user, mid string) {
			t.Helper()
			body := fmt.Sprintf(`{"userId":%q,"messageId":%q,"traits":{"email":"%s@example.com","plan":"plan-%s"}}`, user, mid, user, user)
			if status, resp := c.do(t, "POST", "/v1/identify", segmentAuth(), []byte(body)); status != http.StatusOK {
				t.Fatalf("identify: %d %s", status, resp)
			}
		}
		readable := func(c *client, user string) bool {
			t.Helper()
			p, ok := c.profile(t, "user_id:"+user)
			return ok && string(p.Traits["plan"]) == `"plan-`+user+`"` && p.has("email", user+"@example.com")
		}
		for _, u := range []string{"before-1", "before-2", "before-3"} {
			identify(c, u, "m-"+u)
			c.waitProfile(t, "user_id:"+u, "the identify", func(p apiProfile) bool { return p.Counts.Events == 1 })
		}

		var out, errOut bytes.Buffer
		args := append([]string{"rotate", "--settle", "0"}, be.args(dir, "127.0.0.1:0")...)
		if err := keysCommand(context.Background(), args, &out, &errOut); err != nil {
			t.Fatalf("keys rotate: %v\n%s%s", err, out.String(), errOut.String())
		}
		if !strings.Contains(out.String(), "master key version 2 added") {
			t.Errorf("keys rotate said:\n%s", out.String())
		}
		m := regexp.MustCompile(`(\d+) data keys rewrapped`).FindStringSubmatch(out.String())
		if m == nil || m[1] != "3" {
			t.Errorf("keys rotate rewrapped %v keys, want 3:\n%s", m, out.String())
		}

		// The running process goes on: old profiles, new events, new people.
		identify(c, "before-1", "m-again")
		identify(c, "after-1", "m-after-1")
		c.waitProfile(t, "user_id:after-1", "a new person after the rotation", func(p apiProfile) bool { return p.Counts.Events == 1 })
		c.waitProfile(t, "user_id:before-1", "an old person's new event", func(p apiProfile) bool { return p.Counts.Events == 2 })
		for _, u := range []string{"before-1", "before-2", "before-3", "after-1"} {
			if !readable(c, u) {
				t.Errorf("%s unreadable in the running process after the rotation", u)
			}
		}
		if err := srv.stop(t); err != nil {
			t.Fatal(err)
		}

		// A fresh process, nothing cached.
		srv2 := startInProcess(t, be, dir)
		c2 := newClient(srv2.url)
		for _, u := range []string{"before-1", "before-2", "before-3", "after-1"} {
			if !readable(c2, u) {
				t.Errorf("%s unreadable in a new process after the rotation", u)
			}
		}
	})
}
