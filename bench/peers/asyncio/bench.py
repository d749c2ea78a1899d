#!/usr/bin/python3
"""The Python asyncio peer of crew-bench.

    bench.py <workload> [--workers N] [--n N]

Prints one JSON line like crew-bench, with "runtime":"asyncio". asyncio runs
on one thread: --workers is accepted and echoed (0 is shown as 1) but changes
nothing. "seconds" covers the whole asyncio.run(), loop creation and shutdown
included, like crew-bench times the whole crew_run.

  spawn     create_task n trivial coroutines, await the tasks in order, check
            the sum.
  fib       a task per call: create_task(fib(n-1)), await fib(n-2) directly,
            await the task. Slow in CPython; the harness runs it at a smaller n.
  sleepers  n tasks each await asyncio.sleep(0.01), awaited in order.
  pingpong  n round trips between two tasks; every message is a fresh future
            (two per round), like crew's fresh futures.
  yield     two tasks await asyncio.sleep(0) n/2 times each.
"""
import asyncio
import json
import resource
import sys
import time

EXIT_USAGE = 2


async def trivial(i):
    return i


async def spawn_bench(n):
    tasks = [asyncio.create_task(trivial(i)) for i in range(n)]
    total = 0
    for t in tasks:
        total += await t
    if n > 0 and total != n * (n - 1) // 2:
        return "spawn: wrong sum of results"
    return None


async def fib(n):
    if n < 2:
        return n
    child = asyncio.create_task(fib(n - 1))
    b = await fib(n - 2)
    return await child + b


def fib_iterative(n):
    a, b = 0, 1
    for _ in range(n):
        a, b = b, a + b
    return a


async def fib_bench(n):
    return None if await fib(n) == fib_iterative(n) else "fib: wrong result"


async def sleeper():
    await asyncio.sleep(0.01)


async def sleepers_bench(n):
    tasks = [asyncio.create_task(sleeper()) for _ in range(n)]
    for t in tasks:
        await t
    return None


async def ping(n, request):
    """Each request carries (value, reply future, next request future)."""
    loop = asyncio.get_running_loop()
    for i in range(n):
        reply, following = loop.create_future(), loop.create_future()
        request.set_result((i, reply, following))
        if await reply != i:
            return "pingpong: wrong answer"
        request = following
    return None


async def pong(n, request):
    for _ in range(n):
        value, reply, request = await request
        reply.set_result(value)
    return None


async def pingpong_bench(n):
    first = asyncio.get_running_loop().create_future()
    pong_task = asyncio.create_task(pong(n, first))
    ping_task = asyncio.create_task(ping(n, first))
    # Each future's result holds the next one: keeping the first alive here
    # would keep all n of them alive.
    del first
    return await ping_task or await pong_task


async def yielder(count):
    for _ in range(count):
        await asyncio.sleep(0)


async def yield_bench(n):
    a = asyncio.create_task(yielder(n // 2))
    b = asyncio.create_task(yielder(n - n // 2))
    await a
    await b
    return None


# name: (default n, coroutine function, prints ns_per_switch)
WORKLOADS = {
    "spawn": (1000000, spawn_bench, False),
    "fib": (30, fib_bench, False),
    "sleepers": (100000, sleepers_bench, False),
    "pingpong": (1000000, pingpong_bench, False),
    "yield": (10000000, yield_bench, True),
}


def usage(msg=""):
    if msg:
        print("asyncio-bench: " + msg, file=sys.stderr)
    names = " ".join("%s (n=%d)" % (k, v[0]) for k, v in WORKLOADS.items())
    print("usage: bench.py <workload> [--workers N] [--n N]\nworkloads: " + names,
          file=sys.stderr)
    sys.exit(EXIT_USAGE)


def parse_count(flag, args, i, limit):
    if i + 1 >= len(args):
        usage(flag + " needs a value")
    text = args[i + 1]
    if not text.isdigit() or int(text) > limit:
        usage("%s needs a number <= %d, got '%s'" % (flag, limit, text))
    return int(text)


def main(args):
    if len(args) < 2:
        usage()
    if args[1] not in WORKLOADS:
        usage("unknown workload '%s'" % args[1])
    name = args[1]
    n, bench, per_switch = WORKLOADS[name]
    workers = 0
    for i in range(2, len(args), 2):
        if args[i] == "--workers":
            workers = parse_count("--workers", args, i, 1024)
        elif args[i] == "--n":
            n = parse_count("--n", args, i, 2**62)
        else:
            usage("unknown option '%s'" % args[i])
    if name == "fib" and n > 60:
        usage("fib needs --n <= 60")
    sys.setrecursionlimit(max(1000, 4 * n + 100))  # fib recursion depth

    start = time.perf_counter()
    error = asyncio.run(bench(n))
    seconds = time.perf_counter() - start
    if error:
        print("asyncio-bench: " + error, file=sys.stderr)
        return 1

    result = {
        "bench": name, "runtime": "asyncio", "workers": workers or 1, "n": n,
        "seconds": round(seconds, 6),
        "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if per_switch:
        result["ns_per_switch"] = round(seconds * 1e9 / n, 2) if n else 0.0
    print(json.dumps(result, separators=(",", ":")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
