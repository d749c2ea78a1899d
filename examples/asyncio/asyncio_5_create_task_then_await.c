/*
 * asyncio 5: create a task, then await it.
 *
 *   import asyncio
 *
 *   async def main():
 *       task = asyncio.create_task(task2(5))
 *       print("Hello World")
 *       await task
 *
 *   async def task2(n):
 *       for i in range(n):
 *           print(i)
 *           await asyncio.sleep(1)
 *
 *   asyncio.run(main())
 *
 * Output: "Hello World", then 0..4 one a second.
 * (With several workers the task may print 0 before "Hello World": run it with
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
	crew_task *task = crew_spawn(task2, (void *)(intptr_t)5);
	if (task == NULL) {
		perror("crew_spawn");
		return NULL;
	}
	printf("Hello World\n");
	crew_join(task, NULL);                /* await task */
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
