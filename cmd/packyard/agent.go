package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/packyard/packyard/internal/agent"
	"github.com/packyard/packyard/internal/config"
)

func newAgentCmd() *cobra.Command {
	var file, logFormat, debugListen string
	cmd := &cobra.Command{
		Use:   "agent --config FILE",
		Short: "Run an edge replica that keeps a directory tree identical with an origin",
		Long: `packyard agent follows an origin server's change feed and keeps root_dir
byte-identical with the origin's repositories (root_dir/<repo>/…, the
origin's URL layout), for nginx, Apache or its own server to serve.
Every file is verified against its digest; pointer files are switched
last and atomically. See docs/edge.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("--config FILE is required (see docs/edge.md)")
			}
			cfg, err := agent.LoadConfig(file, os.Getenv)
			if err != nil {
				return err
			}
			log := newLogger(config.Server{LogLevel: cfg.LogLevel, LogFormat: logFormat}, cmd.ErrOrStderr())
			if debugListen != "" {
				if err := serveDebug(debugListen, log); err != nil {
					return err
				}
			}
			a, err := agent.New(cmd.Context(), cfg, agent.Options{Version: version, Log: log})
			if err != nil {
				return err
			}
			defer a.Close()
			if err := a.Run(cmd.Context()); err != nil {
				return fmt.Errorf("agent: %w", err)
			}
			log.Info("packyard agent stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&file, "config", "", "agent configuration file (TOML)")
	cmd.Flags().StringVar(&debugListen, "debug-listen", os.Getenv("PACKYARD_DEBUG_LISTEN"), "serve Go's profiler (/debug/pprof/) on this address, unauthenticated: keep it on loopback (env PACKYARD_DEBUG_LISTEN)")
	cmd.Flags().StringVar(&logFormat, "log-format", envOr("PACKYARD_LOG_FORMAT", "auto"), "text, json or auto: text on a terminal (env PACKYARD_LOG_FORMAT)")
	return cmd
}
