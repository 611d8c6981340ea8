package egress

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/textproto"
	"sync/atomic"
	"time"
)

var errHeaderTooLarge = errors.New("request header too large")

// timedConn renews a deadline before every read and write once idle is set,
// so a stalled peer is dropped after idle without bounding long transfers.
type timedConn struct {
	net.Conn
	idle time.Duration
}

func (c *timedConn) Read(b []byte) (int, error) {
	if c.idle > 0 {
		_ = c.Conn.SetReadDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Read(b)
}

func (c *timedConn) Write(b []byte) (int, error) {
	if c.idle > 0 {
		_ = c.Conn.SetWriteDeadline(time.Now().Add(c.idle))
	}
	return c.Conn.Write(b)
}

func (c *timedConn) closeWrite() {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	_ = c.Conn.Close()
}

// peekHeader returns the request line and header block without consuming
// them, so the raw Host header can be read: http.ReadRequest drops it for
// absolute-URI requests. The block must fit br's buffer.
func peekHeader(br *bufio.Reader) ([]byte, error) {
	scanned := 0
	for n := 1; ; n = br.Buffered() + 1 {
		if _, err := br.Peek(n); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errHeaderTooLarge
			}
			return nil, err
		}
		// Peek(n) filled the buffer as far as the client has sent; look at
		// all of it.
		buf, _ := br.Peek(br.Buffered())
		// Rescan only the tail, so a client trickling bytes costs linear time.
		from := max(scanned-2, 0)
		if i := headerEnd(buf[from:]); i >= 0 {
			return buf[:from+i], nil
		}
		scanned = len(buf)
	}
}

// headerEnd returns the length of the header block in b including the
// blank line, accepting bare LF line ends as textproto does, or -1.
func headerEnd(b []byte) int {
	i := bytes.Index(b, []byte("\n\n"))
	j := bytes.Index(b, []byte("\n\r\n"))
	switch {
	case i < 0 && j < 0:
		return -1
	case j < 0 || i >= 0 && i < j:
		return i + 2
	default:
		return j + 3
	}
}

// hostHeaders returns every Host header value in a peeked header block.
func hostHeaders(block []byte) ([]string, error) {
	tp := textproto.NewReader(bufio.NewReader(bytes.NewReader(block)))
	if _, err := tp.ReadLine(); err != nil {
		return nil, err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return nil, err
	}
	return h.Values("Host"), nil
}

// pipe copies src to dst until EOF or an error. A read timeout ends it only
// when neither direction of the tunnel moved data for idle: last is shared
// by both directions.
func pipe(dst io.Writer, src io.Reader, last *atomic.Int64, idle time.Duration) error {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			last.Store(time.Now().UnixNano())
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return werr
			}
			last.Store(time.Now().UnixNano())
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			return nil
		case isTimeout(err) && time.Since(time.Unix(0, last.Load())) < idle:
			// The other direction is busy; keep waiting.
		default:
			return err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// limitReader fails with errHeaderTooLarge, not EOF, once n bytes were
// read while limited, so an oversized origin header cannot pass as a short
// body. Lifting the limit after the header lets the body through.
type limitReader struct {
	r       io.Reader
	n       int64
	limited bool
}

func (l *limitReader) Read(b []byte) (int, error) {
	if !l.limited {
		return l.r.Read(b)
	}
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(b)) > l.n {
		b = b[:l.n]
	}
	n, err := l.r.Read(b)
	l.n -= int64(n)
	return n, err
}
