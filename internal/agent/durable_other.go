//go:build !linux

package agent

import "os"

// syncTemps makes the written temporary files durable, one fsync each.
func syncTemps(temps []*tmpFile) error {
	for _, t := range temps {
		if t == nil {
			continue
		}
		f, err := os.OpenFile(t.name, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			return err
		}
	}
	return nil
}
