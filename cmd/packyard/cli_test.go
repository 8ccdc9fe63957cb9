package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/packyard/packyard/internal/client"
)

func TestVersion(t *testing.T) {
	r := runCLI(t, "version").must(t, "version")
	if r.stdout != "packyard "+version+"\n" {
		t.Errorf("version printed %q", r.stdout)
	}
	if r := runCLI(t, "version", "extra"); r.err == nil {
		t.Errorf("version with an argument succeeded")
	}
}

// commandPaths lists the argument paths of every command below root.
func commandPaths(c *cobra.Command, prefix []string) [][]string {
	var out [][]string
	for _, sub := range c.Commands() {
		p := append(append([]string{}, prefix...), sub.Name())
		out = append(out, p)
		out = append(out, commandPaths(sub, p)...)
	}
	return out
}

func TestHelpEverySubcommand(t *testing.T) {
	paths := commandPaths(newRootCmd(), nil)
	if len(paths) < 10 {
		t.Fatalf("only %d commands found: %v", len(paths), paths)
	}
	paths = append(paths, []string{"completion"}, []string{"completion", "bash"}, nil)
	for _, p := range paths {
		name := strings.Join(append([]string{"packyard"}, p...), " ")
		t.Run(name, func(t *testing.T) {
			r := runCLI(t, append(p, "--help")...).must(t, name+" --help")
			if !strings.Contains(r.stdout, "Usage:") || !strings.Contains(r.stdout, name) {
				t.Errorf("%s --help printed:\n%s", name, r.stdout)
			}
		})
	}
}

func TestCompletionBash(t *testing.T) {
	r := runCLI(t, "completion", "bash").must(t, "completion bash")
	for _, want := range []string{"bash completion", "__start_packyard", "complete -o default -F __start_packyard packyard"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("bash completion script lacks %q", want)
		}
	}
	if len(r.stdout) < 1000 {
		t.Errorf("bash completion script is only %d bytes", len(r.stdout))
	}
}

func TestRepoCommands(t *testing.T) {
	s := newServer(t)

	r := s.run(t, "repo", "create", "el9", "--format", "rpm", "-o", "json").must(t, "repo create")
	var created client.Repo
	if err := json.Unmarshal([]byte(r.stdout), &created); err != nil {
		t.Fatalf("repo create -o json printed %q: %v", r.stdout, err)
	}
	if created.Name != "el9" || created.Format != "rpm" || created.Kind != "hosted" || created.CurrentGeneration < 1 || created.URL != s.url+"/el9/" {
		t.Errorf("created %+v", created)
	}
	r = s.run(t, "repo", "create", "el8", "--format", "rpm").must(t, "repo create (table)")
	if !strings.Contains(r.stdout, `created rpm repository "el8": `+s.url+"/el8/") {
		t.Errorf("repo create printed %q", r.stdout)
	}
	if r := s.run(t, "repo", "create", "el9", "--format", "rpm"); r.err == nil || !strings.Contains(r.err.Error(), "409") {
		t.Errorf("creating el9 twice: %v", r.err)
	}
	if r := s.run(t, "repo", "create", "x"); r.err == nil || !strings.Contains(r.err.Error(), "format") {
		t.Errorf("repo create without --format: %v", r.err)
	}

	r = s.run(t, "repo", "list", "-o", "json").must(t, "repo list")
	var repos []client.Repo
	if err := json.Unmarshal([]byte(r.stdout), &repos); err != nil {
		t.Fatalf("repo list -o json printed %q: %v", r.stdout, err)
	}
	if len(repos) != 2 || repos[0].Name != "el8" || repos[1].Name != "el9" {
		t.Errorf("repo list: %+v", repos)
	}
	r = s.run(t, "repo", "list").must(t, "repo list (table)")
	if lines := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.HasPrefix(lines[2], "el9 ") {
		t.Errorf("repo list table:\n%s", r.stdout)
	}
	if r := s.run(t, "repo", "list", "-o", "yaml"); r.err == nil || !strings.Contains(r.err.Error(), "yaml") {
		t.Errorf("repo list -o yaml: %v", r.err)
	}

	file, data := writeRPM(t, t.TempDir(), "tool", "1.0")
	s.run(t, "push", "el9", file).must(t, "push")
	r = s.run(t, "repo", "show", "el9", "-o", "json").must(t, "repo show")
	var shown struct {
		Repo     client.Repo      `json:"repo"`
		Packages []client.Package `json:"packages"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &shown); err != nil {
		t.Fatalf("repo show -o json printed %q: %v", r.stdout, err)
	}
	if shown.Repo.Name != "el9" || len(shown.Packages) != 1 || shown.Packages[0].Name != "tool" || shown.Packages[0].Size != int64(len(data)) {
		t.Errorf("repo show: %+v", shown)
	}
	if shown.Repo.CurrentGeneration <= created.CurrentGeneration {
		t.Errorf("generation %d after a push, %d before", shown.Repo.CurrentGeneration, created.CurrentGeneration)
	}
	r = s.run(t, "repo", "show", "el9").must(t, "repo show (table)")
	if !strings.Contains(r.stdout, "packages:    1") || !strings.Contains(r.stdout, shown.Packages[0].Path) {
		t.Errorf("repo show:\n%s", r.stdout)
	}
	if r := s.run(t, "repo", "show", "nope"); r.err == nil || !strings.Contains(r.err.Error(), "404") {
		t.Errorf("repo show nope: %v", r.err)
	}

	if r := s.run(t, "repo", "delete", "el9"); r.err == nil || !strings.Contains(r.err.Error(), "--yes") {
		t.Errorf("repo delete without --yes: %v", r.err)
	}
	s.run(t, "repo", "delete", "el9", "--yes").must(t, "repo delete")
	r = s.run(t, "repo", "list", "-o", "json").must(t, "repo list after delete")
	if strings.Contains(r.stdout, `"el9"`) {
		t.Errorf("el9 still listed after delete:\n%s", r.stdout)
	}
	if r := s.run(t, "repo", "delete", "el9", "--yes"); r.err == nil {
		t.Errorf("deleting el9 twice succeeded")
	}
}

func TestTokenCommands(t *testing.T) {
	s := newServer(t)
	s.run(t, "repo", "create", "r", "--format", "rpm").must(t, "repo create")

	r := s.run(t, "token", "create", "ci", "--scope", "write", "--repo", "r", "-o", "json").must(t, "token create")
	var tok client.Token
	if err := json.Unmarshal([]byte(r.stdout), &tok); err != nil {
		t.Fatalf("token create -o json printed %q: %v", r.stdout, err)
	}
	if tok.Name != "ci" || tok.Scope != "write" || len(tok.Repos) != 1 || tok.Repos[0] != "r" || !strings.HasPrefix(tok.Token, "pky_") {
		t.Fatalf("token create: %+v", tok)
	}
	// Table output: the secret alone on stdout, so that scripts can
	// capture it; the note on stderr.
	r = s.run(t, "token", "create", "reader", "--scope", "read").must(t, "token create (table)")
	secret := strings.TrimSpace(r.stdout)
	if !strings.HasPrefix(secret, "pky_") || strings.Contains(secret, "\n") || !strings.Contains(r.stderr, "not shown again") {
		t.Errorf("token create printed stdout %q stderr %q", r.stdout, r.stderr)
	}
	if r := s.run(t, "token", "create", "bad", "--scope", "root"); r.err == nil || !strings.Contains(r.err.Error(), "scope") {
		t.Errorf("token create --scope root: %v", r.err)
	}

	r = s.run(t, "token", "list", "-o", "json").must(t, "token list")
	if strings.Contains(r.stdout, tok.Token) || strings.Contains(r.stdout, secret) {
		t.Fatalf("token list shows a secret:\n%s", r.stdout)
	}
	var toks []client.Token
	if err := json.Unmarshal([]byte(r.stdout), &toks); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, tk := range toks {
		names[tk.Name] = true
		if tk.Token != "" {
			t.Errorf("token list entry %s carries a secret", tk.Name)
		}
	}
	if !names["admin"] || !names["ci"] || !names["reader"] || len(toks) != 3 {
		t.Errorf("token list: %+v", toks)
	}
	r = s.run(t, "token", "list").must(t, "token list (table)")
	if !regexp.MustCompile(`(?m)^ci +write +r +`).MatchString(r.stdout) || !regexp.MustCompile(`(?m)^reader +read +\* +`).MatchString(r.stdout) {
		t.Errorf("token list table:\n%s", r.stdout)
	}

	// The new token works with the CLI, within its scope.
	file, _ := writeRPM(t, t.TempDir(), "ok", "1")
	runCLI(t, "--server", s.url, "--token", tok.Token, "push", "r", file).must(t, "push with the ci token")
	if r := runCLI(t, "--server", s.url, "--token", tok.Token, "token", "list"); !isStatus(r.err, http.StatusForbidden) {
		t.Errorf("token list with a write token: %v", r.err)
	}

	s.run(t, "token", "revoke", "ci").must(t, "token revoke")
	if r := runCLI(t, "--server", s.url, "--token", tok.Token, "repo", "list"); !isStatus(r.err, http.StatusUnauthorized) {
		t.Errorf("repo list with a revoked token: %v", r.err)
	}
	if r := s.run(t, "token", "revoke", "ci"); !isStatus(r.err, http.StatusNotFound) {
		t.Errorf("revoking twice: %v", r.err)
	}
}

func isStatus(err error, status int) bool {
	var ce *client.Error
	return errors.As(err, &ce) && ce.Status == status
}

func TestCLIFindsToken(t *testing.T) {
	s := newServer(t)
	// No token anywhere: the server refuses.
	if r := runCLI(t, "--server", s.url, "repo", "create", "r", "--format", "rpm"); !isStatus(r.err, http.StatusUnauthorized) {
		t.Fatalf("repo create without a token: %v", r.err)
	}
	// PACKYARD_TOKEN.
	t.Setenv("PACKYARD_TOKEN", s.admin)
	runCLI(t, "--server", s.url, "repo", "create", "a", "--format", "rpm").must(t, "repo create with PACKYARD_TOKEN")
	// The server's own <data>/admin.token.
	t.Setenv("PACKYARD_TOKEN", "")
	t.Setenv("PACKYARD_DATA", s.data)
	runCLI(t, "--server", s.url, "repo", "create", "b", "--format", "rpm").must(t, "repo create with <data>/admin.token")
	// PACKYARD_SERVER.
	t.Setenv("PACKYARD_SERVER", s.url)
	r := runCLI(t, "repo", "list", "-o", "json").must(t, "repo list with PACKYARD_SERVER")
	if !strings.Contains(r.stdout, `"b"`) {
		t.Errorf("repo list via PACKYARD_SERVER:\n%s", r.stdout)
	}
	// --token wins over the environment.
	t.Setenv("PACKYARD_TOKEN", s.admin)
	if r := runCLI(t, "--token", "pky_wrong", "repo", "list"); !isStatus(r.err, http.StatusUnauthorized) {
		t.Errorf("--token pky_wrong with a good PACKYARD_TOKEN: %v", r.err)
	}
}

func TestPush(t *testing.T) {
	s := newServer(t)
	s.run(t, "repo", "create", "r", "--format", "rpm").must(t, "repo create")
	dir := t.TempDir()
	good1, b1 := writeRPM(t, dir, "one", "1.0")
	good2, b2 := writeRPM(t, dir, "two", "2.0")
	bad := filepath.Join(dir, "bad.rpm")
	if err := os.WriteFile(bad, []byte("this is not an rpm"), 0o644); err != nil {
		t.Fatal(err)
	}

	r := s.run(t, "push", "r", good1, bad, good2)
	var ee exitError
	if !errors.As(r.err, &ee) {
		t.Fatalf("push with a bad file returned %v, want an exitError", r.err)
	}
	if !strings.Contains(ee.Error(), "1 of 3") {
		t.Errorf("exit error %q", ee.Error())
	}
	summary := regexp.MustCompile(`^(\d+) uploaded \((\d+) bytes\), (\d+) already present, (\d+) failed in \S+\n$`)
	m := summary.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("push summary %q", r.stdout)
	}
	if want := []string{"2", fmt.Sprint(len(b1) + len(b2)), "0", "1"}; !slices.Equal(m[1:], want) {
		t.Errorf("summary counts %v, want %v: %q", m[1:], want, r.stdout)
	}
	if !strings.Contains(r.stderr, "FAILED   "+bad+": ") || !strings.Contains(r.stderr, "(HTTP 400)") {
		t.Errorf("push did not report the bad file:\n%s", r.stderr)
	}
	for _, f := range []string{good1, good2} {
		if !strings.Contains(r.stderr, "uploaded "+f+" -> ") {
			t.Errorf("push did not report %s:\n%s", f, r.stderr)
		}
	}

	// Again: the good files are present, nothing fails.
	r = s.run(t, "push", "r", good1, good2).must(t, "push again")
	if m := summary.FindStringSubmatch(r.stdout); m == nil || !slices.Equal(m[1:], []string{"0", "0", "2", "0"}) {
		t.Errorf("second push summary %q", r.stdout)
	}
	if strings.Count(r.stderr, "present  ") != 2 {
		t.Errorf("second push:\n%s", r.stderr)
	}

	// A missing file and a directory fail locally, without a request.
	r = s.run(t, "push", "r", filepath.Join(dir, "missing.rpm"), dir, "--no-wait")
	if !errors.As(r.err, &ee) || !strings.Contains(r.stdout, "0 uploaded (0 bytes), 0 already present, 2 failed") {
		t.Errorf("push of a missing file and a directory: %v %q", r.err, r.stdout)
	}
	if r := s.run(t, "push", "nope", good1); r.err == nil || !strings.Contains(r.stderr, "404") {
		t.Errorf("push to a missing repository: %v\n%s", r.err, r.stderr)
	}
}
