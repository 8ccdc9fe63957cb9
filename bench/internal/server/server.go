// Package server runs the real packyard binary for the benchmarks and
// talks to it as a client would: start and stop `packyard serve`, upload
// package files (singly, or many at once for a preload) and read the
// published repository.
package server

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"
	"time"
)

// Server is a running `packyard serve`.
type Server struct {
	// Base is the server's URL, http://127.0.0.1:PORT.
	Base string
	// Token is the admin token it was started with.
	Token string
	cmd   *exec.Cmd
	log   string
	done  chan error
}

// Start starts `packyard serve` on a fresh data directory, listening on a
// port the kernel picks, and returns once the server has logged the
// address it serves on (the "packyard serving" line of its JSON log).
// The log goes to logPath. env (NAME=VALUE, such as
// PACKYARD_DEFAULT_KEY_ALGORITHM=ed25519) is added to the server's
// environment last, so it wins over the same name inherited from the
// benchmark's.
func Start(bin, data, logPath string, env ...string) (*Server, error) {
	tb := make([]byte, 24)
	_, _ = rand.Read(tb)
	s := &Server{Token: "pyd_bench_" + hex.EncodeToString(tb), log: logPath, done: make(chan error, 1)}
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		lf.Close()
		return nil, err
	}
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", "127.0.0.1:0")
	cmd.Env = append(append(os.Environ(), "PACKYARD_ADMIN_TOKEN="+s.Token, "PACKYARD_LOG_FORMAT=json"), env...)
	cmd.Stdout, cmd.Stderr = pw, pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		lf.Close()
		return nil, err
	}
	pw.Close()
	s.cmd = cmd
	addr := make(chan string, 1)
	go func() {
		// Copy the log to its file, picking out the listen address.
		defer lf.Close()
		defer pr.Close()
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		sent := false
		for sc.Scan() {
			line := sc.Bytes()
			_, _ = lf.Write(append(line, '\n'))
			if sent {
				continue
			}
			var rec struct {
				Msg    string `json:"msg"`
				Listen string `json:"listen"`
			}
			if json.Unmarshal(line, &rec) == nil && rec.Msg == "packyard serving" && rec.Listen != "" {
				addr <- rec.Listen
				sent = true
			}
		}
		_, _ = io.Copy(lf, pr)
	}()
	go func() { s.done <- cmd.Wait() }()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	select {
	case a := <-addr:
		s.Base = "http://" + a
		return s, nil
	case err := <-s.done:
		return nil, fmt.Errorf("packyard exited at start (%v); see %s", err, logPath)
	case <-ctx.Done():
		s.Stop()
		return nil, fmt.Errorf("packyard did not log \"packyard serving\" within 60 s; see %s", logPath)
	}
}

// PID is the server's process id.
func (s *Server) PID() int { return s.cmd.Process.Pid }

// Alive reports an error if the server has exited.
func (s *Server) Alive() error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("packyard exited (%v); see %s", err, s.log)
	default:
		return nil
	}
}

// Stop ends the server with SIGTERM, or SIGKILL after 15 s.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
}
