package proc

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Output runs a tool in dir with a plain C locale and returns its
// standard output; an error carries its standard error.
func Output(dir, prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(prog, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %v: %s", prog, strings.Join(args, " "), err, stderr.Bytes())
	}
	return out, nil
}

// Usage is what a finished command took.
type Usage struct {
	Wall time.Duration
	// CPU is the user plus system time of the command and the
	// descendants it waited for.
	CPU time.Duration
	// MaxRSS is the peak resident memory, in KiB, of the command or of
	// the largest of the descendants it waited for.
	MaxRSS int64
}

// TimeBin is GNU time, through which Measure runs a command to learn
// its peak memory.
const TimeBin = "/usr/bin/time"

// Measure runs cmd, which has not been started, and returns its wall time
// (start to exit) and resource usage, with the command's exit error.
//
// The peak memory comes from GNU time (%M), which runs the command: the
// ru_maxrss that wait4 gives this process for a child it started counts
// this process's own peak too (Go starts a child with vfork semantics,
// and exec folds the old, shared address space's high-water mark into
// the child's), so a benchmark that holds a few hundred MiB would see
// that in every tool's figure. Without GNU time (apt-get install time)
// MaxRSS is 0.
func Measure(cmd *exec.Cmd) (Usage, error) {
	var rssFile string
	if _, err := os.Stat(TimeBin); err == nil {
		f, err := os.CreateTemp("", "bench-time-")
		if err != nil {
			return Usage{}, err
		}
		rssFile = f.Name()
		f.Close()
		defer os.Remove(rssFile)
		cmd.Args = append([]string{TimeBin, "-f", "%M", "-o", rssFile, "--", cmd.Path}, cmd.Args[1:]...)
		cmd.Path = TimeBin
	}
	start := time.Now()
	err := cmd.Run()
	u := Usage{Wall: time.Since(start)}
	if cmd.ProcessState != nil {
		if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
			u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		}
	}
	if rssFile != "" {
		b, _ := os.ReadFile(rssFile)
		// On a failure time writes "Command exited with non-zero status N"
		// first; the figure is the last line.
		lines := strings.Fields(string(b))
		if len(lines) > 0 {
			u.MaxRSS, _ = strconv.ParseInt(lines[len(lines)-1], 10, 64)
		}
	}
	return u, err
}
