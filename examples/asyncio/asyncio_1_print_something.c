/*
 * asyncio 1: the smallest program.
 *
 *   import asyncio
 *
 *   async def print_something():
 *       print("Hey Ash!")
 *
 *   asyncio.run(print_something())
 *
 * Output:
 *   Hey Ash!
 */
#include <crew.h>
#include <stdio.h>
#include <string.h>

static void *print_something(void *arg)
{
	(void)arg;
	printf("Hey Ash!\n");
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
