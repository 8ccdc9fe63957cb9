package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgentCommand: packyard agent refuses a missing or bad configuration
// without creating anything, and with a good one copies the origin's
// repository and stops cleanly on cancel.
func TestAgentCommand(t *testing.T) {
	if r := runCLI(t, "agent"); r.err == nil || !strings.Contains(r.err.Error(), "--config") {
		t.Errorf("agent without --config: %v", r.err)
	}
	dir := t.TempDir()
	root, state := filepath.Join(dir, "root"), filepath.Join(dir, "state.db")
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("origin = \"http://o\"\nroot_dir = \""+root+"\"\nstate_db = \""+state+"\"\nfull_sync = 5\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if r := runCLI(t, "agent", "--config", bad); r.err == nil || !strings.Contains(r.err.Error(), `unknown key "full_sync"`) {
		t.Errorf("agent with an unknown key: %v", r.err)
	}
	if r := runCLI(t, "agent", "--config", filepath.Join(dir, "missing.toml")); r.err == nil {
		t.Error("agent with a missing config file succeeded")
	}
	for _, p := range []string{root, state} {
		if _, err := os.Stat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("a refused configuration left %s behind: %v", p, err)
		}
	}

	s := newServer(t)
	s.run(t, "repo", "create", "r", "--format", "rpm").must(t, "repo create")
	f, _ := writeRPM(t, t.TempDir(), "agentcli", "1.0")
	s.run(t, "push", "r", f).must(t, "push")
	tok := strings.TrimSpace(s.run(t, "token", "create", "edge-cli", "--scope", "edge").must(t, "token create").stdout)
	good := filepath.Join(dir, "agent.toml")
	cfg := "origin = \"" + s.url + "\"\nname = \"edge-cli\"\nroot_dir = \"root\"\nstate_db = \"state.db\"\nrepos = [\"r\"]\n"
	if err := os.WriteFile(good, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PACKYARD_AGENT_TOKEN", tok)
	cmd := newRootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs([]string{"agent", "--config", good, "--log-format", "text"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	deadline := time.Now().Add(testTimeout)
	for {
		if _, err := os.Stat(filepath.Join(root, "r", "repodata", "repomd.xml")); err == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("the agent did not copy the repository:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("agent after cancel: %v\n%s", err, out.String())
	}
}
