package bench

import (
	"io"
	"net"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

type fsyncStats struct {
	p50  time.Duration
	rate float64 // write+fsync per second, back to back
}

// measureFsync times n rounds of one 4 KiB write and an fsync in dir.
func measureFsync(dir string, n int) (fsyncStats, error) {
	f, err := os.CreateTemp(dir, "fsync-probe-")
	if err != nil {
		return fsyncStats{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, 4096)
	times := make([]time.Duration, 0, n)
	start := time.Now()
	for i := range n {
		buf[0] = byte(i)
		t0 := time.Now()
		if _, err := f.WriteAt(buf, int64(i%64)*4096); err != nil {
			return fsyncStats{}, err
		}
		if err := f.Sync(); err != nil {
			return fsyncStats{}, err
		}
		times = append(times, time.Since(t0))
	}
	total := time.Since(start)
	slices.Sort(times)
	return fsyncStats{p50: percentile(times, 0.5), rate: float64(n) / total.Seconds()}, nil
}

// measureRTT times n one-line ping-pongs over a loopback TCP connection.
func measureRTT(n int) (time.Duration, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	go func() {
		c, err := l.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_, _ = io.Copy(c, c)
	}()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		return 0, err
	}
	defer c.Close()
	msg := []byte("ping\n")
	buf := make([]byte, len(msg))
	times := make([]time.Duration, 0, n)
	for range n {
		t0 := time.Now()
		if _, err := c.Write(msg); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, err
		}
		times = append(times, time.Since(t0))
	}
	slices.Sort(times)
	return percentile(times, 0.5), nil
}

// rssSampler records the highest resident set size of a process.
type rssSampler struct {
	maxKiB atomic.Int64
	done   chan struct{}
	wg     sync.WaitGroup
}

func (r *rssSampler) start(pid int) {
	r.done = make(chan struct{})
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			if kb, ok := rssKiB(pid); ok && kb > r.maxKiB.Load() {
				r.maxKiB.Store(kb)
			}
			select {
			case <-t.C:
			case <-r.done:
				return
			}
		}
	}()
}

func (r *rssSampler) stop() float64 {
	close(r.done)
	r.wg.Wait()
	return float64(r.maxKiB.Load()) / 1024
}
