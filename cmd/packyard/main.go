// Command packyard is a self-hosted Linux package repository server and its
// command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/packyard/packyard/internal/client"
)

// Set by the build (-ldflags "-X main.version=…").
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		var ee exitError
		if !errors.As(err, &ee) {
			fmt.Fprintln(os.Stderr, "packyard:", err)
		}
		var ae *client.Error
		if errors.As(err, &ae) && ae.Status == 401 {
			fmt.Fprintln(os.Stderr, "hint: pass --token or set PACKYARD_TOKEN (the first admin token is in <data>/admin.token)")
		}
		os.Exit(1)
	}
}

// exitError makes the command exit non-zero without printing again.
type exitError struct{ msg string }

func (e exitError) Error() string { return e.msg }

func newRootCmd() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "packyard",
		Short:         "Self-hosted Linux package repository server (rpm, deb, arch)",
		Long:          "packyard hosts RPM, APT and pacman repositories: uploads are installable as soon as they are acknowledged.\n\nRun `packyard serve` to start a server with embedded defaults (./packyard-data, :8080).",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	g.register(root)
	root.AddCommand(newServeCmd(), newRepoCmd(g), newMirrorCmd(g), newSnapshotCmd(g), newPushCmd(g), newTokenCmd(g), newKeyCmd(g),
		newVerifyCmd(g), newGCCmd(g), newMigrateCmd(g), newVersionCmd())
	root.AddCommand(newAgentCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the packyard version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "packyard", version)
		},
	}
}
