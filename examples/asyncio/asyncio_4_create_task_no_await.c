/*
 * asyncio 4: create a task and never await it.
 *
 *   import asyncio
 *
 *   async def main():
 *       asyncio.create_task(task2(5))
 *       print("Hello World")
 *
 *   async def task2(n):
 *       for i in range(n):
 *           print(i)
 *           await asyncio.sleep(1)
 *
 *   asyncio.run(main())
 *
 * Output: "Hello World", then "0".
 *
 * main returns at once; the runtime then cancels every task still alive. The
 * task had not started yet: it still starts (crew always runs a body once),
 * prints 0, and its first sleep returns -ECANCELED, so it returns.
 * (With several workers the task may start before "Hello World": run it with
 * CREW_WORKERS=1 for the blog's output.)
 */
#include <crew.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SECOND 1000000000ull

static void *task2(void *arg)
{
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++) {
		printf("%d\n", i);
		if (crew_sleep(1 * SECOND) == -ECANCELED)
			return NULL;
	}
	return NULL;
}

static void *main_task(void *arg)
{
	(void)arg;
	crew_task *t = crew_spawn(task2, (void *)(intptr_t)5);
	if (t == NULL) {
		perror("crew_spawn");
		return NULL;
	}
	crew_detach(t);                       /* fire and forget */
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
