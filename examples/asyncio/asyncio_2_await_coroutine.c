/*
 * asyncio 2: a coroutine awaits another one.
 *
 *   import asyncio
 *
 *   async def task1():
 *       print("Hey Ash")
 *       await task2(10)
 *       print("Hello World")
 *
 *   async def task2(n):
 *       for i in range(n):
 *           print(i)
 *           await asyncio.sleep(1)
 *
 *   asyncio.run(task1())
 *
 * Output: "Hey Ash", 0..9 one a second, "Hello World".
 *
 * Awaiting a coroutine (not a task) runs it inside the current task: in C that
 * is a plain function call.
 */
#include <crew.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#define SECOND 1000000000ull

/* A coroutine awaited directly: 0, or -ECANCELED when the task was cancelled. */
static int task2(int n)
{
	for (int i = 0; i < n; i++) {
		printf("%d\n", i);
		if (crew_sleep(1 * SECOND) == -ECANCELED)
			return -ECANCELED;
	}
	return 0;
}

static void *task1(void *arg)
{
	(void)arg;
	printf("Hey Ash\n");
	if (task2(10) == -ECANCELED)          /* await task2(10) */
		return NULL;
	printf("Hello World\n");
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = crew_run(task1, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "crew_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
