/*
 * test_watchdog.c - the hung-worker rule (broker/watchdog.h) on sample
 * sequences: idle sources, full rings and opening are not hangs; a worker
 * that sits on waiting input is; opening is bounded by wall time, and a
 * source that never gave a byte is told apart.
 */
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "watchdog.h"

static int
run(struct wd *wd, struct wd_sample *s, int ticks, int step_progress)
{
	int v = WD_OK;

	for (int i = 0; i < ticks && v == WD_OK; i++) {
		s->progress += (uint64_t)step_progress;
		v = wd_tick(wd, s, 100);
	}
	return v;
}

int
main(void)
{
	struct wd wd;
	struct wd_sample s = { .input_waiting = 1 };

	/* stuck with input waiting: hung after the limit, not before */
	wd_init(&wd, 1000, 30000);
	CHECK(run(&wd, &s, 10, 0) == WD_OK);  /* first tick primes */
	CHECK(run(&wd, &s, 1, 0) == WD_HUNG);

	/* a source that is idle: never hung, however long */
	wd_init(&wd, 1000, 30000);
	s.input_waiting = 0;
	CHECK(run(&wd, &s, 1000, 0) == WD_OK);
	/* ... and idle time does not count once input arrives */
	s.input_waiting = 1;
	CHECK(run(&wd, &s, 9, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 0) == WD_HUNG);

	/* progress (a full ring bumps the clock too) resets the stall */
	wd_init(&wd, 1000, 30000);
	for (int i = 0; i < 100; i++) {
		CHECK(run(&wd, &s, 5, 0) == WD_OK);
		CHECK(run(&wd, &s, 1, 1) == WD_OK);
	}
	/* input bytes consumed count as progress */
	wd_init(&wd, 1000, 30000);
	for (int i = 0; i < 100; i++) {
		s.input += 4096;
		CHECK(wd_tick(&wd, &s, 100) == WD_OK);
	}

	/* opening: bounded by wall time, even with progress */
	wd_init(&wd, 1000, 2000);
	s.opening = 1;
	s.input_waiting = 1;
	CHECK(run(&wd, &s, 19, 1) == WD_OK);
	CHECK(run(&wd, &s, 1, 1) == WD_OPEN_TIMEOUT);
	/* ... idle time included, once some input came */
	wd_init(&wd, 1000, 2000);
	s.input = 188;
	s.input_waiting = 0;
	CHECK(run(&wd, &s, 19, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 0) == WD_OPEN_TIMEOUT);
	/* a source that never gives a byte: no input, not a stuck worker */
	wd_init(&wd, 1000, 2000);
	s.input = 0;
	s.progress = 0;
	CHECK(run(&wd, &s, 19, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 0) == WD_NO_INPUT);
	/* input seen waiting once is input, even if none was consumed */
	wd_init(&wd, 1000, 2000);
	s.input_waiting = 1;
	CHECK(run(&wd, &s, 1, 0) == WD_OK);
	s.input_waiting = 0;
	CHECK(run(&wd, &s, 18, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 0) == WD_OPEN_TIMEOUT);
	s.input_waiting = 1;
	s.input = 8192;

	/* starting (opening, clock never set): only the open limit applies */
	wd_init(&wd, 1000, 2000);
	s.progress = 0;
	CHECK(run(&wd, &s, 19, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 0) == WD_OPEN_TIMEOUT);
	/* once the clock moved, a stall while opening is a hang */
	wd_init(&wd, 1000, 30000);
	s.progress = 0;
	CHECK(run(&wd, &s, 50, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 1) == WD_OK);
	CHECK(run(&wd, &s, 9, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 0) == WD_HUNG);
	/* running with a clock stuck at 0 is a hang too */
	wd_init(&wd, 1000, 30000);
	s.progress = 0;
	s.opening = 0;
	CHECK(run(&wd, &s, 10, 0) == WD_OK);
	CHECK(run(&wd, &s, 1, 0) == WD_HUNG);

	CHECK(wd_period_ms(10000) == 1000 && wd_period_ms(500) == 125 &&
	      wd_period_ms(10) == 20);
	return 0;
}
