package watch

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/packyard/packyard/internal/blob"
	"github.com/packyard/packyard/internal/format"
	"github.com/packyard/packyard/internal/meta"
	"github.com/packyard/packyard/internal/repo"
)

// refused reports whether an import error means the repository will not
// take the file as it is: it goes to rejected/. Every other error passes
// (shutdown, I/O, a busy database): the file stays.
func refused(err error) bool {
	return errors.Is(err, format.ErrInvalidPackage) || errors.Is(err, format.ErrPackageTooLarge) ||
		errors.Is(err, blob.ErrTooLarge) || errors.Is(err, repo.ErrConflict) || errors.Is(err, errNoDistribution)
}

// errSignature refuses a package whose signature file cannot be used.
var errSignature = errors.New("package signature")

// importFile imports one settled file whose stamp was st.
func (f *folder) importFile(root *os.Root, rel string, st stamp) result {
	cfg := f.cfg.Load()
	params := format.UploadParams{}
	if f.format == meta.FormatDeb {
		dist, comp, err := debScope(rel, *cfg)
		if err != nil {
			return f.reject(root, rel, "", err)
		}
		params["distribution"], params["component"] = dist, comp
	}
	// O_NONBLOCK: a file swapped for a FIFO must not hang the import.
	file, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return result{rel: rel, next: nextDone}
	}
	if err != nil {
		return f.retry(rel, fmt.Errorf("open: %w", err))
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return f.retry(rel, fmt.Errorf("stat: %w", err))
	}
	if lfi, err := root.Lstat(rel); err != nil || !os.SameFile(fi, lfi) || !fi.Mode().IsRegular() ||
		fi.Size() != st.size || fi.ModTime().UnixNano() != st.mtime {
		return result{rel: rel, next: nextSettle} // replaced or changed since it settled
	}
	sigRel := ""
	if st.sig {
		sigRel = rel + ".sig"
		sig, err := readSignature(root, sigRel)
		switch {
		case errors.Is(err, errSignature):
			return f.reject(root, rel, sigRel, err)
		case err != nil:
			return f.retry(rel, err)
		}
		params[paramSignature] = base64.StdEncoding.EncodeToString(sig)
	}

	body := &readTracker{r: io.LimitReader(file, st.size)}
	res, err := f.w.svc.Ingest(f.ctx, repo.Upload{
		Repo: f.repo, Filename: path.Base(rel), Body: body, Params: params, Uploader: f.uploader, Wait: true,
	})
	changed := f.changed(root, rel, fi)
	switch {
	case f.ctx.Err() != nil:
		// Whatever the error says, the import was cut short.
		if err == nil {
			return f.imported(root, rel, sigRel, res, *cfg)
		}
		return f.retry(rel, err)
	case body.err != nil:
		return f.retry(rel, fmt.Errorf("read: %w", body.err))
	case changed:
		// Written to while it was read: whatever was stored, the file
		// now holds other bytes. Wait for it to settle again; it is then
		// identical, or refused as a conflict with a reason.
		f.w.opts.Metrics.WatchFile(f.repo, ResultRetry)
		f.log.Warn("a file in the drop folder changed while it was imported; it is looked at again once it settles", "file", rel, "err", err)
		return result{rel: rel, next: nextSettle}
	case err == nil:
		return f.imported(root, rel, sigRel, res, *cfg)
	case refused(err):
		return f.reject(root, rel, sigRel, err)
	default:
		return f.retry(rel, err)
	}
}

// readTracker remembers a read error, so that an I/O error that a parser
// reports as a malformed package does not reject a good file.
type readTracker struct {
	r   io.Reader
	err error
}

func (t *readTracker) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		t.err = err
	}
	return n, err
}

// changed reports whether the file at rel is no longer the one that was
// imported, as it was.
func (f *folder) changed(root *os.Root, rel string, was fs.FileInfo) bool {
	now, err := root.Lstat(rel)
	return err != nil || !os.SameFile(was, now) || now.Size() != was.Size() || !now.ModTime().Equal(was.ModTime())
}

// readSignature reads a pacman package's .sig file.
func readSignature(root *os.Root, rel string) ([]byte, error) {
	fi, err := root.Lstat(rel)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w %s is not a regular file", errSignature, rel)
	}
	file, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", rel, err)
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxSignatureSize+1))
	if err != nil {
		return nil, fmt.Errorf("signature %s: %w", rel, err)
	}
	if len(b) > maxSignatureSize {
		return nil, fmt.Errorf("%w %s is larger than %d KiB: not a detached signature", errSignature, rel, maxSignatureSize>>10)
	}
	return b, nil
}

// imported deletes an imported file, or moves it to imported/.
func (f *folder) imported(root *os.Root, rel, sigRel string, res *repo.Result, cfg folderConfig) result {
	outcome := ResultImported
	if !res.Created {
		outcome = ResultIdentical
	}
	f.w.opts.Metrics.WatchFile(f.repo, outcome)
	attrs := []any{"file", rel, "result", outcome, "package", res.Package.Path, "generation", res.Generation}
	if sigRel != "" {
		attrs = append(attrs, "signature", sigRel)
	}
	if cfg.keep {
		moved, err := f.moveAside(root, importedDir, rel, sigRel)
		if err != nil {
			f.log.Error("imported a file from the drop folder but cannot move it to imported/; it stays and is found identical at the next scan",
				append(attrs, "err", err)...)
			return result{rel: rel, next: nextRescan}
		}
		f.log.Info("imported a file from the drop folder", append(attrs, "moved_to", moved)...)
		return result{rel: rel, next: nextDone}
	}
	for _, p := range []string{rel, sigRel} {
		if p == "" {
			continue
		}
		if err := root.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			f.log.Error("imported a file from the drop folder but cannot delete it; it stays and is found identical at the next scan",
				append(attrs, "err", err)...)
			return result{rel: rel, next: nextRescan}
		}
	}
	f.log.Info("imported a file from the drop folder", attrs...)
	return result{rel: rel, next: nextDone}
}

// reject moves a refused file (and its signature) to rejected/ and writes
// why beside it, last.
func (f *folder) reject(root *os.Root, rel, sigRel string, cause error) result {
	moved, err := f.moveAside(root, rejectedDir, rel, sigRel)
	if err != nil {
		f.w.opts.Metrics.WatchFile(f.repo, ResultRetry)
		f.log.Error("the repository refused a file from the drop folder, and it cannot be moved to rejected/; it stays and is tried again at the next scan",
			"file", rel, "reason", cause, "err", err)
		return result{rel: rel, next: nextRescan}
	}
	f.w.opts.Metrics.WatchFile(f.repo, ResultRejected)
	why := fmt.Sprintf("error: %v\nfile: %s\nrepository: %s\ntime: %s\n", cause, rel, f.repo, time.Now().UTC().Format(time.RFC3339))
	if sigRel != "" {
		why += "signature: " + sigRel + " (moved beside the file)\n"
	}
	// Written last and whole (a temporary name, then a rename): once
	// FILE.error is there, the rejection is complete.
	tmp := path.Join(path.Dir(moved), "."+path.Base(moved)+".error.tmp")
	err = root.WriteFile(tmp, []byte(why), 0o644)
	if err == nil {
		err = root.Rename(tmp, moved+".error")
	}
	if err != nil {
		_ = root.Remove(tmp)
		f.log.Error("cannot write the reason beside a rejected file", "file", moved, "reason", cause, "err", err)
	}
	f.log.Warn("rejected a file from the drop folder", "file", rel, "moved_to", moved, "reason", cause)
	return result{rel: rel, next: nextDone}
}

// retry leaves a file in place for the next scan.
func (f *folder) retry(rel string, err error) result {
	f.w.opts.Metrics.WatchFile(f.repo, ResultRetry)
	if f.ctx.Err() != nil {
		f.log.Info("import from the drop folder interrupted; the file stays and is imported later", "file", rel)
	} else {
		f.log.Warn("cannot import a file from the drop folder now; it stays and is tried again at the next scan",
			"file", rel, "err", err, "rescan", f.w.opts.Rescan)
	}
	return result{rel: rel, next: nextRescan}
}

// moveAside moves rel (and its signature) into dir under a name nothing
// has there yet, and returns the new path.
func (f *folder) moveAside(root *os.Root, dir, rel, sigRel string) (string, error) {
	f.moveMu.Lock()
	defer f.moveMu.Unlock()
	if err := root.Mkdir(dir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return "", err
	}
	base := path.Base(rel)
	for n := 0; n < 10000; n++ {
		to := path.Join(dir, numbered(f.format, base, n))
		if exists(root, to) || exists(root, to+".error") || (sigRel != "" && exists(root, to+".sig")) {
			continue
		}
		if err := root.Rename(rel, to); err != nil {
			return "", err
		}
		if sigRel != "" {
			if err := root.Rename(sigRel, to+".sig"); err != nil {
				f.log.Error("cannot move a package signature beside its package", "file", sigRel, "to", to+".sig", "err", err)
			}
		}
		return to, nil
	}
	return "", fmt.Errorf("no free name for %s in %s/", base, dir)
}

func exists(root *os.Root, rel string) bool {
	_, err := root.Lstat(rel)
	return !errors.Is(err, fs.ErrNotExist)
}
