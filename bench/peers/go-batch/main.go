// go-batch - the batch workloads of crew-bench (bench/batch.h) with
// goroutines: a goroutine where crew's --runtime crew version calls
// crew_spawn, sync.WaitGroup.Wait where it calls crew_join (the children
// write their results into the parent's variables). Same kernels, inputs, cut-offs and
// checks as crew-bench (kern.go transcribes bench/batch/kern.h), same command
// line and JSON line, runtime "go":
//
//	go-batch <workload> [--workers N] [--n N]
//	{"bench":"nqueens","runtime":"go","workers":2,"n":13,"seconds":0.41,"rss_mb":5.1}
//
// --workers sets GOMAXPROCS (default: Go's, the number of CPUs). "seconds"
// spans the computation only: Go's scheduler starts before main() and cannot
// be timed from inside the program (about a millisecond); input generation
// and the check are outside the span, as for every runtime.
// Exit status: 0 ok, 1 wrong result, 2 usage, 3 unknown workload.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// ---- the parallel skeletons (one goroutine per crew_spawn) --------------

// fib: spawn fib(n-1), call fib(n-2), join.
func pFib(n uint64) uint64 {
	if n < 2 {
		return n
	}
	var a uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { a = pFib(n - 1); wg.Done() }()
	b := pFib(n - 2)
	wg.Wait()
	return a + b
}

// nqueens: a goroutine per valid placement but the last, which is a call;
// every child gets its own copy of the board (a goroutine argument).
func pQueens(b board, n, row int) uint64 {
	if row == n {
		return 1
	}
	var cols [qMax]int
	k := 0
	for col := 0; col < n; col++ {
		if queensOK(&b, row, col) {
			cols[k] = col
			k++
		}
	}
	if k == 0 {
		return 0
	}
	cnt := make([]uint64, k-1)
	var wg sync.WaitGroup
	wg.Add(k - 1)
	for i := 0; i < k-1; i++ {
		kid := b
		kid[row] = byte(cols[i])
		go func(i int, kid board) {
			cnt[i] = pQueens(kid, n, row+1)
			wg.Done()
		}(i, kid)
	}
	last := b
	last[row] = byte(cols[k-1])
	sum := pQueens(last, n, row+1)
	wg.Wait()
	for _, c := range cnt {
		sum += c
	}
	return sum
}

// uts: a node counts its subtree, a goroutine per child but the last (a
// call); the parent hashes every child's state and hands it over by value.
func pUTS(t *utsTree, node utsNode) uint64 {
	k := utsChildren(t, &node)
	if k == 0 {
		return 1
	}
	cnt := make([]uint64, k-1)
	var wg sync.WaitGroup
	wg.Add(k - 1)
	var kid utsNode
	for i := 0; i < k-1; i++ {
		utsChild(&node, i, &kid)
		go func(i int, kid utsNode) {
			cnt[i] = pUTS(t, kid)
			wg.Done()
		}(i, kid)
	}
	utsChild(&node, k-1, &kid)
	sum := 1 + pUTS(t, kid)
	wg.Wait()
	for _, c := range cnt {
		sum += c
	}
	return sum
}

// knapsack: branch and bound; "without the item" is spawned, "with" called;
// the incumbent best is one shared atomic (a stale read only prunes less).
var ksBest atomic.Int32

func pKnapsack(e []item, c, v int) int {
	if c < 0 {
		return -1
	}
	if len(e) == 0 || c == 0 {
		return v
	}
	if !knapsackBoundOK(&e[0], c, v, int(ksBest.Load())) {
		return -1
	}
	var without int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { without = pKnapsack(e[1:], c, v); wg.Done() }()
	with := pKnapsack(e[1:], c-e[0].weight, v+e[0].value)
	wg.Wait()
	best := with
	if without > best {
		best = without
	}
	for b := ksBest.Load(); int32(best) > b && !ksBest.CompareAndSwap(b, int32(best)); b = ksBest.Load() {
	}
	return best
}

// matmul: C += A*B by divide and conquer; the halves of m or p are
// independent (a goroutine and a call), the halves of the inner n add into
// the same C one after the other.
func pMM(A, B, C []float64, m, n, p, ld int) {
	if m <= mmLeaf && n <= mmLeaf && p <= mmLeaf {
		mmLeafKernel(A, B, C, m, n, p, ld)
		return
	}
	if !(m >= n && m >= p) && n >= p { // the inner dimension: in turn
		h := n / 2
		pMM(A, B, C, m, h, p, ld)
		pMM(A[h:], B[h*ld:], C, m, n-h, p, ld)
		return
	}
	var wg sync.WaitGroup
	wg.Add(1)
	if m >= p {
		h := m / 2
		go func() { pMM(A, B, C, h, n, p, ld); wg.Done() }()
		pMM(A[h*ld:], B, C[h*ld:], m-h, n, p, ld)
	} else {
		h := p / 2
		go func() { pMM(A, B, C, m, n, h, ld); wg.Done() }()
		pMM(A, B[h:], C[h:], m, n, p-h, ld)
	}
	wg.Wait()
}

// cilksort: quarters sorted in parallel (three goroutines and a call), two
// merges in parallel, then the last merge; a big merge splits at the median
// of its longer run into two merges (a goroutine and a call).
func pMerge(a, b, out []uint64) {
	if len(a) < len(b) {
		a, b = b, a
	}
	if len(a)+len(b) <= sortMerge || len(b) == 0 {
		mergeSerial(a, b, out)
		return
	}
	ma := len(a) / 2
	mb := lowerBound(b, a[ma])
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { pMerge(a[:ma], b[:mb], out[:ma+mb]); wg.Done() }()
	pMerge(a[ma:], b[mb:], out[ma+mb:])
	wg.Wait()
}

func pSort(a, tmp []uint64) {
	n := len(a)
	if n <= sortQuick {
		quicksort(a)
		return
	}
	q := n / 4
	var wg sync.WaitGroup
	wg.Add(3)
	for i := 0; i < 3; i++ {
		go func(i int) {
			pSort(a[i*q:(i+1)*q], tmp[i*q:(i+1)*q])
			wg.Done()
		}(i)
	}
	pSort(a[3*q:], tmp[3*q:])
	wg.Wait()
	wg.Add(1)
	go func() { pMerge(a[:q], a[q:2*q], tmp[:2*q]); wg.Done() }()
	pMerge(a[2*q:3*q], a[3*q:], tmp[2*q:])
	wg.Wait()
	pMerge(tmp[:2*q], tmp[2*q:], a)
}

// skew: recursive halving down to skewGrain iterations.
func pSkew(lo, hi, n uint64) uint64 {
	if hi-lo <= skewGrain {
		return skewRange(lo, hi, n)
	}
	mid := lo + (hi-lo)/2
	var l uint64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { l = pSkew(lo, mid, n); wg.Done() }()
	h := pSkew(mid, hi, n)
	wg.Wait()
	return h + l
}

// bpc: producer k spawns producer k-1, then its consumers; joins the
// consumers, then the next producer.
func pBPC(k uint64) uint64 {
	if k == 0 {
		return 0
	}
	var rest uint64
	var next, consumers sync.WaitGroup
	next.Add(1)
	go func() { rest = pBPC(k - 1); next.Done() }()
	var c [bpcConsumers]uint64
	consumers.Add(bpcConsumers)
	for j := 0; j < bpcConsumers; j++ {
		go func(j int) {
			c[j] = bpcConsume(k, uint64(j))
			consumers.Done()
		}(j)
	}
	consumers.Wait()
	next.Wait()
	sum := rest
	for _, v := range c {
		sum += v
	}
	return sum
}

// ---- the workloads: input, timed run, check ------------------------------

type workload struct {
	name     string
	defaultN uint64
	maxN     uint64
	// run prepares the input, times the computation and checks the answer.
	run func(n uint64) (seconds float64, err error)
}

func timed(f func()) float64 {
	start := time.Now()
	f()
	return time.Since(start).Seconds()
}

var errWrong = fmt.Errorf("wrong result")

var workloads = []workload{
	{"fib", 30, 60, func(n uint64) (float64, error) {
		var r uint64
		s := timed(func() { r = pFib(n) })
		return s, check(r == fibExpected(n))
	}},
	{"nqueens", 13, 16, func(n uint64) (float64, error) {
		if n < 4 {
			return 0, fmt.Errorf("nqueens needs 4 <= n <= 16")
		}
		var r uint64
		var b board
		s := timed(func() { r = pQueens(b, int(n), 0) })
		return s, check(r == queensExpected(n))
	}},
	{"uts-t1", 10, 20, func(n uint64) (float64, error) { return runUTS(utsT1(n), n) }},
	{"uts-t3", 2000, 100000, func(n uint64) (float64, error) { return runUTS(utsT3(n), n) }},
	{"knapsack", 30, 64, func(n uint64) (float64, error) {
		if n < 1 {
			return 0, fmt.Errorf("knapsack needs 1 <= n <= 64")
		}
		items, cap := knapsackInput(int(n))
		ksBest.Store(0)
		var r int
		s := timed(func() { r = pKnapsack(items, cap, 0) })
		return s, check(r == knapsackDP(items, cap))
	}},
	{"matmul", 1024, 16384, func(n uint64) (float64, error) {
		if n < 1 {
			return 0, fmt.Errorf("matmul needs 1 <= n <= 16384")
		}
		m := int(n)
		A, B, C := mmInput(m)
		s := timed(func() { pMM(A, B, C, m, m, m, m) })
		return s, check(mmCheck(A, B, C, m))
	}},
	{"cilksort", 10000000, 1 << 32, func(n uint64) (float64, error) {
		if n < 1 {
			return 0, fmt.Errorf("cilksort needs 1 <= n <= 2^32")
		}
		a, sum, xr := sortInput(int(n))
		tmp := make([]uint64, n)
		s := timed(func() { pSort(a, tmp) })
		return s, check(sortCheck(a, sum, xr))
	}},
	{"skew", 400000, 1 << 40, func(n uint64) (float64, error) {
		var r uint64
		s := timed(func() { r = pSkew(0, n, n) })
		// crew-bench's serial sum of the default n, modulo 2^63
		want := uint64(1983628080157490942)
		if n != 400000 {
			want = skewRange(0, n, n)
		}
		return s, check(r&^(1<<63) == want&^(1<<63))
	}},
	{"bpc", 40000, 1 << 32, func(n uint64) (float64, error) {
		var r uint64
		s := timed(func() { r = pBPC(n) })
		want := uint64(20974501628) // kern_bpc(40000)
		if n != 40000 {
			want = bpcSerial(n)
		}
		return s, check(r == want)
	}},
}

func runUTS(t utsTree, n uint64) (float64, error) {
	root := utsRoot(&t)
	var r uint64
	s := timed(func() { r = pUTS(&t, root) })
	want := utsExpected(t.binomial, n)
	if want == 0 { // no published count for this n: the serial count is the answer
		want = utsCount(&t, &root)
	}
	return s, check(r == want)
}

func check(ok bool) error {
	if ok {
		return nil
	}
	return errWrong
}

// ---- command line ---------------------------------------------------------

func usage(msg string) {
	if msg != "" {
		fmt.Fprintln(os.Stderr, "go-batch:", msg)
	}
	fmt.Fprint(os.Stderr, "usage: go-batch <workload> [--workers N] [--n N]\nworkloads:")
	for _, w := range workloads {
		fmt.Fprintf(os.Stderr, " %s (n=%d)", w.name, w.defaultN)
	}
	fmt.Fprintln(os.Stderr)
	os.Exit(2)
}

func parseCount(flag string, args []string, i int, max uint64) uint64 {
	if i+1 >= len(args) {
		usage(flag + " needs a value")
	}
	v, err := strconv.ParseUint(args[i+1], 10, 64)
	if err != nil || v > max {
		usage(fmt.Sprintf("%s needs a number <= %d, got '%s'", flag, max, args[i+1]))
	}
	return v
}

func peakRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024 // KiB on Linux
}

func main() {
	args := os.Args
	if len(args) < 2 {
		usage("")
	}
	var w *workload
	for i := range workloads {
		if workloads[i].name == args[1] {
			w = &workloads[i]
		}
	}
	if w == nil {
		fmt.Fprintf(os.Stderr, "go-batch: unknown workload '%s'\n", args[1])
		os.Exit(3)
	}
	n, workers := w.defaultN, uint64(0)
	for i := 2; i < len(args); i += 2 {
		switch args[i] {
		case "--workers":
			workers = parseCount("--workers", args, i, 1024)
		case "--n":
			n = parseCount("--n", args, i, w.maxN)
		default:
			usage("unknown option '" + args[i] + "'")
		}
	}
	if workers > 0 {
		runtime.GOMAXPROCS(int(workers))
	}
	seconds, err := w.run(n)
	if err != nil {
		fmt.Fprintf(os.Stderr, "go-batch: %s n=%d: %v\n", w.name, n, err)
		os.Exit(1)
	}
	fmt.Printf("{\"bench\":\"%s\",\"runtime\":\"go\",\"workers\":%d,\"n\":%d,\"seconds\":%.6f,\"rss_mb\":%.1f}\n",
		w.name, runtime.GOMAXPROCS(0), n, seconds, peakRSSMB())
}
