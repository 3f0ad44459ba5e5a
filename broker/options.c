/*
 * options.c - shmdemuxd's settings: the command line over the
 * configuration files (config.c), --help, --check-config, and where its
 * worker binary is. Errors exit 2 with the option (and the file and line
 * it came from) named.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "parse_size.h"
#include "rundir.h"
#include "shmdemuxd.h"
#include "version.h"


static void
usage(FILE *f)
{
	fprintf(f,
"usage: shmdemuxd [OPTIONS]\n"
"Shared-memory demux broker: opens inputs, runs one sandboxed demux worker\n"
"per stream and hands ring descriptors to consumers.\n"
"\n"
"  --socket PATH        control socket (default: the socket a service manager\n"
"                       passed, else $SHMDEMUX_SOCKET, else shmdemux.sock in\n"
"                       $XDG_RUNTIME_DIR/shmdemux, else in /tmp/shmdemux-UID;\n"
"                       that directory is made mode 0700 and refused if it\n"
"                       is a symbolic link, another user's, or writable by\n"
"                       others)\n"
"  --daemon             run in the background; exits 0 once the socket\n"
"                       listens, non-zero with the error otherwise\n"
"  --pidfile PATH       pid file (default: SOCKET.pid)\n"
"  --ring-size SIZE     default ring size per stream, K/M/G suffixes\n"
"                       (default 32M, at least 64K, at most 4G)\n"
"  --decode-pool SIZE   frame pool of each lossless stream that decodes:\n"
"                       video frames are decoded into it and read in place\n"
"                       (default: the stream's ring size + 32M, at most\n"
"                       4G; 0 = copy every frame)\n"
"  --max-consumers N    consumer slots per stream (default 64, at most %u)\n"
"  --lag-timeout MS     evict a lossless consumer stuck this long\n"
"                       (default 5000, 0 = never)\n"
"  --worker-mem-limit SIZE\n"
"                       address space a worker may use besides its ring,\n"
"                       K/M/G suffixes (default 3G, enough to demux and\n"
"                       decode 4K streams; 0 = no limit); a stream may ask\n"
"                       for its own\n"
"  --watchdog MS        kill a worker that makes no progress this long while\n"
"                       input waits for it (default 10000); per stream too\n"
"  --open-timeout MS    kill a worker still opening its input after this long\n"
"                       (default 30000); a source that gave no byte by\n"
"                       then ends open-failed, one that did, watchdog\n"
"  --reply-timeout MS   drop a control client that leaves the broker's\n"
"                       replies unread this long (default 10000)\n"
"  --max-connections N  control connections held at once (default %u, at\n"
"                       most %u); one more is told \"too many connections\"\n"
"                       and closed\n"
"  --keep-ended MS      an ended stream's ring stays readable this long\n"
"                       once the consumers it waited for have read it and\n"
"                       gone (default 30000; 0 = release it at once; sooner\n"
"                       when descriptors run short); ls reports the stream\n"
"                       until it is reaped or closed\n"
"  --retain-ended SEC   an ended stream that no connection holds leaves the\n"
"                       table this long after its end or its last reader\n"
"                       (default 300; 0 = at once; \"forever\" = until\n"
"                       CLOSE); `ls --all` still shows the last %u\n"
"  --idle-exit SEC      exit when there have been no streams and no\n"
"                       connections for SEC seconds (default 0 = never)\n"
"  --worker-start fork|spare|exec\n"
"                       how a stream gets its worker: fork = from a fork\n"
"                       server loaded once, no exec nor library loading\n"
"                       per stream, but every worker shares its address\n"
"                       layout (default); spare = one worker exec'd ahead\n"
"                       of time for the next stream; exec = one exec per\n"
"                       stream, at open (docs/SECURITY.md)\n"
"  --fork-server-renew N\n"
"                       with fork: a new fork server, so a new address\n"
"                       layout, after every N streams (default 100;\n"
"                       0 = never)\n"
"  --spare-workers 0|1  the older spelling: 0 = exec, 1 = spare\n"
"  --log-level LEVEL    error, warning, info (default) or debug\n"
"  --syslog             with --daemon: once the socket listens, log to\n"
"                       syslog and let go of stderr (whatever it is); the\n"
"                       errors of a failed start still go to stderr\n"
"  --config FILE        read settings from FILE alone (default: the files\n"
"                       " SHMDEMUX_SYSCONF_FILE ",\n"
"                       then $XDG_CONFIG_HOME/shmdemux/shmdemuxd.conf or\n"
"                       ~/.config/shmdemux/shmdemuxd.conf, where they exist;\n"
"                       `name = value` per line, name a long option above,\n"
"                       yes/no for a switch; the command line overrides)\n"
"  --no-config          read no configuration file\n"
"  --check-config       check the files and options, print the settings\n"
"                       that result, and exit (0 if all are valid, 2 not)\n"
"  -v, --verbose        log debug messages (--log-level debug)\n"
"  --help               this text\n"
"  --version            print the version\n"
"\n"
"The worker is $SHMDEMUX_WORKER, else shmdemux-worker next to this binary,\n"
"else " SHMDEMUX_WORKER_RELPATH " from this binary's directory,\n"
"else " SHMDEMUX_WORKER_INSTALLED ".\n"
"\n"
"Under a service manager (systemd's protocol, no libsystemd needed): a\n"
"listening SOCK_SEQPACKET socket passed as fd 3 with LISTEN_FDS=1 and\n"
"LISTEN_PID is served instead of binding one (and left in place at exit);\n"
"READY=1 and STOPPING=1 go to $NOTIFY_SOCKET (Type=notify). Logs go to\n"
"stderr, with syslog priorities when stderr is the journal\n"
"($JOURNAL_STREAM), and to syslog once --daemon has detached from a\n"
"stderr that is /dev/null (or with --syslog). Lines on stderr start with\n"
"the local time; stream lines name the stream's id and name.\n",
		RING_MAX_SLOTS, BROKER_MAX_CONNS, BROKER_MAX_CONNS_LIMIT,
		BROKER_ENDED_HISTORY);
}

static int
parse_uint(const char *s, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (s[0] < '0' || s[0] > '9')
		return -EINVAL;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -EINVAL;
	*out = v;
	return 0;
}

/* The command line with the configuration files' settings in front. */
static struct config_args cfg;

static const char *const start_modes[BROKER_START_COUNT] = {
	[BROKER_START_EXEC] = "exec", [BROKER_START_SPARE] = "spare",
	[BROKER_START_FORK] = "fork",
};

static void __attribute__((noreturn))
bad_option(const char *fmt, const char *arg)
{
	fprintf(stderr, "shmdemuxd: ");
	/* A value from a file: name the file and line. */
	if (optind >= 1 && optind - 1 < cfg.argc && cfg.origin != NULL &&
	    cfg.origin[optind - 1] != NULL)
		fprintf(stderr, "%s: ", cfg.origin[optind - 1]);
	fprintf(stderr, fmt, arg);
	fprintf(stderr, " (see --help)\n");
	exit(2);
}

/* The worker binary: $SHMDEMUX_WORKER, else the first executable of
 * shmdemux-worker beside this binary (a build tree), the install layout
 * relative to this binary (bin/../libexec/shmdemux/, so a relocated or
 * unpacked install finds its own), and the path compiled in for the
 * install prefix. Never a $PATH lookup: which worker runs hostile input is
 * not the caller's environment's choice. */
int
broker_worker_path(void)
{
	const char *env = getenv("SHMDEMUX_WORKER");
	char self[PATH_MAX], *dir;
	const char *cand[3];
	ssize_t n;
	int w;

	if (env != NULL && env[0] != '\0') {
		w = snprintf(conf.worker_path, sizeof(conf.worker_path), "%s",
			     env);
		return w > 0 && (size_t)w < sizeof(conf.worker_path) ? 0 :
			-ENAMETOOLONG;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n < 0)
		return -errno;
	self[n] = '\0';
	dir = dirname(self);
	cand[0] = "shmdemux-worker";
	cand[1] = SHMDEMUX_WORKER_RELPATH;
	cand[2] = NULL;
	for (int i = 0; cand[i] != NULL; i++) {
		w = snprintf(conf.worker_path, sizeof(conf.worker_path),
			     "%s/%s", dir, cand[i]);
		if (w > 0 && (size_t)w < sizeof(conf.worker_path) &&
		    access(conf.worker_path, X_OK) == 0)
			return 0;
	}
	w = snprintf(conf.worker_path, sizeof(conf.worker_path), "%s",
		     SHMDEMUX_WORKER_INSTALLED);
	if (w <= 0 || (size_t)w >= sizeof(conf.worker_path))
		return -ENAMETOOLONG;
	return access(conf.worker_path, X_OK) == 0 ? 0 : -errno;
}

/* --check-config: the files read and every setting as it now stands, in
 * the files' syntax. */
static void
print_config(FILE *f, const char *level)
{
	fprintf(f, "# files read: %s%s%s\n",
		cfg.files[0] != NULL ? cfg.files[0] : "",
		cfg.files[0] != NULL && cfg.files[1] != NULL ? ", " : "",
		cfg.files[1] != NULL ? cfg.files[1] :
		cfg.files[0] == NULL ? "none" : "");
	fprintf(f, "socket = %s\n", conf.socket_path);
	fprintf(f, "pidfile = %s\n", conf.pidfile);
	fprintf(f, "daemon = %s\n", conf.daemonize ? "yes" : "no");
	fprintf(f, "ring-size = %" PRIu64 "\n", conf.ring_size);
	if (conf.decode_pool == BROKER_POOL_AUTO)
		fprintf(f, "# decode-pool: the ring's size + 32M\n");
	else
		fprintf(f, "decode-pool = %" PRIu64 "\n", conf.decode_pool);
	fprintf(f, "max-consumers = %" PRIu32 "\n", conf.max_consumers);
	fprintf(f, "lag-timeout = %" PRIu32 "\n", conf.lag_timeout_ms);
	fprintf(f, "worker-mem-limit = %" PRIu64 "\n", conf.worker_mem_limit);
	fprintf(f, "watchdog = %" PRIu32 "\n", conf.watchdog_ms);
	fprintf(f, "open-timeout = %" PRIu32 "\n", conf.open_timeout_ms);
	fprintf(f, "reply-timeout = %" PRIu32 "\n", conf.reply_timeout_ms);
	fprintf(f, "max-connections = %" PRIu32 "\n", conf.max_conns);
	fprintf(f, "keep-ended = %" PRIu32 "\n", conf.keep_ended_ms);
	if (conf.retain_ended_s == BROKER_RETAIN_FOREVER)
		fprintf(f, "retain-ended = forever\n");
	else
		fprintf(f, "retain-ended = %" PRIu32 "\n",
			conf.retain_ended_s);
	fprintf(f, "syslog = %s\n", conf.syslog_detached ? "yes" : "no");
	fprintf(f, "idle-exit = %u\n", conf.idle_exit_s);
	fprintf(f, "worker-start = %s\n", start_modes[conf.worker_start]);
	fprintf(f, "fork-server-renew = %u\n", conf.fork_renew);
	fprintf(f, "log-level = %s\n", level);
}

void
broker_options(int argc, char **argv, int inherited_fd,
	       const char *inherited_path)
{
	enum { O_SOCKET = 256, O_DAEMON, O_PIDFILE, O_RING, O_MAXC, O_LAG,
	       O_IDLE, O_HELP, O_VERSION, O_MEM, O_WATCHDOG, O_OPEN_TIMEOUT,
	       O_SPARE, O_POOL, O_REPLY_TIMEOUT, O_KEEP_ENDED, O_LOG_LEVEL,
	       O_CONFIG, O_RETAIN, O_SYSLOG, O_NO_CONFIG, O_CHECK_CONFIG,
	       O_WSTART, O_RENEW, O_MAX_CONNS };
	static const char *const not_in_files[] = {
		"help", "version", "config", "no-config", "check-config", NULL,
	};
	static const char *const levels[] = {
		[LOG_LVL_ERROR] = "error", [LOG_LVL_WARN] = "warning",
		[LOG_LVL_INFO] = "info", [LOG_LVL_DEBUG] = "debug",
	};
	static const struct option opts[] = {
		{ "socket", required_argument, NULL, O_SOCKET },
		{ "daemon", no_argument, NULL, O_DAEMON },
		{ "pidfile", required_argument, NULL, O_PIDFILE },
		{ "ring-size", required_argument, NULL, O_RING },
		{ "decode-pool", required_argument, NULL, O_POOL },
		{ "max-consumers", required_argument, NULL, O_MAXC },
		{ "lag-timeout", required_argument, NULL, O_LAG },
		{ "idle-exit", required_argument, NULL, O_IDLE },
		{ "worker-mem-limit", required_argument, NULL, O_MEM },
		{ "watchdog", required_argument, NULL, O_WATCHDOG },
		{ "open-timeout", required_argument, NULL, O_OPEN_TIMEOUT },
		{ "reply-timeout", required_argument, NULL, O_REPLY_TIMEOUT },
		{ "max-connections", required_argument, NULL, O_MAX_CONNS },
		{ "keep-ended", required_argument, NULL, O_KEEP_ENDED },
		{ "retain-ended", required_argument, NULL, O_RETAIN },
		{ "syslog", no_argument, NULL, O_SYSLOG },
		{ "worker-start", required_argument, NULL, O_WSTART },
		{ "fork-server-renew", required_argument, NULL, O_RENEW },
		{ "spare-workers", required_argument, NULL, O_SPARE },
		{ "log-level", required_argument, NULL, O_LOG_LEVEL },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "no-config", no_argument, NULL, O_NO_CONFIG },
		{ "check-config", no_argument, NULL, O_CHECK_CONFIG },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, O_HELP },
		{ "version", no_argument, NULL, O_VERSION },
		{ NULL, 0, NULL, 0 },
	};
	const char *sock = NULL, *pidfile = NULL;
	char msg[PATH_MAX + 256];
	unsigned long v;
	int c, w, check = 0;

	conf.ring_size = UINT64_C(32) << 20;
	conf.decode_pool = BROKER_POOL_AUTO;
	conf.max_consumers = 64;
	conf.lag_timeout_ms = 5000;
	conf.worker_mem_limit = UINT64_C(3) << 30;
	conf.watchdog_ms = 10000;
	conf.open_timeout_ms = 30000;
	conf.reply_timeout_ms = 10000;
	conf.max_conns = BROKER_MAX_CONNS;
	conf.keep_ended_ms = 30000;
	conf.retain_ended_s = 300;
	conf.worker_start = BROKER_START_FORK;
	conf.fork_renew = 100;
	conf.log_level = LOG_LVL_INFO;
	if (config_load(&cfg, argc, argv, opts, not_in_files, msg,
			sizeof(msg)) < 0) {
		fprintf(stderr, "shmdemuxd: %s\n", msg);
		exit(2);
	}
	argc = cfg.argc;
	argv = cfg.argv;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":v", opts, NULL)) != -1) {
		switch (c) {
		case O_SOCKET: sock = optarg; break;
		case O_DAEMON: conf.daemonize = 1; break;
		case O_PIDFILE: pidfile = optarg; break;
		case O_RING:
			if (parse_size(optarg, UINT64_MAX,
				       &conf.ring_size) < 0 ||
			    conf.ring_size < RING_MIN_DATA ||
			    conf.ring_size > BROKER_MAX_RING)
				bad_option("invalid --ring-size: %s", optarg);
			break;
		case O_POOL:
			if (parse_size(optarg, UINT64_MAX,
				       &conf.decode_pool) < 0 ||
			    conf.decode_pool > BROKER_MAX_POOL)
				bad_option("invalid --decode-pool: %s", optarg);
			break;
		case O_MAXC:
			if (parse_uint(optarg, RING_MAX_SLOTS, &v) < 0 || v == 0)
				bad_option("invalid --max-consumers: %s", optarg);
			conf.max_consumers = (uint32_t)v;
			break;
		case O_LAG:
			if (parse_uint(optarg, UINT32_MAX, &v) < 0)
				bad_option("invalid --lag-timeout: %s", optarg);
			conf.lag_timeout_ms = (uint32_t)v;
			break;
		case O_MEM:
			if (parse_size(optarg, UINT64_MAX,
				       &conf.worker_mem_limit) < 0)
				bad_option("invalid --worker-mem-limit: %s",
					   optarg);
			break;
		case O_WATCHDOG:
			if (parse_uint(optarg, UINT32_MAX, &v) < 0 || v == 0)
				bad_option("invalid --watchdog: %s", optarg);
			conf.watchdog_ms = (uint32_t)v;
			break;
		case O_OPEN_TIMEOUT:
			if (parse_uint(optarg, UINT32_MAX, &v) < 0 || v == 0)
				bad_option("invalid --open-timeout: %s", optarg);
			conf.open_timeout_ms = (uint32_t)v;
			break;
		case O_REPLY_TIMEOUT:
			if (parse_uint(optarg, UINT32_MAX, &v) < 0 || v == 0)
				bad_option("invalid --reply-timeout: %s",
					   optarg);
			conf.reply_timeout_ms = (uint32_t)v;
			break;
		case O_MAX_CONNS:
			if (parse_uint(optarg, BROKER_MAX_CONNS_LIMIT, &v) < 0 ||
			    v == 0)
				bad_option("invalid --max-connections: %s",
					   optarg);
			conf.max_conns = (uint32_t)v;
			break;
		case O_KEEP_ENDED:
			if (parse_uint(optarg, UINT32_MAX, &v) < 0)
				bad_option("invalid --keep-ended: %s", optarg);
			conf.keep_ended_ms = (uint32_t)v;
			break;
		case O_RETAIN:
			if (strcmp(optarg, "forever") == 0)
				v = BROKER_RETAIN_FOREVER;
			else if (parse_uint(optarg, 86400u * 365, &v) < 0)
				bad_option("invalid --retain-ended: %s", optarg);
			conf.retain_ended_s = (uint32_t)v;
			break;
		case O_SYSLOG: conf.syslog_detached = 1; break;
		case O_IDLE:
			if (parse_uint(optarg, 86400u * 365, &v) < 0)
				bad_option("invalid --idle-exit: %s", optarg);
			conf.idle_exit_s = (unsigned)v;
			break;
		case O_SPARE:
			if (parse_uint(optarg, 1, &v) < 0)
				bad_option("invalid --spare-workers: %s", optarg);
			conf.worker_start = v ? BROKER_START_SPARE :
				BROKER_START_EXEC;
			break;
		case O_WSTART:
			for (w = 0; w < BROKER_START_COUNT; w++)
				if (strcmp(optarg, start_modes[w]) == 0)
					break;
			if (w == BROKER_START_COUNT)
				bad_option("invalid --worker-start: %s "
					   "(fork, spare or exec)", optarg);
			conf.worker_start = (unsigned)w;
			break;
		case O_RENEW:
			if (parse_uint(optarg, 1000000000u, &v) < 0)
				bad_option("invalid --fork-server-renew: %s",
					   optarg);
			conf.fork_renew = (unsigned)v;
			break;
		case O_LOG_LEVEL:
			for (c = 0; c < (int)(sizeof(levels) / sizeof(levels[0]));
			     c++)
				if (strcmp(optarg, levels[c]) == 0)
					break;
			if (c == (int)(sizeof(levels) / sizeof(levels[0])))
				bad_option("invalid --log-level: %s (error, "
					   "warning, info or debug)", optarg);
			conf.log_level = c;
			break;
		case 'v': conf.log_level = LOG_LVL_DEBUG; break;
		case O_CONFIG: case O_NO_CONFIG: break; /* config_load */
		case O_CHECK_CONFIG: check = 1; break;
		case O_HELP: usage(stdout); exit(0);
		case O_VERSION:
			sd_version_print(stdout, "shmdemuxd");
			puts("FFmpeg: none linked (its workers': "
			     "shmdemux-worker --version)");
			exit(0);
		case ':':
			bad_option("option %s needs an argument",
				   argv[optind - 1]);
		default:
			bad_option("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad_option("unexpected argument %s", argv[optind]);
	if (conf.syslog_detached && !conf.daemonize)
		bad_option("--syslog needs --daemon (in the foreground, logs "
			   "go to stderr)%s", "");

	if (sock != NULL && inherited_fd >= 0 &&
	    strcmp(sock, inherited_path) != 0) {
		fprintf(stderr, "shmdemuxd: --socket %s, but the service "
			"manager passed the socket %s\n", sock, inherited_path);
		exit(2);
	}
	if (sock == NULL && inherited_fd >= 0)
		sock = inherited_path;
	if (sock != NULL)
		w = snprintf(conf.socket_path, sizeof(conf.socket_path), "%s",
			     sock);
	else
		w = rundir_default_socket(conf.socket_path,
					  sizeof(conf.socket_path)) < 0 ? -1 : 0;
	if (w < 0 || (size_t)w >= sizeof(conf.socket_path) ||
	    conf.socket_path[0] == '\0')
		bad_option("invalid socket path %s", sock != NULL ? sock : "");
	if (pidfile != NULL)
		w = snprintf(conf.pidfile, sizeof(conf.pidfile), "%s", pidfile);
	else
		w = snprintf(conf.pidfile, sizeof(conf.pidfile), "%s.pid",
			     conf.socket_path);
	if (w < 0 || (size_t)w >= sizeof(conf.pidfile))
		bad_option("pidfile path too long: %s", conf.pidfile);
	if (check) {
		print_config(stdout, levels[conf.log_level]);
		exit(0);
	}
}

