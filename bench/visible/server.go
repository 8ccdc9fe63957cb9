package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// server is a running packyard process.
type server struct {
	cmd   *exec.Cmd
	base  string
	token string
	data  string
	log   *os.File
	done  chan error
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// startServer starts `packyard serve` on a fresh data directory and waits
// until it answers /healthz.
func startServer(bin, data, logPath string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	tb := make([]byte, 24)
	_, _ = rand.Read(tb)
	tok := "pyd_bench_" + hex.EncodeToString(tb)
	lf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	cmd := exec.Command(bin, "serve", "--data", data, "--listen", addr, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "PACKYARD_ADMIN_TOKEN="+tok)
	cmd.Stdout, cmd.Stderr = lf, lf
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := cmd.Start(); err != nil {
		lf.Close()
		return nil, err
	}
	s := &server{cmd: cmd, base: "http://" + addr, token: tok, data: data, log: lf, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return s, nil
			}
		}
		select {
		case err := <-s.done:
			lf.Close()
			return nil, fmt.Errorf("packyard exited at start (%v); see %s", err, logPath)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("packyard did not answer /healthz within 30 s; see %s", logPath)
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// alive reports an error if the server has exited.
func (s *server) alive() error {
	select {
	case err := <-s.done:
		s.done <- err
		return fmt.Errorf("packyard exited (%v); see %s", err, s.log.Name())
	default:
		return nil
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(15 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.log.Close()
}

// memStatus is a process's resident memory (kB) from /proc/PID/status.
type memStatus struct {
	RSS, HWM int64
}

func readMem(pid int) (memStatus, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return memStatus{}, err
	}
	defer f.Close()
	var m memStatus
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		var dst *int64
		switch {
		case strings.HasPrefix(line, "VmRSS:"):
			dst = &m.RSS
		case strings.HasPrefix(line, "VmHWM:"):
			dst = &m.HWM
		default:
			continue
		}
		fs := strings.Fields(line)
		if len(fs) >= 2 {
			*dst, _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return m, sc.Err()
}

// cpuTime returns a process's user and system CPU time from /proc/PID/stat.
func cpuTime(pid int) (user, sys time.Duration, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("bad /proc stat")
	}
	fs := strings.Fields(s[i+1:])
	// fields after ')': state(0) ... utime is field 14 overall → index 11 here.
	if len(fs) < 13 {
		return 0, 0, fmt.Errorf("bad /proc stat")
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut) * time.Second / hz, time.Duration(st) * time.Second / hz, nil
}

// sampleRSS samples a process's VmRSS every interval until ctx ends and
// returns the highest value seen.
func sampleRSS(ctx context.Context, pid int, interval time.Duration) <-chan int64 {
	out := make(chan int64, 1)
	go func() {
		var peak int64
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			if m, err := readMem(pid); err == nil {
				peak = max(peak, m.RSS)
			}
			select {
			case <-ctx.Done():
				if m, err := readMem(pid); err == nil {
					peak = max(peak, m.RSS)
				}
				out <- peak
				return
			case <-t.C:
			}
		}
	}()
	return out
}

// machineBusy returns the CPU time all processes used since boot (user,
// nice, system, irq, softirq, steal; not idle or iowait), from /proc/stat.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fs := strings.Fields(line)
	if len(fs) < 9 || fs[0] != "cpu" {
		return 0
	}
	var j int64
	for _, i := range []int{1, 2, 3, 6, 7, 8} {
		v, _ := strconv.ParseInt(fs[i], 10, 64)
		j += v
	}
	return time.Duration(j) * time.Second / 100
}

// ownCPU returns the CPU time of this process and its waited-for children.
func ownCPU() time.Duration {
	var t time.Duration
	for _, who := range []int{syscall.RUSAGE_SELF, syscall.RUSAGE_CHILDREN} {
		var ru syscall.Rusage
		if syscall.Getrusage(who, &ru) == nil {
			t += time.Duration(ru.Utime.Nano()) + time.Duration(ru.Stime.Nano())
		}
	}
	return t
}

// foreignMeter measures the CPU time other processes (not this one, its
// children or the server under test) used during a phase.
type foreignMeter struct {
	start       time.Time
	busy, own   time.Duration
	server      time.Duration
	serverPID   int
	Foreign     time.Duration
	Elapsed     time.Duration
	MachineBusy time.Duration
}

func startForeign(serverPID int) *foreignMeter {
	m := &foreignMeter{start: time.Now(), busy: machineBusy(), own: ownCPU(), serverPID: serverPID}
	if serverPID > 0 {
		u, s, _ := cpuTime(serverPID)
		m.server = u + s
	}
	return m
}

func (m *foreignMeter) stop() *foreignMeter {
	m.Elapsed = time.Since(m.start)
	m.MachineBusy = machineBusy() - m.busy
	own := ownCPU() - m.own
	if m.serverPID > 0 {
		u, s, _ := cpuTime(m.serverPID)
		own += u + s - m.server
	}
	m.Foreign = max(0, m.MachineBusy-own)
	return m
}

// share is the foreign CPU time as a share of the machine's capacity.
func (m *foreignMeter) share() float64 {
	if m.Elapsed <= 0 {
		return 0
	}
	return m.Foreign.Seconds() / (m.Elapsed.Seconds() * float64(runtime.NumCPU()))
}
