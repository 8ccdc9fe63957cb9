//go:build !linux

package agent

import (
	"errors"
	"os"
	"time"
)

// Unnamed temporary files exist on Linux only; elsewhere every temporary
// file is named.

func openUnnamed(string) *os.File { return nil }

func unnamedClosed() {}

func linkUnnamed(*os.File, string) error { return errors.New("unnamed files are not supported") }

func setMTime(f *os.File, t time.Time) error { return os.Chtimes(f.Name(), t, t) }
