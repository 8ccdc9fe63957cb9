package repo

import "runtime"

// chunkResult is one encoded chunk.
type chunkResult struct {
	data   []byte
	digest string
	rec    xzRecord
	err    error
}

// chunkWindow encodes chunks ahead of the one asked for: at most
// 2×GOMAXPROCS at once, so that the memory held stays bounded however
// many chunks an output has.
type chunkWindow struct {
	n       int
	encode  func(int) chunkResult
	results []chan chunkResult
	next    int // the next chunk to start
	width   int
}

func newChunkWindow(n int, encode func(int) chunkResult) *chunkWindow {
	return &chunkWindow{n: n, encode: encode, results: make([]chan chunkResult, n), width: 2 * runtime.GOMAXPROCS(0)}
}

// get returns chunk i's result; chunks are asked for in order.
func (w *chunkWindow) get(i int) chunkResult {
	if w.next < i {
		w.next = i
	}
	for w.next < w.n && w.next < i+w.width {
		c := make(chan chunkResult, 1)
		w.results[w.next] = c
		j := w.next
		go func() { c <- w.encode(j) }()
		w.next++
	}
	r := <-w.results[i]
	w.results[i] = nil
	return r
}

// close waits for the chunks started and not asked for (after an error).
func (w *chunkWindow) close() {
	for i, c := range w.results {
		if c != nil {
			<-c
			w.results[i] = nil
		}
	}
}
