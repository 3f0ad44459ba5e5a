/*
 * worker_io.c - the custom AVIOContext libavformat reads through, so it
 * never opens anything by itself: over the spool (worker_spool.c) when one
 * was needed, else straight over fd 0 (worker_input.c).
 */
#include <errno.h>
#include <sys/stat.h>
#include <unistd.h>

#include <libavformat/avio.h>
#include <libavutil/mem.h>

#include "worker.h"
#include "worker_abi.h"

/* FFmpeg's own IO_BUFFER_SIZE: the file and pipe protocols read in chunks of
 * this size, so probing and demuxing see the same read pattern as ffprobe. */
#define WORKER_IO_BUFFER 32768

static int
read_cb(void *opaque, uint8_t *buf, int size)
{
	struct worker *w = opaque;

	if (w->seekable)
		return worker_input_read(w, buf, size);
	return worker_spool_read(w, buf, size);
}

static int64_t
seek_cb(void *opaque, int64_t offset, int whence)
{
	struct worker *w = opaque;
	struct stat st;
	off_t r;

	if (w->spool.complete) {
		if (whence & AVSEEK_SIZE)
			return (int64_t)w->spool.len;
		return worker_spool_seek(w, offset, whence & ~AVSEEK_FORCE);
	}
	if (whence & AVSEEK_SIZE) {
		if (fstat(WORKER_FD_INPUT, &st) < 0)
			return AVERROR(errno);
		return S_ISREG(st.st_mode) ? (int64_t)st.st_size : AVERROR(ENOSYS);
	}
	r = lseek(WORKER_FD_INPUT, (off_t)offset, whence & ~AVSEEK_FORCE);
	return r < 0 ? AVERROR(errno) : (int64_t)r;
}

int
worker_io_open(struct worker *w)
{
	uint8_t *buf;

	buf = av_malloc(WORKER_IO_BUFFER);
	if (!buf)
		return AVERROR(ENOMEM);
	w->avio = avio_alloc_context(buf, WORKER_IO_BUFFER, 0, w, read_cb, NULL,
				     w->seekable || w->spool.complete ?
				     seek_cb : NULL);
	if (!w->avio) {
		av_free(buf);
		return AVERROR(ENOMEM);
	}
	w->fmt->pb = w->avio;
	w->fmt->flags |= AVFMT_FLAG_CUSTOM_IO;
	return 0;
}

void
worker_io_close(struct worker *w)
{
	worker_input_free(w);
	if (!w->avio)
		return;
	/* libavformat may have replaced the buffer (ffio_set_buf_size on
	 * probing), so free the context's current one, not ours. */
	av_freep(&w->avio->buffer);
	avio_context_free(&w->avio);
}
