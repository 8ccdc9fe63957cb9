package blobbatch

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	a, b := strings.Repeat("a", 64), strings.Repeat("b", 64)
	var buf bytes.Buffer
	_ = WriteHeader(&buf, a, 3)
	buf.WriteString("xyz")
	_ = WriteHeader(&buf, b, Missing)
	_ = WriteHeader(&buf, b, 0)
	var got []string
	if err := Walk(buf.Bytes(), func(d string, data []byte) {
		if data == nil {
			got = append(got, d[:1]+":missing")
			return
		}
		got = append(got, d[:1]+":"+string(data))
		if len(data) > 0 {
			data[0] = 'X'
		}
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, ",") != "a:xyz,b:missing,b:" {
		t.Errorf("walk = %v", got)
	}
	if !strings.Contains(buf.String(), "Xyz") {
		t.Error("Walk's fn could not modify the bytes in place")
	}
}

func TestReadHeaderBad(t *testing.T) {
	d := strings.Repeat("c", 64)
	for _, in := range []string{
		"short 1\n",
		d + "\n",
		d + " -2\n",
		d + " x\n",
		d + " 1" + strings.Repeat("0", 100) + "\n",
	} {
		_, _, err := ReadHeader(bufio.NewReader(strings.NewReader(in)))
		if !errors.Is(err, ErrBadHeader) {
			t.Errorf("ReadHeader(%.20q…) = %v, want ErrBadHeader", in, err)
		}
	}
	if _, _, err := ReadHeader(bufio.NewReader(strings.NewReader(d + " 1"))); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut header: %v", err)
	}
	if err := Walk([]byte(d+" 5\nab"), func(string, []byte) {}); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Errorf("cut blob: %v", err)
	}
}

func FuzzReadHeader(f *testing.F) {
	f.Add([]byte(strings.Repeat("d", 64) + " 12\n"))
	f.Add([]byte("x -1\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, size, err := ReadHeader(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && (len(d) != 64 || size < Missing) {
			t.Fatalf("accepted %q: %q %d", b, d, size)
		}
		_ = Walk(b, func(string, []byte) {})
	})
}
