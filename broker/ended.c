/*
 * ended.c - the streams the broker reaped lately (ended.h).
 */
#include <string.h>

#include "ended.h"
#include "shmdemuxd.h"

struct ended {
	uint64_t seq;             /* 0: empty */
	uint64_t ended_ms;
	struct ctl_stream_info info;
};

static struct ended hist[BROKER_ENDED_HISTORY];
static uint64_t last_seq;

void
ended_info_idle(struct ctl_stream_info *info)
{
	info->consumers = 0;
	info->worker_pid = 0;
	info->worker_rss = 0;
	info->lag_bytes = 0;
}

void
ended_add(const struct ctl_stream_info *info, uint64_t ended_ms)
{
	struct ended *e = &hist[last_seq % BROKER_ENDED_HISTORY];

	e->seq = ++last_seq;
	e->ended_ms = ended_ms;
	e->info = *info;
	ended_info_idle(&e->info);
	e->info.flags |= CTL_INFO_REAPED;
}

uint64_t
ended_next(uint64_t after, struct ctl_stream_info *info)
{
	uint64_t first = last_seq > BROKER_ENDED_HISTORY ?
		last_seq - BROKER_ENDED_HISTORY + 1 : 1;
	const struct ended *e;
	uint64_t now;

	if (after + 1 > first)
		first = after + 1;
	if (first > last_seq)
		return 0;
	e = &hist[(first - 1) % BROKER_ENDED_HISTORY];
	now = now_ms();
	*info = e->info;
	info->ended_ago_ms = now > e->ended_ms ? now - e->ended_ms : 0;
	return e->seq;
}
