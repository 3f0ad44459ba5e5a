/*
 * worker.c - shmdemux-worker: demux one input (fd 0) into one ring (fds 3, 4).
 *
 * The broker starts it as described in worker_abi.h. It opens the input with
 * the same demuxer options ffprobe uses by default (plus the project's
 * fflags/err_detect), publishes the track table and every packet, writes its
 * own end status into the ring and exits with a WORKER_EXIT_* code. The
 * broker, not the worker, declares the stream ENDED once it has reaped it.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <bsd/unistd.h>
#include <libavformat/avformat.h>
#include <libavutil/opt.h>

#ifdef SHMDEMUX_SANITIZE_BUILD
#include <sanitizer/lsan_interface.h>
#endif

#include "ffversion.h"
#include "sandbox.h"
#include "worker.h"
#include "worker_abi.h"
#include "worker_prefault.h"
#include "worker_spare.h"
#include "version.h"

volatile sig_atomic_t worker_stop;

/* libavformat's last error line: it often says more than the AVERROR
 * ("Format matroska,webm is not on the whitelist" vs "Invalid argument"). */
static char last_av_error[RING_MSG_LEN];

void
worker_log(const struct worker *w, const char *fmt, ...)
{
	va_list ap;
	char line[512];

	(void)w;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%s\n", line);
}

/* libavformat's messages go to our log pipe one line at a time; the
 * broker puts the stream's name before each (wlog.h). */
static void
av_log_cb(void *avcl, int level, const char *fmt, va_list vl)
{
	static int print_prefix = 1;
	char line[1024];
	size_t n;

	if (level > av_log_get_level())
		return;
	if (level <= AV_LOG_ERROR) {
		va_list cp;

		/* without the "[demuxer @ 0x...]" prefix */
		va_copy(cp, vl);
		vsnprintf(last_av_error, sizeof(last_av_error), fmt, cp);
		va_end(cp);
		last_av_error[strcspn(last_av_error, "\n")] = '\0';
	}
	av_log_format_line2(avcl, level, fmt, vl, line, sizeof(line),
			    &print_prefix);
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\n')
		line[--n] = '\0';
	if (n > 0)
		fprintf(stderr, "%s\n", line);
}

static void
on_sigterm(int sig)
{
	(void)sig;
	worker_stop = 1;
}

/* Blocking waits must not miss a SIGTERM that lands between the flag check
 * and the wait: the signals are blocked across the check and ppoll()
 * unblocks them atomically while it sleeps. The admin channel is polled
 * beside fd: a DEL must not wait for the input (a consumer that left
 * would hold a lossless ring until the next packet), nor ADDs pile up in
 * the broker's channel while the source is quiet. */
int
worker_wait(struct worker *w, int fd, const struct timespec *timeout)
{
	sigset_t term, old;
	struct pollfd pfd[2] = {
		{ .fd = WORKER_FD_ADMIN, .events = POLLIN },
		{ .fd = fd, .events = POLLIN },
	};
	int admin = w->ring != NULL && !w->admin_closed, n, err;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	if (sigprocmask(SIG_BLOCK, &term, &old) < 0)
		return -errno;
	n = worker_stop ? -1 : ppoll(admin ? pfd : pfd + 1,
				     (nfds_t)(admin + (fd >= 0)), timeout,
				     &old);
	err = errno;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (worker_stop)
		return -EINTR;
	if (n < 0)
		return err == EINTR ? 0 : -err;
	if (admin && pfd[0].revents != 0) {
		if (ring_admin_poll(w->ring) < 0)
			w->admin_closed = 1;
		return 0;
	}
	return n > 0;
}

/* The AVIO interrupt callback: lets blocking probes and reads give up. */
static int
interrupt_cb(void *opaque)
{
	(void)opaque;
	return worker_stop;
}

/* Die with the broker, and do not start at all if it is already gone. The
 * broker sets PR_SET_PDEATHSIG before exec too (spawn.c), and a fork
 * server's child after its clone (worker_spare.c). */
static int
guard_parent(void)
{
	pid_t parent = getppid();

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0)
		return -1;
	return getppid() == parent ? 0 : -1;
}

static int
install_signals(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigterm;
	sigemptyset(&sa.sa_mask);
	/* no SA_RESTART: a blocked read(2) must return EINTR to notice */
	if (sigaction(SIGTERM, &sa, NULL) < 0 ||
	    sigaction(SIGINT, &sa, NULL) < 0)
		return -1;
	sa.sa_handler = SIG_IGN;
	return sigaction(SIGPIPE, &sa, NULL);
}

/* What fd 0 is, for ps and for format probing (ffprobe probes a file by its
 * name too: the extension breaks ties). "" when unknown. */
static void
input_name(char *buf, size_t cap)
{
	char path[64];
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", WORKER_FD_INPUT);
	n = readlink(path, buf, cap - 1);
	buf[n > 0 ? n : 0] = '\0';
}

static void
set_title(const struct worker *w, const char *name)
{
	const char *base = strrchr(name, '/');

	base = base ? base + 1 : name;
	setproctitle("stream %ld %s", w->stream_id, *base ? base : "-");
}

/* Record the worker's verdict in the ring and map it to an exit code. */
static int
finish(struct worker *w, uint32_t reason, int averror, const char *msg,
       int code)
{
	if (w->ring) {
		/* consumers must not sleep on records until the broker
		 * reaps us and ends the stream */
		ring_flush(w->ring);
		ring_set_worker_status(w->ring, reason, averror, msg);
	}
	return code;
}

static int
finish_av(struct worker *w, uint32_t reason, int averror, int code)
{
	char msg[RING_MSG_LEN];

	if (averror == AVERROR(ENOMEM)) {
		reason = SD_END_MEMORY;
		code = WORKER_EXIT_NOMEM;
	}
	if (worker_stop || averror == AVERROR_EXIT)
		return finish(w, SD_END_CLOSED, 0, "stopped", WORKER_EXIT_STOPPED);
	av_strerror(averror, msg, sizeof(msg));
	if (reason == SD_END_OPEN_FAILED && last_av_error[0] != '\0') {
		size_t n = strlen(msg);

		snprintf(msg + n, sizeof(msg) - n, " (%.*s)",
			 (int)(sizeof(msg) - n - 4), last_av_error);
	}
	if (reason != SD_END_EOF)
		worker_log(w, "%s: %s", reason == SD_END_DEMUX_ERROR ?
			   "demux error" : "cannot open input", msg);
	return finish(w, reason, averror, msg, code);
}

static int
finish_ring(struct worker *w, int err)
{
	char msg[RING_MSG_LEN];

	if (err == -EINTR || worker_stop)
		return finish(w, SD_END_CLOSED, 0, "stopped", WORKER_EXIT_STOPPED);
	snprintf(msg, sizeof(msg), "ring: %s", strerror(-err));
	worker_log(w, "%s", msg);
	return finish(w, SD_END_RING_ERROR, 0, msg, WORKER_EXIT_RING_ERROR);
}

/* An error while publishing: the ring's, or a decoder's (--decode). */
static int
finish_err(struct worker *w, int err)
{
	if (err == -EPROTO && w->decode_msg[0] != '\0') {
		worker_log(w, "%s", w->decode_msg);
		return finish(w, SD_END_DEMUX_ERROR, 0, w->decode_msg,
			      WORKER_EXIT_DEMUX_ERROR);
	}
	if (err == AVERROR(ENOMEM))
		return finish_av(w, SD_END_DEMUX_ERROR, err, 0);
	return finish_ring(w, err);
}

/* ffprobe's defaults (open_input_file: scan_all_pmts=1 unless given) plus the
 * project's error tolerance, then the caller's options on top. */
static int
build_options(struct worker *w, AVDictionary **opts, int *scan_set)
{
	char num[32];

	if (av_dict_set(opts, "fflags", "+discardcorrupt+genpts", 0) < 0 ||
	    av_dict_set(opts, "err_detect", "ignore_err", 0) < 0 ||
	    av_dict_copy(opts, w->demux_opts, 0) < 0)
		return AVERROR(ENOMEM);
	*scan_set = !av_dict_get(*opts, "scan_all_pmts", NULL,
				 AV_DICT_MATCH_CASE);
	if (*scan_set && av_dict_set(opts, "scan_all_pmts", "1", 0) < 0)
		return AVERROR(ENOMEM);
	if (w->probesize >= 0) {
		snprintf(num, sizeof(num), "%" PRId64, w->probesize);
		if (av_dict_set(opts, "probesize", num, 0) < 0)
			return AVERROR(ENOMEM);
	}
	if (w->analyzeduration >= 0) {
		snprintf(num, sizeof(num), "%" PRId64, w->analyzeduration);
		if (av_dict_set(opts, "analyzeduration", num, 0) < 0)
			return AVERROR(ENOMEM);
	}
	return 0;
}

/* Demuxers that read one container from our byte stream and nothing else.
 * Left out on purpose: playlists and lists that name other files or URLs
 * (hls, dash, concat, ffmetadata), image sequences (image2), session
 * descriptions (sdp, rtsp), and text/subtitle demuxers that probe loosely.
 * libavformat matches each name of a demuxer against the list
 * (av_match_list), so "mov" admits "mov,mp4,m4a,3gp,3g2,mj2". */
static const char default_format_whitelist[] =
	"matroska,webm,mov,mp4,mpegts,mpeg,mpegvideo,flv,live_flv,ogg,avi,"
	"wav,w64,mp3,aac,loas,flac,ac3,eac3,dts,truehd,mlp,nut,asf,h264,hevc,"
	"m4v,vc1,ivf,aiff,caf,amr,amrnb,amrwb,au,mxf,rm,wv,ape,tta,dv,"
	"yuv4mpegpipe,gsm";

/* Probing may pick any demuxer; the open then fails unless the one picked
 * (or the one forced) is on the list. */
static int
set_format_whitelist(const struct worker *w, AVDictionary **opts)
{
	const char *list = w->format_whitelist != NULL ?
	    w->format_whitelist : default_format_whitelist;

	return av_dict_set(opts, "format_whitelist", list, 0) < 0 ?
	       AVERROR(ENOMEM) : 0;
}

/* Nested opens (HLS/DASH playlists, concat lists, MOV references, image
 * sequences) go through the protocol layer; our input does not. A
 * whitelist naming no protocol makes every such open fail with EINVAL
 * ("Protocol 'file' not on whitelist"). Set last so no option overrides it. */
static int
lock_protocols(AVDictionary **opts)
{
	if (av_dict_get(*opts, "protocol_whitelist", NULL, 0) ||
	    av_dict_get(*opts, "protocol_blacklist", NULL, 0))
		av_log(NULL, AV_LOG_ERROR, "protocol options are not allowed\n");
	av_dict_set(opts, "protocol_blacklist", NULL, 0);
	return av_dict_set(opts, "protocol_whitelist", "none", 0) < 0 ?
	       AVERROR(ENOMEM) : 0;
}

/* A --demux-opt that neither libavformat nor the demuxer it picked took
 * would be silently ignored: the open fails, naming it (ffprobe refuses
 * it the same way). Returns 0 or the worker's exit code. */
static int
refuse_unused(struct worker *w, AVDictionary *opts)
{
	const AVDictionaryEntry *e = NULL;
	char msg[RING_MSG_LEN];

	while ((e = av_dict_get(opts, "", e, AV_DICT_IGNORE_SUFFIX))) {
		if (av_dict_get(w->demux_opts, e->key, NULL,
				AV_DICT_MATCH_CASE) == NULL)
			continue;
		snprintf(msg, sizeof(msg), "demuxer option '%.64s' is not "
			 "known to the %.32s demuxer", e->key,
			 w->fmt != NULL && w->fmt->iformat != NULL ?
			 w->fmt->iformat->name : "chosen");
		return finish(w, SD_END_OPEN_FAILED, AVERROR_OPTION_NOT_FOUND,
			      msg, WORKER_EXIT_OPEN_FAILED);
	}
	return 0;
}

/* A non-seekable input that may be an MP4/MOV is walked box by box first:
 * with the moov after the mdat it is spooled whole (worker_spool.c). */
static int
spool_if_needed(struct worker *w, const AVInputFormat *ifmt)
{
	char msg[RING_MSG_LEN];
	int ret;

	if (w->seekable || (ifmt && strncmp(ifmt->name, "mov,", 4) != 0))
		return 0;
	ret = worker_spool_prepare(w);
	if (ret >= 0)
		return 0;
	if (ret != AVERROR(EFBIG))
		return finish_av(w, SD_END_OPEN_FAILED, ret,
				 WORKER_EXIT_OPEN_FAILED);
	snprintf(msg, sizeof(msg), "spool limit of %llu bytes exceeded (moov "
		 "after mdat on a non-seekable input)",
		 (unsigned long long)w->spool.limit);
	worker_log(w, "%s", msg);
	return finish(w, SD_END_SPOOL_LIMIT, ret, msg, WORKER_EXIT_SPOOL_LIMIT);
}

static int
open_input(struct worker *w, const char *name)
{
	const AVInputFormat *ifmt = NULL;
	AVDictionary *opts = NULL;
	int scan_set, ret;

	if (w->format && !(ifmt = av_find_input_format(w->format))) {
		char msg[RING_MSG_LEN];

		snprintf(msg, sizeof(msg), "unknown input format '%s'",
			 w->format);
		worker_log(w, "cannot open input: %s", msg);
		return finish(w, SD_END_OPEN_FAILED, AVERROR_DEMUXER_NOT_FOUND,
			      msg, WORKER_EXIT_OPEN_FAILED);
	}
	if ((ret = spool_if_needed(w, ifmt)) != 0)
		return ret;
	if (!(w->fmt = avformat_alloc_context()))
		return finish_av(w, SD_END_OPEN_FAILED, AVERROR(ENOMEM), 0);
	w->fmt->interrupt_callback.callback = interrupt_cb;
	if ((ret = worker_io_open(w)) < 0 ||
	    (ret = build_options(w, &opts, &scan_set)) < 0 ||
	    (ret = set_format_whitelist(w, &opts)) < 0 ||
	    (ret = lock_protocols(&opts)) < 0)
		goto fail;

	/* On failure avformat_open_input frees the context (not our pb). */
	ret = avformat_open_input(&w->fmt, w->seekable ? name : "pipe:0",
				  ifmt, &opts);
	if (ret < 0)
		goto fail;
	if (scan_set)
		av_dict_set(&opts, "scan_all_pmts", NULL, AV_DICT_MATCH_CASE);
	ret = refuse_unused(w, opts);
	av_dict_free(&opts);
	if (ret != 0)
		return ret;
	/* ffprobe runs it too: packets depend on what it buffers and fixes */
	ret = avformat_find_stream_info(w->fmt, NULL);
	if (ret < 0)
		return finish_av(w, SD_END_OPEN_FAILED, ret,
				 WORKER_EXIT_OPEN_FAILED);
	return 0;
fail:
	av_dict_free(&opts);
	return finish_av(w, SD_END_OPEN_FAILED, ret, WORKER_EXIT_OPEN_FAILED);
}

static int
demux(struct worker *w)
{
	AVPacket *pkt = av_packet_alloc();
	int ret, err;

	if (!pkt)
		return finish_av(w, SD_END_DEMUX_ERROR, AVERROR(ENOMEM), 0);
	for (;;) {
#ifdef SHMDEMUX_FAULT_INJECTION
		if (w->fault != WORKER_FAULT_NONE &&
		    w->published >= w->fault_after &&
		    (ret = worker_fault_step(w)) >= 0) {
			av_packet_free(&pkt);
			return ret;
		}
#endif
		ret = worker_stop ? AVERROR_EXIT : av_read_frame(w->fmt, pkt);
		if (ret < 0)
			break;
		err = worker_pkt_admit(w, pkt);
		if (err > 0) {
			/* a decoded track's packets become FRAME records,
			 * the others PACKET records */
			err = worker_decode_packet(w, pkt);
			if (err == 0)
				err = worker_pkt_publish(w, pkt);
			if (err >= 0)
				worker_pkt_count(w, pkt);
		}
		av_packet_unref(pkt);
		w->published++;
		if (err < 0) {
			av_packet_free(&pkt);
			return finish_err(w, err);
		}
	}
	av_packet_free(&pkt);
	if (ret == AVERROR_EOF && (err = worker_decode_flush(w)) < 0)
		return finish_err(w, err);
	if (ret == AVERROR_EOF)
		return finish(w, SD_END_EOF, 0, "end of input",
			      WORKER_EXIT_EOF);
	return finish_av(w, SD_END_DEMUX_ERROR, ret, WORKER_EXIT_DEMUX_ERROR);
}

/* Give up everything the demuxer does not need before the first input byte
 * is read (broker/sandbox.h). A forbidden call later traps and the syscall
 * number lands in the header for the broker's report. */
static int
enter_sandbox(struct worker *w)
{
	struct sandbox_conf c = {
		.mem_limit = w->mem_limit,
		/* room for a wake pipe per consumer slot */
		.max_fds = WORKER_FD_WAKE_FROM + RING_MAX_SLOTS + 8,
		.allow_threads = 1,
		/* its input to read, its log to write, the ring's admin
		 * channel to receive from: no other fd */
		.fds = {
			{ WORKER_FD_INPUT, SANDBOX_FD_READ },
			{ WORKER_FD_LOG, SANDBOX_FD_WRITE },
			{ WORKER_FD_ADMIN, SANDBOX_FD_RECV },
		},
		.nfds = 3,
		.wake_fds_from = WORKER_FD_WAKE_FROM,
	};
	char err[RING_MSG_LEN];

	/* Under a lower hard limit (`ulimit -Hn 256`) sandbox_enter() keeps
	 * that one: fewer consumer slots can then have a wake pipe. */
#ifdef SHMDEMUX_SANITIZE_BUILD
	/* the sanitizer runtime reserves terabytes of address space */
	c.mem_limit = 0;
	/* LeakSanitizer's check at exit stops the world with ptrace, which
	 * the sandbox traps, and the trap deadlocks the sanitizer's signal
	 * handler: the worker would hang instead of exiting. Check now; that
	 * also turns the check at exit off. */
	__lsan_do_leak_check();
#endif
	/* Demuxers format dates with localtime(), which would open
	 * /etc/localtime inside the sandbox: a POSIX TZ string needs no
	 * file. Dates in metadata are not part of what we publish. */
	setenv("TZ", "UTC0", 1);
	tzset();
	if (sandbox_enter(&c, ring_syscall_word(w->ring), err,
			  sizeof(err)) < 0) {
		worker_log(w, "sandbox: %s", err);
		return finish(w, SD_END_EXITED, 0, err,
			      WORKER_EXIT_USAGE);
	}
	return 0;
}

static int
run(struct worker *w)
{
	char name[PATH_MAX];
	int ret;

	ret = ring_map(&w->ring, WORKER_FD_DATA, WORKER_FD_ADMIN,
		       RING_ROLE_PRODUCER);
	/* Mapped (or not: then this mapping can never be made): the broker
	 * seals the data segment against every later writer when this, the
	 * readiness pipe, closes (worker_abi.h). */
	close(WORKER_FD_READY);
	/* Keep every number below WORKER_FD_WAKE_FROM taken until we exit,
	 * so what the admin channel brings lands at or above it (the
	 * sandbox lets us write there, and only there besides the log).
	 * A copy of the input: a read-only descriptor nothing uses. */
	if (ret == 0 && dup2(WORKER_FD_INPUT, WORKER_FD_READY) < 0)
		ret = -errno;
	closefrom(WORKER_FD_WAKE_FROM);
	if (ret < 0) {
		worker_log(w, "cannot map the ring: %s", strerror(-ret));
		return WORKER_EXIT_USAGE;
	}
	/* published by ring_set_state() below */
	ring_set_worker_pid(w->ring, (int32_t)getpid());
	ring_set_state(w->ring, RING_STATE_OPENING);

	input_name(name, sizeof(name));
	set_title(w, name);
	if ((ret = worker_input_prepare(w)) < 0) {
		worker_log(w, "input: %s", strerror(-ret));
		return finish(w, SD_END_INPUT_ERROR, 0, strerror(-ret),
			      WORKER_EXIT_USAGE);
	}
	if ((ret = enter_sandbox(w)) != 0)
		return ret;
	if ((ret = open_input(w, name)) != 0)
		return ret;
	if ((ret = worker_decode_open(w)) == -ENOSPC) {
		worker_log(w, "%s", w->decode_msg);
		return finish(w, SD_END_RING_ERROR, 0, w->decode_msg,
			      WORKER_EXIT_RING_ERROR);
	}
	if (ret < 0)
		return finish_av(w, SD_END_OPEN_FAILED, ret,
				 WORKER_EXIT_OPEN_FAILED);
	if ((ret = worker_tracks_publish(w)) < 0)
		return finish_ring(w, ret);
	ring_set_state(w->ring, RING_STATE_RUNNING);
	/* probed: the rest of a waiting child's fresh heap is not needed */
	worker_prefault_release();
	return demux(w);
}

/* Started ahead of the stream (worker_abi.h): the loader and constructors
 * have run; warm up, then wait for the stream (in a child of the broker's,
 * for a fork server). Returns -1 with *a holding the stream's argv and its
 * fds in place, else the exit code: 0 when the broker let us go. */
static int
wait_assignment(enum worker_start mode, struct worker_assign *a)
{
	char err[128];
	int ret;

	av_log_set_level(AV_LOG_QUIET);
	if (mode == WORKER_START_FORK)
		worker_prefault_setup();
	worker_warm();
	if (mode == WORKER_START_FORK)
		ret = worker_fork_server(a, err, sizeof(err));
	else
		ret = worker_spare_wait(a, err, sizeof(err));
	if (ret > 0)
		return -1;
	if (ret < 0)
		fprintf(stderr, "%s\n", err);
	return ret == 0 ? WORKER_EXIT_EOF : WORKER_EXIT_USAGE;
}

int
main(int argc, char **argv, char **envp)
{
	struct worker w = {
		.probesize = -1,
		.analyzeduration = -1,
		.sync_track = -1,
		.spool.limit = WORKER_SPOOL_DEFAULT,
	};
	struct worker_assign spare = { 0 };
	enum worker_start mode;
	int code;

	if (argc == 2 && strcmp(argv[1], "--version") == 0) {
		sd_version_print(stdout, "shmdemux-worker");
		sd_version_print_ffmpeg(stdout);
		return 0;
	}
	if (guard_parent() < 0)
		return WORKER_EXIT_USAGE;
	/* the exec'd argv: its memory holds the title in spare mode too */
	setproctitle_init(argc, argv, envp);
	mode = worker_start_mode(argc, argv);
	if (mode != WORKER_START_EXEC) {
		code = wait_assignment(mode, &spare);
		if (code >= 0)
			return code;
		argc = spare.argc;
		argv = spare.argv;
	}
	if (worker_parse_args(&w, argc, argv) < 0) {
		worker_usage();
		code = WORKER_EXIT_USAGE;
		goto out;
	}
	if (install_signals() < 0) {
		code = WORKER_EXIT_USAGE;
		goto out;
	}
	av_log_set_level(w.verbose ? AV_LOG_INFO : AV_LOG_ERROR);
	av_log_set_callback(av_log_cb);
	code = run(&w);
#ifndef SHMDEMUX_SANITIZE_BUILD
	/* The stream is over and its end published (finish() flushed the
	 * ring): consumers learn it once the broker has reaped us, so leave
	 * now. Freeing what the kernel frees anyway and running the exit
	 * handlers of the ~140 shared objects FFmpeg pulls in took about 3 ms
	 * per stream. Sanitizer builds take the long way, which LeakSanitizer
	 * checks. */
	_exit(code);
#endif
out:
	worker_decode_close(&w);
	if (w.fmt)
		avformat_close_input(&w.fmt);
	worker_io_close(&w);
	worker_spool_free(&w.spool);
	ring_unmap(&w.ring);
	av_dict_free(&w.demux_opts);
	free((char *)w.format);
	free((char *)w.format_whitelist);
	worker_assign_free(&spare);
	return code;
}
