package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/packyard/packyard/internal/client"
)

// globals are the client-side flags every API command shares.
type globals struct {
	server string
	token  string
	output string
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func (g *globals) register(root *cobra.Command) {
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", envOr("PACKYARD_SERVER", "http://localhost:8080"), "server URL (env PACKYARD_SERVER)")
	pf.StringVar(&g.token, "token", "", "API token (env PACKYARD_TOKEN; default: <data>/admin.token when readable)")
	pf.StringVarP(&g.output, "output", "o", "table", "output format of listings: table or json")
}

// client builds an API client, finding the token in the flag, the
// environment, or the local server's admin.token file.
func (g *globals) client() *client.Client {
	tok := g.token
	if tok == "" {
		tok = os.Getenv("PACKYARD_TOKEN")
	}
	if tok == "" {
		data := envOr("PACKYARD_DATA", "./packyard-data")
		if b, err := os.ReadFile(filepath.Join(data, "admin.token")); err == nil {
			tok = strings.TrimSpace(string(b))
		}
	}
	return client.New(g.server, tok, nil)
}

func (g *globals) json() (bool, error) {
	switch g.output {
	case "json":
		return true, nil
	case "table", "":
		return false, nil
	}
	return false, fmt.Errorf("--output %q: use table or json", g.output)
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
