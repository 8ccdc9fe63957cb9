// Package proc reads what the benchmarks need to know about processes and
// the machine from /proc (Linux): a process's CPU time and memory, and how
// much CPU other processes took during a measurement, which matters on a
// 2-core machine that others share.
package proc

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Mem is a process's resident memory in KiB, from /proc/PID/status.
type Mem struct {
	RSS, HWM int64
}

// ReadMem returns the VmRSS and VmHWM of process pid.
func ReadMem(pid int) (Mem, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Mem{}, err
	}
	defer f.Close()
	var m Mem
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
		if fs := strings.Fields(line); len(fs) >= 2 {
			*dst, _ = strconv.ParseInt(fs[1], 10, 64)
		}
	}
	return m, sc.Err()
}

// userHZ is the unit of the times in /proc/PID/stat and /proc/stat on
// Linux.
const userHZ = 100

// CPUTime returns the user plus system CPU time of process pid.
func CPUTime(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no ')'", pid)
	}
	// After the command name: state is field 3 of proc(5), utime 14 and
	// stime 15, i.e. indexes 11 and 12 here.
	fs := strings.Fields(s[i+1:])
	if len(fs) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(fs))
	}
	ut, _ := strconv.ParseInt(fs[11], 10, 64)
	st, _ := strconv.ParseInt(fs[12], 10, 64)
	return time.Duration(ut+st) * time.Second / userHZ, nil
}

// machineBusy returns the CPU time all processes used since boot (user,
// nice, system, irq, softirq, steal; not idle or iowait).
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
	return time.Duration(j) * time.Second / userHZ
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

// Foreign measures the CPU time that other processes (not this one, its
// waited-for children or the processes under test) used during a phase.
type Foreign struct {
	start     time.Time
	busy, own time.Duration
	pids      []int
	pidCPU    time.Duration

	// Set by Stop.
	Elapsed time.Duration
	// Other is the CPU time of other processes.
	Other time.Duration
}

// StartForeign starts measuring; the CPU time of pids (a server under
// test, a daemon that works for a tool under test) counts as the
// benchmark's own.
func StartForeign(pids ...int) *Foreign {
	m := &Foreign{start: time.Now(), busy: machineBusy(), own: ownCPU(), pids: pids}
	m.pidCPU = m.cpuOfPIDs()
	return m
}

func (m *Foreign) cpuOfPIDs() time.Duration {
	var t time.Duration
	for _, pid := range m.pids {
		if c, err := CPUTime(pid); err == nil {
			t += c
		}
	}
	return t
}

// Stop ends the measurement and returns m.
func (m *Foreign) Stop() *Foreign {
	m.Elapsed = time.Since(m.start)
	busy := machineBusy() - m.busy
	own := ownCPU() - m.own + m.cpuOfPIDs() - m.pidCPU
	m.Other = max(0, busy-own)
	return m
}

// Share is the other processes' CPU time as a share of the machine's
// capacity during the phase.
func (m *Foreign) Share() float64 {
	if m == nil || m.Elapsed <= 0 {
		return 0
	}
	return m.Other.Seconds() / (m.Elapsed.Seconds() * float64(runtime.NumCPU()))
}

// Find returns the processes whose command line (the arguments of
// /proc/PID/cmdline) satisfies match.
func Find(match func(args []string) bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil || len(b) == 0 {
			continue
		}
		if match(strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")) {
			out = append(out, pid)
		}
	}
	return out
}
