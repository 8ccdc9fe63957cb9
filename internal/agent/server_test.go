package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestAgentSyncEndpointAuth: POST /api/v1/sync runs a full sync only for
// a request with the agent's sync_token; without one configured it is
// turned off. The rest of the server needs no token.
func TestAgentSyncEndpointAuth(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	cfg.SyncToken = "s3cret-sync-token-0123"
	a := startAgent(t, cfg)
	waitFor(t, "initial copy", a.caughtUp(o, "el"))
	a.settled(t)
	post := func(a *runningAgent, auth string) (int, map[string]any) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, "http://"+a.Addr()+"/api/v1/sync", nil)
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatalf("POST /api/v1/sync: %d, body not JSON: %v", resp.StatusCode, err)
		}
		return resp.StatusCode, out
	}
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", "Basic " + cfg.SyncToken, "Bearer " + cfg.SyncToken[:len(cfg.SyncToken)-1]} {
		if code, out := post(a, auth); code != http.StatusUnauthorized || !strings.Contains(out["error"].(string), "sync_token") {
			t.Errorf("POST /api/v1/sync with %q = %d %v; want 401 naming sync_token", auth, code, out)
		}
	}
	code, out := post(a, "Bearer "+cfg.SyncToken)
	if repos, _ := out["repos"].(map[string]any); code != http.StatusOK || repos["el"] == nil {
		t.Errorf("POST /api/v1/sync with the token = %d %v; want 200 and a report naming el", code, out)
	}
	if code, _ := a.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("/healthz = %d without a token, want 200", code)
	}
	a.stop()

	cfg.SyncToken = ""
	a = startAgent(t, cfg)
	waitFor(t, "listening", func() (bool, string) { return a.Addr() != "", "no address" })
	if code, out := post(a, "Bearer s3cret-sync-token-0123"); code != http.StatusForbidden || !strings.Contains(out["error"].(string), "sync_token") {
		t.Errorf("POST /api/v1/sync without sync_token configured = %d %v; want 403 saying to set sync_token", code, out)
	}
}

func TestConfigSyncToken(t *testing.T) {
	c := Defaults()
	c.Origin, c.Name, c.Token, c.RootDir, c.StateDB = "http://o", "e", "t", "/r", "/s.db"
	for tok, ok := range map[string]bool{"": true, "short": false, " padded-with-spaces-0123 ": false, "0123456789abcdef": true} {
		c.SyncToken = tok
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("sync_token %q: %v, want valid %v", tok, err, ok)
		}
	}
}

// TestAgentStateLoadedBeforeServing: the agent's server starts only once
// the state is loaded: the server's goroutine reads what Run loads, and
// the first /healthz must already report everything the edge serves. A
// large state makes the load take long enough to be seen (or to crash on
// the unguarded map) if the server started first.
func TestAgentStateLoadedBeforeServing(t *testing.T) {
	o := newTestOrigin(t)
	o.createRepo("el")
	o.upload("el", "a", "1.0")
	cfg := testConfig(t, o)
	a := startAgent(t, cfg)
	waitFor(t, "initial copy", a.caughtUp(o, "el"))
	a.settled(t)
	a.stop()

	const n = 20000
	ctx := context.Background()
	st, err := openState(ctx, cfg.StateDB)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := st.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if _, err := tx.ExecContext(ctx, `INSERT INTO repos (name, generation, seq, synced_at) VALUES ($1, 1, 1, 1)`, fmt.Sprintf("r%05d", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := st.close(); err != nil {
		t.Fatal(err)
	}

	o.down.Store(true) // nothing changes while the agent starts
	a = startAgent(t, cfg)
	deadline := time.Now().Add(15 * time.Second)
	for a.Addr() == "" {
		if time.Now().After(deadline) {
			t.Fatal("the agent did not listen")
		}
	}
	if st := a.Status(); len(st.Repos) != n+1 {
		t.Fatalf("status as soon as the server listens names %d repositories, want %d", len(st.Repos), n+1)
	}
	if code, _ := a.get(t, "/healthz"); code != http.StatusOK {
		t.Fatalf("first /healthz = %d, want 200", code)
	}
}
