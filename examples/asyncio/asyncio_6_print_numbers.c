/*
 * asyncio 6: a task runs while its creator sleeps.
 *
 *   import asyncio
 *
 *   async def print_numbers(n):
 *       for i in range(n):
 *           print(i)
 *           await asyncio.sleep(1)
 *
 *   async def print_something():
 *       print("Hey Ash!")
 *       task = asyncio.create_task(print_numbers(10))
 *       await asyncio.sleep(5)
 *       print("Finish")
 *       await task
 *
 *   asyncio.run(print_something())
 *
 * Output: "Hey Ash!", 0..4, "Finish", 5..9.
 *
 * At second 5 both sleeps end together; the one that started first (main's)
 * ends first, as in asyncio. (With several workers the two timers live on
 * different threads: run it with CREW_WORKERS=1 for the blog's output.)
 */
#include <crew.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define SECOND 1000000000ull

static void *print_numbers(void *arg)
{
	int n = (int)(intptr_t)arg;
	for (int i = 0; i < n; i++) {
		printf("%d\n", i);
		if (crew_sleep(1 * SECOND) == -ECANCELED)
			return NULL;
	}
	return NULL;
}

static void *print_something(void *arg)
{
	(void)arg;
	printf("Hey Ash!\n");
	crew_task *task = crew_spawn(print_numbers, (void *)(intptr_t)10);
	if (task == NULL) {
		perror("crew_spawn");
		return NULL;
	}
	if (crew_sleep(5 * SECOND) == -ECANCELED) {
		crew_cancel(task);            /* clean up: cancel and collect the child */
		crew_join(task, NULL);
		return NULL;
	}
	printf("Finish\n");
	crew_join(task, NULL);                /* await task */
	return NULL;
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int rc = crew_run(print_something, NULL, NULL);
	if (rc < 0) {
		fprintf(stderr, "crew_run: %s\n", strerror(-rc));
		return 1;
	}
	return 0;
}
