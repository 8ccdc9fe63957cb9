package agent

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// syncTemps makes the written temporary files durable: one syncfs(2) per
// filesystem they are on (in practice one), instead of an fsync per file.
func syncTemps(temps []*tmpFile) error {
	dirs := map[string]bool{}
	devs := map[uint64]bool{}
	for _, t := range temps {
		if t == nil {
			continue
		}
		d := filepath.Dir(t.dst)
		if dirs[d] {
			continue
		}
		dirs[d] = true
		var st syscall.Stat_t
		if err := syscall.Stat(d, &st); err != nil {
			return err
		}
		if devs[st.Dev] {
			continue
		}
		devs[st.Dev] = true
		f, err := os.Open(d)
		if err != nil {
			return err
		}
		err = unix.Syncfs(int(f.Fd()))
		f.Close()
		if err != nil {
			return fmt.Errorf("syncfs %s: %w", d, err)
		}
	}
	return nil
}
