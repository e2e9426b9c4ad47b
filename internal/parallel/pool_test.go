package parallel

import (
	"sync/atomic"
	"testing"
	"time"
)

type countTask struct {
	hits    []atomic.Int32
	workers []atomic.Int32
}

func (c *countTask) Do(i, w int) {
	c.hits[i].Add(1)
	c.workers[w].Add(1)
}

func TestRunCoversEveryItemOnce(t *testing.T) {
	for _, threads := range []int{1, 2, 3, 8} {
		p := New(threads)
		for _, n := range []int{0, 1, 2, 7, 100, 1000} {
			c := &countTask{hits: make([]atomic.Int32, n), workers: make([]atomic.Int32, threads)}
			p.Run(n, c)
			for i := range c.hits {
				if got := c.hits[i].Load(); got != 1 {
					t.Fatalf("threads=%d n=%d: item %d ran %d times", threads, n, i, got)
				}
			}
			total := int32(0)
			for w := range c.workers {
				total += c.workers[w].Load()
			}
			if total != int32(n) {
				t.Fatalf("threads=%d n=%d: workers ran %d items", threads, n, total)
			}
		}
		p.Close()
	}
}

func TestRunConcurrentCallers(t *testing.T) {
	p := New(4)
	defer p.Close()
	done := make(chan struct{})
	for g := 0; g < 4; g++ {
		go func() {
			for k := 0; k < 200; k++ {
				c := &countTask{hits: make([]atomic.Int32, 50), workers: make([]atomic.Int32, 4)}
				p.Run(50, c)
				for i := range c.hits {
					if c.hits[i].Load() != 1 {
						t.Error("item not run exactly once")
					}
				}
			}
			done <- struct{}{}
		}()
	}
	for g := 0; g < 4; g++ {
		<-done
	}
}

// Both ways a waiting thread can be woken: parked on its channel (no
// polling, and gaps between Runs longer than the poll), and still polling
// (a poll far longer than the gaps). Every item runs once either way.
func TestRunParkedAndPolling(t *testing.T) {
	for _, c := range []struct {
		wait, gap time.Duration
	}{{0, 200 * time.Microsecond}, {time.Second, 100 * time.Microsecond}} {
		p := newPool(3, c.wait)
		for k := 0; k < 50; k++ {
			task := &countTask{hits: make([]atomic.Int32, 9), workers: make([]atomic.Int32, 3)}
			p.Run(9, task)
			for i := range task.hits {
				if got := task.hits[i].Load(); got != 1 {
					t.Fatalf("spinWait %v: item %d ran %d times", c.wait, i, got)
				}
			}
			time.Sleep(c.gap)
		}
		p.Close()
	}
}

type nopTask struct{ sum atomic.Int64 }

func (n *nopTask) Do(i, w int) { n.sum.Add(int64(i)) }

func TestRunAllocatesNothing(t *testing.T) {
	p := New(2)
	defer p.Close()
	task := &nopTask{}
	if a := testing.AllocsPerRun(100, func() { p.Run(64, task) }); a != 0 {
		t.Fatalf("Run allocates %v per call", a)
	}
}

func BenchmarkRunOverhead(b *testing.B) {
	p := New(2)
	defer p.Close()
	task := &nopTask{}
	for i := 0; i < b.N; i++ {
		p.Run(2, task)
	}
}
