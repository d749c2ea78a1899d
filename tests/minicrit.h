/*
 * minicrit - the subset of Criterion's API that the crew tests use, for the
 * builds where Criterion cannot run: under ThreadSanitizer Criterion's runner
 * aborts ("Could not initialize inheritable arena", Criterion issue #274: its
 * shared arena is mapped at random addresses that TSan reserves).
 *
 * Test(suite, name, .timeout = seconds); cr_assert_* and cr_expect_* (cond or
 * comparisons, with an optional printf message); cr_log_info. Each test runs
 * in a forked child; see minicrit.c for the runner (--jobs, --filter).
 */
#ifndef CREW_MINICRIT_H
#define CREW_MINICRIT_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct mc_opts {
	int unused_;
	double timeout; /* seconds; 0: none */
};

struct mc_test {
	const char *suite, *name;
	void (*fn)(void);
	struct mc_opts opts;
	struct mc_test *next;
};

void mc_register(struct mc_test *t);
void mc_check(bool ok, bool fatal, const char *file, int line, const char *expr,
              const char *fmt, ...) __attribute__((format(printf, 6, 7)));
void mc_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#define Test(suite, name, ...)                                                        \
	static void mc_fn_##suite##_##name(void);                                         \
	static struct mc_test mc_t_##suite##_##name = {                                   \
		#suite, #name, mc_fn_##suite##_##name, {0, __VA_ARGS__}, NULL};             \
	__attribute__((constructor)) static void mc_reg_##suite##_##name(void)            \
	{                                                                                 \
		mc_register(&mc_t_##suite##_##name);                                          \
	}                                                                                 \
	static void mc_fn_##suite##_##name(void)

#define MC_CHECK_(fatal, cond, expr, ...) \
	mc_check((cond) ? true : false, fatal, __FILE__, __LINE__, expr, " " __VA_ARGS__)

#define cr_assert(cond, ...) MC_CHECK_(true, cond, #cond, __VA_ARGS__)
#define cr_expect(cond, ...) MC_CHECK_(false, cond, #cond, __VA_ARGS__)
#define cr_assert_not(cond, ...) MC_CHECK_(true, !(cond), "!(" #cond ")", __VA_ARGS__)
#define cr_expect_not(cond, ...) MC_CHECK_(false, !(cond), "!(" #cond ")", __VA_ARGS__)

#define MC_CMP_(fatal, a, op, b, ...) MC_CHECK_(fatal, (a)op(b), #a " " #op " " #b, __VA_ARGS__)
#define cr_assert_eq(a, b, ...) MC_CMP_(true, a, ==, b, __VA_ARGS__)
#define cr_expect_eq(a, b, ...) MC_CMP_(false, a, ==, b, __VA_ARGS__)
#define cr_assert_neq(a, b, ...) MC_CMP_(true, a, !=, b, __VA_ARGS__)
#define cr_expect_neq(a, b, ...) MC_CMP_(false, a, !=, b, __VA_ARGS__)
#define cr_assert_lt(a, b, ...) MC_CMP_(true, a, <, b, __VA_ARGS__)
#define cr_expect_lt(a, b, ...) MC_CMP_(false, a, <, b, __VA_ARGS__)
#define cr_assert_leq(a, b, ...) MC_CMP_(true, a, <=, b, __VA_ARGS__)
#define cr_expect_leq(a, b, ...) MC_CMP_(false, a, <=, b, __VA_ARGS__)
#define cr_assert_gt(a, b, ...) MC_CMP_(true, a, >, b, __VA_ARGS__)
#define cr_expect_gt(a, b, ...) MC_CMP_(false, a, >, b, __VA_ARGS__)
#define cr_assert_geq(a, b, ...) MC_CMP_(true, a, >=, b, __VA_ARGS__)
#define cr_expect_geq(a, b, ...) MC_CMP_(false, a, >=, b, __VA_ARGS__)

#define cr_assert_null(a, ...) MC_CHECK_(true, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_expect_null(a, ...) MC_CHECK_(false, (a) == NULL, #a " == NULL", __VA_ARGS__)
#define cr_assert_not_null(a, ...) MC_CHECK_(true, (a) != NULL, #a " != NULL", __VA_ARGS__)
#define cr_expect_not_null(a, ...) MC_CHECK_(false, (a) != NULL, #a " != NULL", __VA_ARGS__)

#define cr_assert_str_eq(a, b, ...) MC_CHECK_(true, strcmp(a, b) == 0, #a " == " #b, __VA_ARGS__)
#define cr_expect_str_eq(a, b, ...) MC_CHECK_(false, strcmp(a, b) == 0, #a " == " #b, __VA_ARGS__)
#define cr_assert_str_empty(a, ...) MC_CHECK_(true, (a)[0] == '\0', #a " is empty", __VA_ARGS__)
#define cr_expect_str_empty(a, ...) MC_CHECK_(false, (a)[0] == '\0', #a " is empty", __VA_ARGS__)
#define cr_assert_str_not_empty(a, ...) \
	MC_CHECK_(true, (a)[0] != '\0', #a " is not empty", __VA_ARGS__)
#define cr_expect_str_not_empty(a, ...) \
	MC_CHECK_(false, (a)[0] != '\0', #a " is not empty", __VA_ARGS__)

#define cr_log_info(...) mc_log(__VA_ARGS__)

#endif
