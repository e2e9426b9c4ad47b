// Package parallel owns the worker pool that every multi-threaded kernel
// call runs on: a fixed set of persistent goroutines (one per thread the
// user asked for, the caller being one of them) that split a range of work
// items between them. A call allocates nothing, so the decode loop can use
// it once per matrix product without garbage.
package parallel

import (
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Task is work split into items 0..n-1. Do is called once per item, from
// any worker; worker identifies the calling worker (0..Threads()-1) so a
// task can give each worker its own scratch space.
type Task interface {
	Do(item, worker int)
}

// Pool runs Tasks on a fixed number of threads.
type Pool struct {
	threads int

	mu   sync.Mutex // serialises Run calls
	task Task
	n    int64
	next atomic.Int64
	// Woken workers help until items run out, then report on finish.
	wake    []chan struct{}
	finish  chan struct{}
	closing atomic.Bool
	spin    time.Duration // how long a waiting thread polls (spinWait)
}

// New starts a pool of the given number of threads (<= 0 means one per
// CPU). The calling goroutine of Run counts as one thread.
func New(threads int) *Pool { return newPool(threads, spinWait) }

func newPool(threads int, spin time.Duration) *Pool {
	if threads <= 0 {
		threads = runtime.NumCPU()
	}
	p := &Pool{threads: threads, finish: make(chan struct{}, threads), spin: spin}
	for w := 1; w < threads; w++ {
		ch := make(chan struct{}, 1)
		p.wake = append(p.wake, ch)
		go p.worker(w, ch)
	}
	return p
}

// Threads reports the number of threads.
func (p *Pool) Threads() int { return p.threads }

// spinWait is how long a waiting thread polls its channel before parking.
// The forward pass calls Run every few microseconds to a millisecond while
// decoding, and waking a parked thread costs a futex round trip plus the
// scheduler's wake-up latency (tens to hundreds of microseconds in a VM):
// a thread that parks between two products of a decode step, or while the
// other half of a product finishes, loses that much every time. Polling for
// a fixed time instead of a fixed count (2000 polls was ~9 µs on an AMD
// EPYC VM, shorter than one product's imbalance between two threads) keeps
// both threads streaming; it costs at most spinWait of CPU after the last
// Run of a burst. KVSERVE_SPIN_WAIT (a Go duration, e.g. 100us; 0 parks
// after 128 polls; malformed or negative values are ignored) overrides it,
// for measuring.
var spinWait = spinWaitDefault() // read by New only

func spinWaitDefault() time.Duration {
	if v, err := time.ParseDuration(os.Getenv("KVSERVE_SPIN_WAIT")); err == nil && v >= 0 {
		return v
	}
	return 500 * time.Microsecond
}

// recv receives from ch, polling it for up to spin before blocking.
func recv(ch chan struct{}, spin time.Duration) (ok bool) {
	var start time.Time
	for {
		for i := 0; i < 64; i++ {
			select {
			case _, ok = <-ch:
				return ok
			default:
			}
		}
		if start.IsZero() {
			start = time.Now()
		} else if time.Since(start) > spin {
			break
		}
		// Let other goroutines (HTTP handlers, a watcher) have this P:
		// a poller that never yields holds it until the runtime preempts
		// it (10 ms), which kept them off the CPU through a decode.
		runtime.Gosched()
	}
	_, ok = <-ch
	return ok
}

func (p *Pool) worker(id int, wake chan struct{}) {
	for recv(wake, p.spin) {
		if p.closing.Load() {
			return
		}
		p.help(id)
		p.finish <- struct{}{}
	}
}

func (p *Pool) help(worker int) {
	for {
		i := p.next.Add(1) - 1
		if i >= p.n {
			return
		}
		p.task.Do(int(i), worker)
	}
}

// Run calls t.Do(i, worker) for every i in [0, n) across the pool's threads
// and returns when all are done. Items are handed out one at a time in
// increasing order, so make items coarse enough (a tile of rows, not a
// row). Calls from several goroutines are serialised.
func (p *Pool) Run(n int, t Task) {
	if n <= 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n == 1 || p.threads == 1 {
		for i := 0; i < n; i++ {
			t.Do(i, 0)
		}
		return
	}
	p.task, p.n = t, int64(n)
	p.next.Store(0)
	helpers := min(len(p.wake), n-1)
	for w := 0; w < helpers; w++ {
		p.wake[w] <- struct{}{}
	}
	p.help(0)
	for w := 0; w < helpers; w++ {
		recv(p.finish, p.spin)
	}
	p.task = nil
}

// Close stops the worker goroutines. The pool must not be used afterwards.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closing.Swap(true) {
		return
	}
	for _, ch := range p.wake {
		close(ch)
	}
}

// Func adapts a function to a Task. Converting a closure allocates, so hot
// paths should implement Task on a long-lived value instead.
type Func func(item, worker int)

// Do calls f.
func (f Func) Do(item, worker int) { f(item, worker) }
