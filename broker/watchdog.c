/*
 * watchdog.c - the hung-worker rule of watchdog.h, free of I/O so it reads
 * (and is tested) on its own; stream_watchdog.c samples and kills.
 */
#include <string.h>

#include "watchdog.h"

void
wd_init(struct wd *wd, uint32_t limit_ms, uint32_t open_limit_ms)
{
	memset(wd, 0, sizeof(*wd));
	wd->limit_ms = limit_ms;
	wd->open_limit_ms = open_limit_ms;
}

int
wd_tick(struct wd *wd, const struct wd_sample *s, uint64_t elapsed_ms)
{
	int moved = !wd->primed || s->progress != wd->last.progress ||
		    s->input != wd->last.input;
	/* Not yet started: exec, loading and the sandbox come before the
	 * first input read sets the clock; only the open limit bounds it. */
	int starting = s->opening && s->progress == 0;

	wd->primed = 1;
	wd->last = *s;
	if (s->input != 0 || s->input_waiting)
		wd->input_seen = 1;
	if (moved || starting)
		wd->stalled_ms = 0;
	else if (s->input_waiting)
		wd->stalled_ms += elapsed_ms;
	/* All the time spent opening counts: a source that never becomes
	 * readable must not keep a stream opening for ever. */
	if (s->opening)
		wd->opening_ms += elapsed_ms;
	if (wd->stalled_ms >= wd->limit_ms)
		return WD_HUNG;
	if (s->opening && wd->opening_ms >= wd->open_limit_ms)
		return wd->input_seen ? WD_OPEN_TIMEOUT : WD_NO_INPUT;
	return WD_OK;
}

unsigned
wd_period_ms(uint32_t limit_ms)
{
	unsigned p = limit_ms / 4;

	return p < 20 ? 20 : p > 1000 ? 1000 : p;
}
