/*
 * asyncio 3: await a coroutine, then print.
 *
 *   import asyncio
 *
 *   async def main():
 *       await task2(5)
 *       print("Hello World")
 *
 *   async def task2(n):
 *       for i in range(n):
 *           print(i)
 *           await asyncio.sleep(1)
 *
 *   asyncio.run(main())
 *
 * Output: 0..4 one a second, then "Hello World".
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

static void *main_task(void *arg)
{
	(void)arg;
	if (task2(5) == -ECANCELED)           /* await task2(5) */
		return NULL;
	printf("Hello World\n");
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = crew_run(main_task, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "crew_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
