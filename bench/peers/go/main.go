// The Go peer of crew-bench: the same workloads with goroutines.
//
//	go-bench <workload> [--workers N] [--n N]
//
// Prints one JSON line like crew-bench, with "runtime":"go". --workers sets
// GOMAXPROCS (0 keeps Go's default, the number of CPUs).
//
// "seconds" covers the workload from the first spawn to the last join. Go's
// runtime starts before main() and cannot be timed from inside the program;
// its start-up is about a millisecond, far below the default workload sizes.
//
// Closest analogues of crew's spawn + join:
//
//	spawn     a goroutine per task writes its result into its slot of a slice;
//	          a WaitGroup is the join, then the slots are summed in order.
//	fib       a goroutine per call returns fib(n-1) through a 1-slot channel
//	          (the "handle"); fib(n-2) is a direct call.
//	sleepers  n goroutines each time.Sleep(10ms), a WaitGroup joins them.
//	pingpong  two goroutines and two unbuffered channels, n round trips.
//	yield     two goroutines call runtime.Gosched() n/2 times each; run it
//	          with --workers 1 so that every Gosched switches goroutines.
package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"
)

type workload struct {
	name      string
	defaultN  uint64
	run       func(n uint64) error
	perSwitch bool
}

var workloads = []workload{
	{"spawn", 1000000, spawnBench, false},
	{"fib", 30, fibBench, false},
	{"sleepers", 100000, sleepersBench, false},
	{"pingpong", 1000000, pingpongBench, false},
	{"yield", 10000000, yieldBench, true},
}

func spawnBench(n uint64) error {
	results := make([]uint64, n)
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := uint64(0); i < n; i++ {
		go func(i uint64) {
			results[i] = i
			wg.Done()
		}(i)
	}
	wg.Wait()
	var sum uint64
	for _, r := range results {
		sum += r
	}
	if n > 0 && sum != n*(n-1)/2 {
		return fmt.Errorf("spawn: wrong sum of results")
	}
	return nil
}

func fib(n uint64) uint64 {
	if n < 2 {
		return n
	}
	handle := make(chan uint64, 1)
	go func() { handle <- fib(n - 1) }()
	b := fib(n - 2)
	return <-handle + b
}

func fibIterative(n uint64) uint64 {
	var a, b uint64 = 0, 1
	for i := uint64(0); i < n; i++ {
		a, b = b, a+b
	}
	return a
}

func fibBench(n uint64) error {
	if fib(n) != fibIterative(n) {
		return fmt.Errorf("fib: wrong result")
	}
	return nil
}

func sleepersBench(n uint64) error {
	var wg sync.WaitGroup
	wg.Add(int(n))
	for i := uint64(0); i < n; i++ {
		go func() {
			time.Sleep(10 * time.Millisecond)
			wg.Done()
		}()
	}
	wg.Wait()
	return nil
}

func pingpongBench(n uint64) error {
	ping := make(chan uint64)
	pong := make(chan uint64)
	done := make(chan error)
	go func() { // pong: answers every request with the same number
		for i := uint64(0); i < n; i++ {
			pong <- <-ping
		}
		done <- nil
	}()
	go func() { // ping
		for i := uint64(0); i < n; i++ {
			ping <- i
			if <-pong != i {
				done <- fmt.Errorf("pingpong: wrong answer")
				return
			}
		}
		done <- nil
	}()
	err1, err2 := <-done, <-done
	if err1 != nil {
		return err1
	}
	return err2
}

func yieldBench(n uint64) error {
	var wg sync.WaitGroup
	wg.Add(2)
	yielder := func(count uint64) {
		for i := uint64(0); i < count; i++ {
			runtime.Gosched()
		}
		wg.Done()
	}
	go yielder(n / 2)
	go yielder(n - n/2)
	wg.Wait()
	return nil
}

func usage(msg string) {
	if msg != "" {
		fmt.Fprintln(os.Stderr, "go-bench:", msg)
	}
	fmt.Fprint(os.Stderr, "usage: go-bench <workload> [--workers N] [--n N]\nworkloads:")
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
		usage("unknown workload '" + args[1] + "'")
	}
	n, workers := w.defaultN, uint64(0)
	for i := 2; i < len(args); i += 2 {
		switch args[i] {
		case "--workers":
			workers = parseCount("--workers", args, i, 1024)
		case "--n":
			n = parseCount("--n", args, i, 1<<31-1) // WaitGroup counts in int
		default:
			usage("unknown option '" + args[i] + "'")
		}
	}
	if w.name == "fib" && n > 60 {
		usage("fib needs --n <= 60")
	}
	if workers > 0 {
		runtime.GOMAXPROCS(int(workers))
	}

	start := time.Now()
	err := w.run(n)
	seconds := time.Since(start).Seconds()
	if err != nil {
		fmt.Fprintln(os.Stderr, "go-bench:", err)
		os.Exit(1)
	}
	fmt.Printf("{\"bench\":\"%s\",\"runtime\":\"go\",\"workers\":%d,\"n\":%d,\"seconds\":%.6f,\"rss_mb\":%.1f",
		w.name, runtime.GOMAXPROCS(0), n, seconds, peakRSSMB())
	if w.perSwitch {
		perSwitch := 0.0
		if n > 0 {
			perSwitch = seconds * 1e9 / float64(n)
		}
		fmt.Printf(",\"ns_per_switch\":%.2f", perSwitch)
	}
	fmt.Println("}")
}
