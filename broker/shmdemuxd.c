/*
 * shmdemuxd.c - the broker's parent: daemonizing, the pidfile, the epoll
 * loop, signals and the orderly shutdown (its options: options.c).
 *
 * Signals arrive through a signalfd (SIGTERM, SIGINT, SIGHUP blocked;
 * SIGPIPE ignored so a vanished peer is an EPIPE), workers through their
 * pidfds; nothing runs in signal context.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "pidfile.h"
#include "service.h"
#include "rundir.h"
#include "shmdemuxd.h"
#include "spare.h"

#define MAX_EVENTS 64

struct broker_conf conf;
int broker_stopping;

static int epfd = -1;
static struct ev sig_ev = { .fd = -1 };
static struct ev shutdown_ev = { .fd = -1 };
static struct ev idle_ev = { .fd = -1 };
static int idle_armed;
static struct pidfile pidf = { .fd = -1 };
/* A listening socket a service manager passed (service.h), and its path. */
static int inherited_fd = -1;
static char inherited_path[sizeof(((struct sockaddr_un *)0)->sun_path)];

/* ---- event loop plumbing ---- */

struct deferred {
	void (*fn)(void *);
	void *arg;
};
struct runlist {
	struct deferred *v;
	size_t n, cap;
};
/* Runs queued during this iteration go to `next`; they run after the
 * batch, and whatever they queue in turn waits for the next iteration. */
static struct runlist run_now, run_next;
static void **freeq;
static size_t nfree, cap_free;

void
ev_init(struct ev *ev)
{
	ev->fd = -1;
	ev->cb = NULL;
	ev->arg = NULL;
}

int
ev_add(struct ev *ev, int fd, uint32_t events, ev_cb cb, void *arg)
{
	struct epoll_event ee = { .events = events, .data.ptr = ev };

	ev->fd = fd;
	ev->cb = cb;
	ev->arg = arg;
	if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ee) < 0) {
		int ret = -errno;

		ev_init(ev);
		return ret;
	}
	return 0;
}

int
ev_mod(struct ev *ev, uint32_t events)
{
	struct epoll_event ee = { .events = events, .data.ptr = ev };

	if (epoll_ctl(epfd, EPOLL_CTL_MOD, ev->fd, &ee) < 0)
		return -errno;
	return 0;
}

void
ev_del(struct ev *ev)
{
	if (ev->fd < 0)
		return;
	(void)epoll_ctl(epfd, EPOLL_CTL_DEL, ev->fd, NULL);
	ev_init(ev);
}

void
ev_close(struct ev *ev)
{
	int fd = ev->fd;

	ev_del(ev);
	if (fd >= 0)
		close(fd);
}

static int
grow(void **arr, size_t *cap, size_t elem)
{
	size_t ncap = *cap != 0 ? *cap * 2 : 64;
	void *p = reallocarray(*arr, ncap, elem);

	if (p == NULL)
		return -ENOMEM;
	*arr = p;
	*cap = ncap;
	return 0;
}

void
loop_defer_free(void *p)
{
	if (nfree == cap_free && grow((void **)&freeq, &cap_free,
				      sizeof(*freeq)) < 0) {
		/* Cannot remember it: leaking beats a use after free. */
		log_error("out of memory, leaking %p", p);
		return;
	}
	freeq[nfree++] = p;
}

void
loop_defer_run(void (*fn)(void *), void *arg)
{
	if (run_next.n == run_next.cap &&
	    grow((void **)&run_next.v, &run_next.cap, sizeof(*run_next.v)) < 0) {
		fn(arg); /* run now rather than lose it */
		return;
	}
	run_next.v[run_next.n++] = (struct deferred){ fn, arg };
}

/* After each batch: the deferred runs, then the deferred frees (a run may
 * name an object freed during the batch; it checks a flag, so the memory
 * must still be there). */
static void
run_deferred(void)
{
	struct runlist tmp = run_now;

	run_now = run_next;
	run_next = tmp;
	run_next.n = 0;
	for (size_t i = 0; i < run_now.n; i++)
		run_now.v[i].fn(run_now.v[i].arg);
	run_now.n = 0;
	for (size_t i = 0; i < nfree; i++)
		free(freeq[i]);
	nfree = 0;
}

int
timer_arm(int tfd, unsigned ms)
{
	struct itimerspec its = {
		.it_value = { .tv_sec = ms / 1000,
			      .tv_nsec = (long)(ms % 1000) * 1000000L },
	};

	if (timerfd_settime(tfd, 0, &its, NULL) < 0)
		return -errno;
	return 0;
}

int
broker_fds_in_use(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return -errno;
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n - 1; /* not the one reading the directory */
}

/* Descriptors are what each stream and connection costs: take all the
 * hard limit allows (the soft one is often 1024, some 140 streams). */
static void
raise_nofile(void)
{
	struct rlimit rl;
	rlim_t was;

	if (getrlimit(RLIMIT_NOFILE, &rl) < 0) {
		conf.nofile = 1024;
		return;
	}
	was = rl.rlim_cur;
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) == 0) {
			log_info("fd limit raised from %llu to %llu",
				 (unsigned long long)was,
				 (unsigned long long)rl.rlim_cur);
		} else {
			log_errno(LOG_LVL_WARN, errno, "cannot raise the fd "
				  "limit from %llu to %llu",
				  (unsigned long long)was,
				  (unsigned long long)rl.rlim_max);
			rl.rlim_cur = was;
		}
	}
	conf.nofile = rl.rlim_cur > UINT_MAX ? UINT_MAX :
		(unsigned)rl.rlim_cur;
}

int
timer_new(struct ev *ev, ev_cb cb, void *arg)
{
	int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	int ret;

	if (tfd < 0)
		return -errno;
	ret = ev_add(ev, tfd, EPOLLIN, cb, arg);
	if (ret < 0)
		close(tfd);
	return ret;
}

static void
timer_drain(int tfd)
{
	uint64_t exp;

	(void)!read(tfd, &exp, sizeof(exp));
}

/* ---- shutdown and idle exit ---- */

static void
on_shutdown_timer(struct ev *ev, uint32_t events)
{
	(void)events;
	timer_drain(ev->fd);
	log_info("%u worker(s) still running, killing them",
		 stream_running_count());
	streams_signal_all(SIGKILL);
}

static void
begin_shutdown(const char *why)
{
	if (broker_stopping)
		return;
	broker_stopping = 1;
	log_info("%s, shutting down", why);
	(void)service_notify("STOPPING=1");
	control_stop_listening();
	spare_stop();
	streams_signal_all(SIGTERM);
	if (stream_running_count() > 0 &&
	    (timer_new(&shutdown_ev, on_shutdown_timer, NULL) < 0 ||
	     timer_arm(shutdown_ev.fd, BROKER_SHUTDOWN_GRACE_MS) < 0))
		streams_signal_all(SIGKILL);
}

void
broker_request_stop(void)
{
	begin_shutdown("asked to stop");
}

static void
on_idle_timer(struct ev *ev, uint32_t events)
{
	(void)events;
	timer_drain(ev->fd);
	idle_armed = 0;
	if (stream_count() == 0 && control_conn_count() == 0)
		begin_shutdown("idle");
}

/* Arm the idle timer when the broker becomes idle, disarm it when not. */
static void
idle_check(void)
{
	int idle;

	if (conf.idle_exit_s == 0 || idle_ev.fd < 0 || broker_stopping)
		return;
	idle = stream_count() == 0 && control_conn_count() == 0;
	if (idle && !idle_armed) {
		if (timer_arm(idle_ev.fd, conf.idle_exit_s * 1000u) == 0)
			idle_armed = 1;
	} else if (!idle && idle_armed) {
		timer_arm(idle_ev.fd, 0);
		idle_armed = 0;
	}
}

static void
on_signal(struct ev *ev, uint32_t events)
{
	struct signalfd_siginfo si;

	(void)events;
	while (read(ev->fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			begin_shutdown(sigabbrev_np((int)si.ssi_signo));
			break;
		case SIGHUP:
			log_info("SIGHUP: nothing to reload");
			break;
		}
	}
}

static int
setup_signals(void)
{
	sigset_t set;
	int fd, ret;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -errno;
	fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0)
		return -errno;
	ret = ev_add(&sig_ev, fd, EPOLLIN, on_signal, NULL);
	if (ret < 0)
		close(fd);
	return ret;
}

static void
loop(void)
{
	struct epoll_event evs[MAX_EVENTS];
	int n;

	while (!broker_stopping || stream_running_count() > 0) {
		idle_check();
		n = epoll_wait(epfd, evs, MAX_EVENTS, run_next.n > 0 ? 0 : -1);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_errno(LOG_LVL_ERROR, errno, "epoll_wait");
			begin_shutdown("event loop failure");
			streams_signal_all(SIGKILL);
			break;
		}
		for (int i = 0; i < n; i++) {
			struct ev *ev = evs[i].data.ptr;

			if (ev->cb != NULL)
				ev->cb(ev, evs[i].events);
		}
		run_deferred();
	}
}

/* ---- start and stop ---- */

/* Fork; the parent waits on a pipe for the child's verdict: one byte 0 once
 * the socket listens, else the child's exit status. */
static int
daemonize(void)
{
	int p[2];
	pid_t pid;
	unsigned char st;
	ssize_t n;

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_errno(LOG_LVL_ERROR, errno, "pipe");
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		log_errno(LOG_LVL_ERROR, errno, "fork");
		exit(1);
	}
	if (pid > 0) {
		close(p[1]);
		do
			n = read(p[0], &st, 1);
		while (n < 0 && errno == EINTR);
		/* EOF without a verdict: the child died during setup. */
		_exit(n == 1 ? st : 1);
	}
	close(p[0]);
	if (setsid() < 0)
		log_errno(LOG_LVL_WARN, errno, "setsid");
	return p[1];
}

static void
ready(int notify_fd, unsigned char status)
{
	if (notify_fd < 0)
		return;
	(void)!write(notify_fd, &status, 1);
	close(notify_fd);
}

static void
detach_stdio(void)
{
	int fd = open("/dev/null", O_RDWR | O_CLOEXEC);

	if (fd < 0)
		return;
	dup2(fd, STDIN_FILENO);
	dup2(fd, STDOUT_FILENO);
	close(fd);
}

/* Detached, a daemon whose stderr is /dev/null (an auto-started broker)
 * or closed would log nowhere: syslog takes its log. A terminal, file or
 * pipe someone gave it keeps it. */
static void
stderr_to_syslog(void)
{
	struct stat st, null;
	int fd;

	if (conf.syslog_detached) {
		/* Whoever gave us stderr (an auto-starting client reading
		 * why a start failed) sees its end once we listen. */
		log_to_syslog();
		fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
		if (fd >= 0) {
			dup2(fd, STDERR_FILENO);
			close(fd);
		}
		return;
	}
	if (fstat(STDERR_FILENO, &st) == 0 &&
	    (!S_ISCHR(st.st_mode) || stat("/dev/null", &null) < 0 ||
	     st.st_rdev != null.st_rdev))
		return;
	log_to_syslog();
}

static int
open_pidfile(void)
{
	char msg[PATH_MAX + 160];
	pid_t other;
	int ret;

	ret = pidfile_lock(&pidf, conf.pidfile, &other, msg, sizeof(msg));
	if (ret < 0) {
		log_error("%s", msg);
		return -1;
	}
	return 0;
}

/* The default socket's directory is made private, or refused, before
 * anything is created in it (rundir.h). */
static int
check_rundir(void)
{
	char dir[PATH_MAX], msg[PATH_MAX + 200];

	if (!rundir_holds(conf.socket_path))
		return 0;
	if (rundir_path(dir, sizeof(dir)) < 0 ||
	    rundir_check(dir, 1, msg, sizeof(msg)) < 0) {
		log_error("%s", msg);
		return -1;
	}
	return 0;
}

static int
setup(void)
{
	int ret;

	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (epfd < 0) {
		log_errno(LOG_LVL_ERROR, errno, "epoll_create1");
		return -1;
	}
	ret = setup_signals();
	if (ret < 0) {
		log_errno(LOG_LVL_ERROR, ret, "signals");
		return -1;
	}
	if (conf.idle_exit_s > 0 &&
	    (ret = timer_new(&idle_ev, on_idle_timer, NULL)) < 0) {
		log_errno(LOG_LVL_ERROR, ret, "timerfd");
		return -1;
	}
	if (check_rundir() < 0 || open_pidfile() < 0)
		return -1;
	if (control_listen(conf.socket_path, inherited_fd) < 0)
		return -1;
	if ((ret = spare_init()) < 0) {
		log_errno(LOG_LVL_ERROR, ret, "spare worker timer");
		return -1;
	}
	if ((ret = pidfile_store(&pidf)) < 0)
		log_errno(LOG_LVL_WARN, ret, "pidfile %s", conf.pidfile);
	return 0;
}

int
main(int argc, char **argv)
{
	char msg[256];
	int notify = -1, ret;

	service_init();
	log_init();
	ret = service_listen_fd(&inherited_fd, inherited_path,
				sizeof(inherited_path), msg, sizeof(msg));
	broker_options(argc, argv, inherited_fd, inherited_path);
	log_set_level((enum log_level)conf.log_level);
	if (ret < 0) {
		log_error("socket activation: %s", msg);
		(void)service_notify("STATUS=socket activation failed");
		return 1;
	}
	raise_nofile();
	ret = broker_worker_path();
	if (ret < 0) {
		log_errno(LOG_LVL_ERROR, ret, "cannot find an executable "
			  "shmdemux-worker (beside this binary, in "
			  SHMDEMUX_WORKER_RELPATH " from it, or "
			  SHMDEMUX_WORKER_INSTALLED "; $SHMDEMUX_WORKER "
			  "overrides)");
		return 1;
	}
	if (conf.daemonize)
		notify = daemonize();
	if (setup() < 0) {
		pidfile_drop(&pidf);
		ready(notify, 1);
		return 1;
	}
	log_info("%s %s (worker %s)", inherited_fd >= 0 ? "serving the "
		 "passed socket" : "listening on", conf.socket_path,
		 conf.worker_path);
	if (conf.daemonize) {
		detach_stdio();
		stderr_to_syslog();
	}
	ready(notify, 0);
	snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving %s",
		 conf.socket_path);
	if ((ret = service_notify(msg)) < 0)
		log_errno(LOG_LVL_WARN, ret, "$NOTIFY_SOCKET");

	loop();

	control_stop_listening();
	control_close_all();
	streams_free_all();
	run_deferred();
	pidfile_drop(&pidf);
	log_info("exiting");
	return 0;
}
