/*
 * _shmdemux.c - the CPython extension under the `shmdemux` package.
 *
 * It is a thin layer over the public client library (client/shmdemux.h,
 * libshmdemux) and nothing else of the project: Connection wraps a
 * shmdemux_conn, Reader an attached shmdemux_stream, Packet / Frame / Plane
 * the records read from it. The pure-Python modules beside it (the package
 * in ../shmdemux/) add the asyncio waiting, the seed-shaped Demuxer, the
 * exceptions and the numpy / PyAV conversions.
 *
 * One file of ~2,800 lines on purpose: its types share the module state
 * and the lock rule below, which is checked most easily in one place; the
 * decoded-frame export (Frame, Plane) is what moves out first if it grows.
 *
 * Threads and locks. The library wants one thread per handle at a time, and
 * every call that may block runs with the GIL released, so each handle has
 * a mutex held around every library call on it. The rule that keeps the
 * two locks from deadlocking: a thread holding the GIL never blocks on a
 * handle mutex (it uses trylock, or releases the GIL first); a thread
 * holding a handle mutex may take the GIL.
 *
 * Zero copy. A packet's payload is exported without a copy (Packet.data is
 * a memoryview of the ring record). The library keeps that record only
 * until the next read on the stream, so every read first bumps the
 * reader's generation and releases the memoryview handed out for the
 * previous record: an exporter of an older generation refuses new exports,
 * and the released memoryview raises ValueError when used. A view that
 * cannot be released (something holds a buffer of it) still points into
 * the mapping, which stays mapped (the detach is deferred) while any export
 * is alive: it may read overwritten bytes, never freed memory.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libavutil/imgutils.h>
#include <libavutil/pixdesc.h>
#include <libavutil/samplefmt.h>

#include "shmdemux.h"

/* The library's own wait slice: a blocked read wakes at least this often,
 * so waiting in slices of it costs no extra wake-ups. A wait notices an
 * interrupt, a close or the interpreter's shutdown within one slice. */
#define WAIT_SLICE_MS 100

#define STR_(x) #x
#define STR(x) STR_(x)
/* The header this module was compiled against. */
#define VERSION_STRING STR(SHMDEMUX_VERSION_MAJOR) "." \
	STR(SHMDEMUX_VERSION_MINOR) "." STR(SHMDEMUX_VERSION_PATCH)

PyMODINIT_FUNC PyInit__shmdemux(void);

/* ---- module-wide state (single-phase init) ---- */

static PyObject *error_factory;   /* shmdemux._errors.error_from_code */
static PyObject *end_of_stream;   /* shmdemux._errors.EndOfStream */
static PyObject *tracks_changed;  /* the TRACKS_CHANGED sentinel */
static PyObject *empty_bytes;
static PyObject *str_release;
static PyObject *str_media[6];    /* unknown, video, audio, data, ... */
static int shutting_down;         /* atomic; set at interpreter exit */

static PyTypeObject ConnectionType, ReaderType, RingBufferType, PacketType,
	FrameType, PlaneType;

static PyObject *
media_name(int media_type)
{
	int i = media_type + 1;

	if (i < 0 || i >= (int)(sizeof(str_media) / sizeof(str_media[0])))
		i = 0;
	return str_media[i];
}

static PyObject *
ts_or_none(int64_t ts)
{
	if (ts == SHMDEMUX_NOPTS)
		Py_RETURN_NONE;
	return PyLong_FromLongLong(ts);
}

/* Timeout argument: None waits forever (-1), else seconds >= 0 as ms. */
static int
timeout_ms_from(PyObject *o, int *ms)
{
	double t;

	if (o == NULL || o == Py_None) {
		*ms = -1;
		return 0;
	}
	t = PyFloat_AsDouble(o);
	if (t == -1.0 && PyErr_Occurred())
		return -1;
	if (!(t >= 0)) {
		PyErr_SetString(PyExc_ValueError, "timeout must be >= 0 or None");
		return -1;
	}
	*ms = t * 1000.0 >= INT_MAX ? INT_MAX : (int)(t * 1000.0 + 0.5);
	return 0;
}

static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- errors ---- */

static PyObject *
status_dict(const struct shmdemux_status *st)
{
	return Py_BuildValue(
		"{s:i,s:s,s:i,s:s,s:i,s:i,s:i,s:i,s:i,s:i,s:K,s:K,s:K,s:I,"
		"s:s,s:K,s:K,s:K,s:K}",
		"state", st->state, "state_name", shmdemux_state_name(st->state),
		"end_reason", st->end_reason,
		"end_reason_name", shmdemux_end_reason_name(st->end_reason),
		"code", st->code, "exit_code", st->exit_code,
		"signal", st->signal, "averror", st->averror,
		"syscall", st->syscall, "worker_pid", st->worker_pid,
		"packets", (unsigned long long)st->packets,
		"bytes", (unsigned long long)st->bytes,
		"overruns", (unsigned long long)st->overruns,
		"track_gen", (unsigned)st->track_gen,
		"message", st->message,
		"frames", (unsigned long long)st->frames,
		"decode_errors", (unsigned long long)st->decode_errors,
		"frames_pooled", (unsigned long long)st->frames_pooled,
		"frames_copied", (unsigned long long)st->frames_copied);
}

/* Set the Python exception for a library code. errno values become the
 * matching OSError subclass (FileNotFoundError, ...); SHMDEMUX_E* codes
 * the classes of shmdemux._errors, given the broker's message (may be
 * NULL or "") and the stream's status (may be NULL). Returns NULL. */
static PyObject *
raise_code(int code, const char *msg, PyObject *status)
{
	PyObject *exc;

	if (code > -4096 && code < 0) {
		exc = PyObject_CallFunction(PyExc_OSError, "is", -code,
					    msg != NULL && msg[0] != '\0' ? msg :
					    shmdemux_strerror(code));
	} else {
		exc = PyObject_CallFunction(error_factory, "isO", code,
					    msg != NULL ? msg : "",
					    status != NULL ? status : Py_None);
	}
	if (exc != NULL) {
		PyErr_SetObject((PyObject *)Py_TYPE(exc), exc);
		Py_DECREF(exc);
	}
	return NULL;
}

/* ==== Connection ==== */

typedef struct {
	PyObject_HEAD
	shmdemux_conn *c;
	pthread_mutex_t lock;
} ConnectionObject;

#define CONN_CALL(self, stmt) do {                                      \
		Py_BEGIN_ALLOW_THREADS                                  \
		pthread_mutex_lock(&(self)->lock);                      \
		stmt;                                                   \
		pthread_mutex_unlock(&(self)->lock);                    \
		Py_END_ALLOW_THREADS                                    \
	} while (0)

static int
conn_check(ConnectionObject *self)
{
	if (self->c == NULL) {
		PyErr_SetString(PyExc_ValueError, "connection is closed");
		return -1;
	}
	return 0;
}

static PyObject *
Connection_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	ConnectionObject *self = (ConnectionObject *)type->tp_alloc(type, 0);

	(void)args;
	(void)kw;
	if (self != NULL)
		pthread_mutex_init(&self->lock, NULL);
	return (PyObject *)self;
}

static int
Connection_init(ConnectionObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "socket_path", "autostart", NULL };
	PyObject *path_o = Py_None, *path = NULL;
	const char *p = NULL;
	int autostart = 1, ret;
	shmdemux_conn *c = NULL;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$p", kwlist, &path_o,
					 &autostart))
		return -1;
	if (path_o != Py_None && !PyUnicode_FSConverter(path_o, &path))
		return -1;
	if (self->c != NULL) {
		Py_XDECREF(path);
		PyErr_SetString(PyExc_RuntimeError, "already connected");
		return -1;
	}
	if (path != NULL)
		p = PyBytes_AS_STRING(path);
	CONN_CALL(self, ret = shmdemux_connect(&c, p,
		autostart ? SHMDEMUX_CONNECT_AUTOSTART : 0));
	Py_XDECREF(path);
	if (ret < 0) {
		raise_code(ret, NULL, NULL);
		return -1;
	}
	self->c = c;
	return 0;
}

static void
Connection_dealloc(ConnectionObject *self)
{
	shmdemux_disconnect(&self->c);
	pthread_mutex_destroy(&self->lock);
	Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
Connection_close(ConnectionObject *self, PyObject *unused)
{
	(void)unused;
	CONN_CALL(self, shmdemux_disconnect(&self->c));
	Py_RETURN_NONE;
}

static PyObject *
Connection_enter(PyObject *self, PyObject *unused)
{
	(void)unused;
	Py_INCREF(self);
	return self;
}

static PyObject *
Connection_exit(ConnectionObject *self, PyObject *args)
{
	(void)args;
	return Connection_close(self, NULL);
}

static PyObject *
Connection_get_closed(ConnectionObject *self, void *c)
{
	(void)c;
	return PyBool_FromLong(self->c == NULL);
}

static PyObject *
Connection_get_socket_path(ConnectionObject *self, void *c)
{
	(void)c;
	if (conn_check(self) < 0)
		return NULL;
	return PyUnicode_DecodeFSDefault(shmdemux_conn_socket_path(self->c));
}

/* Broker reasons are copied out under the lock: the next request on the
 * connection replaces them. */
typedef char errbuf[256];

static void
copy_last_error(ConnectionObject *self, errbuf buf)
{
	snprintf(buf, sizeof(errbuf), "%s", shmdemux_conn_last_error(self->c));
}

/* ---- open options ---- */

struct opts_keep {
	PyObject *name, *format, *whitelist, *label; /* bytes or NULL */
	PyObject *demux_bytes;                       /* list of bytes */
	const char **demux;                          /* NULL-terminated */
};

static void
opts_keep_free(struct opts_keep *k)
{
	Py_XDECREF(k->name);
	Py_XDECREF(k->format);
	Py_XDECREF(k->whitelist);
	Py_XDECREF(k->label);
	Py_XDECREF(k->demux_bytes);
	PyMem_Free(k->demux);
	memset(k, 0, sizeof(*k));
}

static int
opt_string(PyObject *o, PyObject **keep, const char **out, const char *what)
{
	if (o == NULL || o == Py_None)
		return 0;
	if (!PyUnicode_Check(o)) {
		PyErr_Format(PyExc_TypeError, "%s must be a str or None", what);
		return -1;
	}
	*keep = PyUnicode_AsUTF8String(o);
	if (*keep == NULL)
		return -1;
	if (strlen(PyBytes_AS_STRING(*keep)) !=
	    (size_t)PyBytes_GET_SIZE(*keep)) {
		PyErr_Format(PyExc_ValueError, "%s contains a NUL", what);
		return -1;
	}
	*out = PyBytes_AS_STRING(*keep);
	return 0;
}

static int
opt_mode(PyObject *o, int *mode)
{
	if (o == NULL || o == Py_None)
		return 0;
	if (PyUnicode_Check(o)) {
		if (PyUnicode_CompareWithASCIIString(o, "lossless") == 0) {
			*mode = SHMDEMUX_MODE_LOSSLESS;
			return 0;
		}
		if (PyUnicode_CompareWithASCIIString(o, "live") == 0) {
			*mode = SHMDEMUX_MODE_LIVE;
			return 0;
		}
	} else if (PyLong_Check(o)) {
		long v = PyLong_AsLong(o);

		if (v == SHMDEMUX_MODE_LOSSLESS || v == SHMDEMUX_MODE_LIVE) {
			*mode = (int)v;
			return 0;
		}
		if (PyErr_Occurred())
			return -1;
	}
	PyErr_SetString(PyExc_ValueError, "mode must be 'lossless' or 'live'");
	return -1;
}

static int
decode_word(PyObject *o, unsigned *out)
{
	if (PyLong_Check(o)) {
		unsigned long v = PyLong_AsUnsignedLong(o);

		if (PyErr_Occurred())
			return -1;
		if (v & ~(unsigned long)(SHMDEMUX_DECODE_VIDEO |
					 SHMDEMUX_DECODE_AUDIO))
			goto bad;
		*out |= (unsigned)v;
		return 0;
	}
	if (!PyUnicode_Check(o))
		goto bad;
	if (PyUnicode_CompareWithASCIIString(o, "video") == 0)
		*out |= SHMDEMUX_DECODE_VIDEO;
	else if (PyUnicode_CompareWithASCIIString(o, "audio") == 0)
		*out |= SHMDEMUX_DECODE_AUDIO;
	else if (PyUnicode_CompareWithASCIIString(o, "all") == 0)
		*out |= SHMDEMUX_DECODE_VIDEO | SHMDEMUX_DECODE_AUDIO;
	else if (PyUnicode_CompareWithASCIIString(o, "none") != 0)
		goto bad;
	return 0;
bad:
	PyErr_SetString(PyExc_ValueError, "decode takes 'video', 'audio', "
			"'all', 'none', an iterable of those, or DECODE_* bits");
	return -1;
}

static int
opt_decode(PyObject *o, unsigned *out)
{
	PyObject *it, *item;
	int ret = 0;

	*out = 0;
	if (o == NULL || o == Py_None)
		return 0;
	if (PyLong_Check(o) || PyUnicode_Check(o))
		return decode_word(o, out);
	it = PyObject_GetIter(o);
	if (it == NULL)
		return -1;
	while (ret == 0 && (item = PyIter_Next(it)) != NULL) {
		ret = decode_word(item, out);
		Py_DECREF(item);
	}
	Py_DECREF(it);
	return ret < 0 || PyErr_Occurred() ? -1 : 0;
}

/* demux_options: a mapping {key: value} or an iterable of "key=value". */
static int
opt_demux(PyObject *o, struct opts_keep *k)
{
	PyObject *items = NULL, *seq = NULL;
	Py_ssize_t n;
	int ret = -1;

	if (o == NULL || o == Py_None)
		return 0;
	k->demux_bytes = PyList_New(0);
	if (k->demux_bytes == NULL)
		return -1;
	if (PyMapping_Check(o) && !PyUnicode_Check(o) &&
	    PyObject_HasAttrString(o, "items")) {
		items = PyMapping_Items(o);
		if (items == NULL)
			goto out;
		n = PyList_GET_SIZE(items);
		for (Py_ssize_t i = 0; i < n; i++) {
			PyObject *kv = PyList_GET_ITEM(items, i), *s, *b;

			s = PyUnicode_FromFormat("%S=%S",
						 PyTuple_GET_ITEM(kv, 0),
						 PyTuple_GET_ITEM(kv, 1));
			if (s == NULL)
				goto out;
			b = PyUnicode_AsUTF8String(s);
			Py_DECREF(s);
			if (b == NULL || PyList_Append(k->demux_bytes, b) < 0) {
				Py_XDECREF(b);
				goto out;
			}
			Py_DECREF(b);
		}
	} else {
		seq = PySequence_Fast(o, "demux_options must be a mapping or "
				      "an iterable of 'key=value' strings");
		if (seq == NULL)
			goto out;
		n = PySequence_Fast_GET_SIZE(seq);
		for (Py_ssize_t i = 0; i < n; i++) {
			PyObject *s = PySequence_Fast_GET_ITEM(seq, i), *b;

			if (!PyUnicode_Check(s)) {
				PyErr_SetString(PyExc_TypeError,
						"demux option must be a str");
				goto out;
			}
			b = PyUnicode_AsUTF8String(s);
			if (b == NULL || PyList_Append(k->demux_bytes, b) < 0) {
				Py_XDECREF(b);
				goto out;
			}
			Py_DECREF(b);
		}
	}
	n = PyList_GET_SIZE(k->demux_bytes);
	k->demux = PyMem_Calloc((size_t)n + 1, sizeof(*k->demux));
	if (k->demux == NULL) {
		PyErr_NoMemory();
		goto out;
	}
	for (Py_ssize_t i = 0; i < n; i++) {
		PyObject *b = PyList_GET_ITEM(k->demux_bytes, i);

		if (strlen(PyBytes_AS_STRING(b)) != (size_t)PyBytes_GET_SIZE(b) ||
		    strchr(PyBytes_AS_STRING(b), '=') == NULL) {
			PyErr_Format(PyExc_ValueError, "demux option %R is not "
				     "'key=value'", b);
			goto out;
		}
		k->demux[i] = PyBytes_AS_STRING(b);
	}
	ret = 0;
out:
	Py_XDECREF(items);
	Py_XDECREF(seq);
	return ret;
}

/* The keyword-only open options shared by open_path, open_fd and
 * open_push, into o (initialised to the defaults). */
static int
parse_open_opts(PyObject *kw, struct shmdemux_open_opts *o,
		struct opts_keep *k)
{
	static char *kwlist[] = {
		"name", "mode", "ring_size", "wait_consumers",
		"lag_timeout_ms", "format", "probesize", "analyzeduration",
		"demux_options", "realtime", "noseek", "mem_limit",
		"spool_limit", "watchdog_ms", "decode", "decode_threads",
		"decode_strict", "format_whitelist", "label", NULL
	};
	PyObject *name = NULL, *mode = NULL, *wait = NULL, *format = NULL,
		*demux = NULL, *decode = NULL, *whitelist = NULL,
		*label = NULL, *empty;
	unsigned long long ring_size = 0, mem_limit = 0, spool_limit = 0;
	unsigned int lag = 0, watchdog = 0, threads = 0;
	long long probesize = 0, analyze = 0;
	int realtime = 0, noseek = 0, strict = 0, ok;

	shmdemux_open_opts_init(o);
	memset(k, 0, sizeof(*k));
	empty = PyTuple_New(0);
	if (empty == NULL)
		return -1;
	ok = PyArg_ParseTupleAndKeywords(empty, kw, "|$OOKOIOLLOppKKIOIpOO",
		kwlist, &name, &mode, &ring_size, &wait, &lag, &format,
		&probesize, &analyze, &demux, &realtime, &noseek, &mem_limit,
		&spool_limit, &watchdog, &decode, &threads, &strict,
		&whitelist, &label);
	Py_DECREF(empty);
	if (!ok)
		return -1;
	if (opt_string(name, &k->name, &o->name, "name") < 0 ||
	    opt_string(format, &k->format, &o->format, "format") < 0 ||
	    opt_string(whitelist, &k->whitelist, &o->format_whitelist,
		       "format_whitelist") < 0 ||
	    opt_string(label, &k->label, &o->label, "label") < 0 ||
	    opt_mode(mode, &o->mode) < 0 ||
	    opt_decode(decode, &o->decode) < 0 ||
	    opt_demux(demux, k) < 0)
		goto fail;
	if (wait != NULL && wait != Py_None) {
		unsigned long v = PyLong_AsUnsignedLong(wait);

		if (PyErr_Occurred())
			goto fail;
		if (v >= UINT32_MAX) {
			PyErr_SetString(PyExc_OverflowError,
					"wait_consumers too large");
			goto fail;
		}
		o->wait_consumers = (uint32_t)v;
	}
	if (probesize < 0 || analyze < 0) {
		PyErr_SetString(PyExc_ValueError,
				"probesize and analyzeduration must be >= 0");
		goto fail;
	}
	o->ring_size = ring_size;
	o->lag_timeout_ms = lag;
	o->probesize = probesize;
	o->analyzeduration = analyze;
	o->demux_opts = k->demux;
	o->realtime = realtime;
	o->noseek = noseek;
	o->mem_limit = mem_limit;
	o->spool_limit = spool_limit;
	o->watchdog_ms = watchdog;
	o->decode_threads = threads;
	o->decode_strict = strict;
	return 0;
fail:
	opts_keep_free(k);
	return -1;
}

static PyObject *
Connection_open_path(ConnectionObject *self, PyObject *args, PyObject *kw)
{
	struct shmdemux_open_opts o;
	struct opts_keep k;
	PyObject *path = NULL;
	uint32_t id = 0;
	errbuf err = "";
	int ret;

	if (conn_check(self) < 0 ||
	    !PyArg_ParseTuple(args, "O&:open_path", PyUnicode_FSConverter,
			      &path))
		return NULL;
	if (parse_open_opts(kw, &o, &k) < 0) {
		Py_DECREF(path);
		return NULL;
	}
	CONN_CALL(self, ret = shmdemux_open_path(self->c,
		PyBytes_AS_STRING(path), &o, &id);
		if (ret < 0) copy_last_error(self, err));
	Py_DECREF(path);
	opts_keep_free(&k);
	if (ret < 0)
		return raise_code(ret, err, NULL);
	return PyLong_FromUnsignedLong(id);
}

static PyObject *
Connection_open_fd(ConnectionObject *self, PyObject *args, PyObject *kw)
{
	struct shmdemux_open_opts o;
	struct opts_keep k;
	uint32_t id = 0;
	errbuf err = "";
	int fd, ret;

	if (conn_check(self) < 0 ||
	    !PyArg_ParseTuple(args, "i:open_fd", &fd))
		return NULL;
	if (fd < 0) {
		PyErr_SetString(PyExc_ValueError, "fd must be >= 0");
		return NULL;
	}
	if (parse_open_opts(kw, &o, &k) < 0)
		return NULL;
	CONN_CALL(self, ret = shmdemux_open_fd(self->c, fd, &o, &id);
		if (ret < 0) copy_last_error(self, err));
	opts_keep_free(&k);
	if (ret < 0)
		return raise_code(ret, err, NULL);
	return PyLong_FromUnsignedLong(id);
}

static PyObject *
Connection_open_push(ConnectionObject *self, PyObject *args, PyObject *kw)
{
	struct shmdemux_open_opts o;
	struct opts_keep k;
	uint32_t id = 0;
	errbuf err = "";
	int fd = -1, ret;

	if (conn_check(self) < 0 ||
	    !PyArg_ParseTuple(args, ":open_push") ||
	    parse_open_opts(kw, &o, &k) < 0)
		return NULL;
	CONN_CALL(self, ret = shmdemux_open_push(self->c, &o, &id, &fd);
		if (ret < 0) copy_last_error(self, err));
	opts_keep_free(&k);
	if (ret < 0)
		return raise_code(ret, err, NULL);
	return Py_BuildValue("(ki)", (unsigned long)id, fd);
}

static PyObject *
push_finish(ConnectionObject *self, PyObject *args, int abort)
{
	unsigned long id;
	int fd, error = EIO, ret;
	errbuf err = "";

	if (conn_check(self) < 0)
		return NULL;
	if (abort ? !PyArg_ParseTuple(args, "ki|i:push_abort", &id, &fd, &error)
		  : !PyArg_ParseTuple(args, "ki:push_end", &id, &fd))
		return NULL;
	if (fd < 0 || id > UINT32_MAX || error < 0) {
		PyErr_SetString(PyExc_ValueError, "bad stream id, fd or error");
		return NULL;
	}
	/* The library closes fd in every case. */
	CONN_CALL(self, ret = abort ?
		shmdemux_push_abort(self->c, (uint32_t)id, &fd, error) :
		shmdemux_push_end(self->c, (uint32_t)id, &fd);
		if (ret < 0) copy_last_error(self, err));
	if (ret < 0)
		return raise_code(ret, err, NULL);
	Py_RETURN_NONE;
}

static PyObject *
Connection_push_end(ConnectionObject *self, PyObject *args)
{
	return push_finish(self, args, 0);
}

static PyObject *
Connection_push_abort(ConnectionObject *self, PyObject *args)
{
	return push_finish(self, args, 1);
}

/* A stream named by id (int) or by name (str). */
static int
stream_ref(PyObject *o, uint32_t *id, PyObject **name)
{
	*id = 0;
	*name = NULL;
	if (PyLong_Check(o)) {
		unsigned long v = PyLong_AsUnsignedLong(o);

		if (PyErr_Occurred())
			return -1;
		if (v > UINT32_MAX) {
			PyErr_SetString(PyExc_OverflowError, "stream id too large");
			return -1;
		}
		*id = (uint32_t)v;
		return 0;
	}
	if (PyUnicode_Check(o)) {
		*name = PyUnicode_AsUTF8String(o);
		return *name == NULL ? -1 : 0;
	}
	PyErr_SetString(PyExc_TypeError, "a stream is named by id (int) or "
			"name (str)");
	return -1;
}

static PyObject *
stop_stream(ConnectionObject *self, PyObject *arg, int kill)
{
	PyObject *name;
	uint32_t id;
	errbuf err = "";
	int ret;

	if (conn_check(self) < 0 || stream_ref(arg, &id, &name) < 0)
		return NULL;
	CONN_CALL(self, ret = kill ?
		shmdemux_kill_stream(self->c, id,
			name ? PyBytes_AS_STRING(name) : NULL) :
		shmdemux_close_stream(self->c, id,
			name ? PyBytes_AS_STRING(name) : NULL);
		if (ret < 0) copy_last_error(self, err));
	Py_XDECREF(name);
	if (ret < 0)
		return raise_code(ret, err, NULL);
	Py_RETURN_NONE;
}

static PyObject *
Connection_close_stream(ConnectionObject *self, PyObject *arg)
{
	return stop_stream(self, arg, 0);
}

static PyObject *
Connection_kill_stream(ConnectionObject *self, PyObject *arg)
{
	return stop_stream(self, arg, 1);
}

/* LIST: the entries are collected into C memory with the GIL released,
 * then turned into dicts. */
struct list_acc {
	struct shmdemux_stream_info *v;
	size_t n, cap;
};

static int
list_cb(const struct shmdemux_stream_info *info, void *ctx)
{
	struct list_acc *a = ctx;

	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		void *p = realloc(a->v, cap * sizeof(*a->v));

		if (p == NULL)
			return -ENOMEM;
		a->v = p;
		a->cap = cap;
	}
	a->v[a->n++] = *info;
	return 0;
}

static PyObject *
info_dict(const struct shmdemux_stream_info *i)
{
	return Py_BuildValue(
		"{s:k,s:i,s:s,s:i,s:s,s:i,s:i,s:i,s:s,s:I,s:I,s:I,s:K,s:K,"
		"s:K,s:K,s:K,s:K,s:s,s:s,s:s,s:K,s:K,s:K,s:K,s:K,s:O,s:O}",
		"id", (unsigned long)i->id, "state", i->state,
		"state_name", shmdemux_state_name(i->state),
		"end_reason", i->end_reason,
		"end_reason_name", shmdemux_end_reason_name(i->end_reason),
		"exit_code", i->exit_code, "signal", i->signal,
		"worker_pid", i->worker_pid,
		"mode", i->mode == SHMDEMUX_MODE_LIVE ? "live" : "lossless",
		"tracks", (unsigned)i->tracks, "consumers", (unsigned)i->consumers,
		"fill_permille", (unsigned)i->fill_permille,
		"packets", (unsigned long long)i->packets,
		"bytes", (unsigned long long)i->bytes,
		"input_bytes", (unsigned long long)i->input_bytes,
		"drops", (unsigned long long)i->drops,
		"uptime_ms", (unsigned long long)i->uptime_ms,
		"ring_size", (unsigned long long)i->ring_size,
		"name", i->name, "source", i->source, "end_msg", i->end_msg,
		"frames", (unsigned long long)i->frames,
		"lag_bytes", (unsigned long long)i->lag_bytes,
		"worker_cpu_ms", (unsigned long long)i->worker_cpu_ms,
		"worker_rss", (unsigned long long)i->worker_rss,
		"ended_ago_ms", (unsigned long long)i->ended_ago_ms,
		"reaped", i->flags & SHMDEMUX_INFO_REAPED ? Py_True : Py_False,
		"ring_released", i->flags & SHMDEMUX_INFO_RELEASED ? Py_True :
		Py_False);
}

static PyObject *
Connection_list(ConnectionObject *self, PyObject *unused)
{
	struct list_acc a = { 0 };
	PyObject *out = NULL, *d;
	errbuf err = "";
	int ret;

	(void)unused;
	if (conn_check(self) < 0)
		return NULL;
	CONN_CALL(self, ret = shmdemux_list(self->c, list_cb, &a);
		if (ret < 0) copy_last_error(self, err));
	if (ret < 0) {
		raise_code(ret, err, NULL);
		goto out;
	}
	out = PyList_New(0);
	for (size_t i = 0; out != NULL && i < a.n; i++) {
		d = info_dict(&a.v[i]);
		if (d == NULL || PyList_Append(out, d) < 0)
			Py_CLEAR(out);
		Py_XDECREF(d);
	}
out:
	free(a.v);
	return out;
}

/* ==== Reader ==== */

struct track_fast {
	PyObject *type;        /* borrowed interned media name */
	int tb_num, tb_den;
};

typedef struct PacketObject PacketObject;

typedef struct {
	PyObject_HEAD
	shmdemux_stream *s;     /* NULL once detached */
	pthread_mutex_t lock;   /* held around every library call on s */
	uint32_t id;
	int live;
	int copy;               /* payloads copied out (live default) */
	int observer;
	int closing;            /* atomic: close() was called */
	uint64_t gen;           /* record generation (GIL) */
	Py_ssize_t exports;     /* live ring buffer exports (GIL) */
	PacketObject *cur;      /* borrowed: the packet of the held view */
	/* a result obtained by a blocking wait, not yet handed out (lock) */
	int pending;
	int pending_ret;
	struct shmdemux_packet pkt;
	/* waits from the event loop: tickets and interrupts (atomic) */
	uint64_t wait_ticket;
	uint64_t interrupted;
	/* per-track values for building packets (lock) */
	uint32_t tc_gen;
	int tc_valid;
	int tc_count;
	struct track_fast *tc;
	PyObject *tracks;       /* list of dicts, the latest table seen */
	uint64_t skipped_overruns;
} ReaderObject;

static int
reader_check(ReaderObject *r)
{
	if (r->s == NULL || __atomic_load_n(&r->closing, __ATOMIC_ACQUIRE)) {
		PyErr_SetString(PyExc_ValueError, "stream is closed");
		return -1;
	}
	return 0;
}

/* GIL held: never block on the handle's lock. */
static int
reader_trylock(ReaderObject *r)
{
	return pthread_mutex_trylock(&r->lock) == 0 ? 0 : -1;
}

/* GIL held on entry and return; the GIL is released while blocking. */
static void
reader_lock(ReaderObject *r)
{
	if (pthread_mutex_trylock(&r->lock) == 0)
		return;
	Py_BEGIN_ALLOW_THREADS
	pthread_mutex_lock(&r->lock);
	Py_END_ALLOW_THREADS
}

static void
reader_unlock(ReaderObject *r)
{
	pthread_mutex_unlock(&r->lock);
}

/* Detach once close() was asked for, no wait holds the handle and no
 * ring buffer is exported any more. GIL held. */
static void
reader_maybe_detach(ReaderObject *r)
{
	shmdemux_stream *s;

	if (r->s == NULL || r->exports > 0 ||
	    !__atomic_load_n(&r->closing, __ATOMIC_ACQUIRE))
		return;
	if (reader_trylock(r) < 0)
		return; /* the holder detaches when it is done */
	s = r->s;
	r->s = NULL;
	r->pending = 0;
	reader_unlock(r);
	Py_BEGIN_ALLOW_THREADS
	shmdemux_detach(&s);
	Py_END_ALLOW_THREADS
}

struct PacketObject {
	PyObject_HEAD
	ReaderObject *reader;   /* strong; NULL for a copied packet */
	uint64_t gen;
	const uint8_t *data;
	Py_ssize_t size;
	PyObject *owner;        /* bytes holding a copied payload */
	PyObject *view;         /* memoryview handed out as .data */
	PyObject *codec_type;   /* strong */
	PyObject *frame;        /* Frame of a decoded frame, else NULL */
	PyObject *side_data;    /* tuple of (type, bytes) or NULL */
	int64_t pts, dts, duration, pos;
	int track;
	int tb_num, tb_den;
	uint32_t flags, track_gen;
	uint64_t seq;
};

static void packet_release_view(PacketObject *p);

/* The held record is about to be released by a read (or a close): what
 * was handed out for it stops exporting. GIL held. */
static void
reader_invalidate(ReaderObject *r)
{
	PacketObject *p = r->cur;

	r->gen++;
	r->cur = NULL;
	if (p != NULL)
		packet_release_view(p);
}

static void
track_cache_clear(ReaderObject *r)
{
	PyMem_Free(r->tc);
	r->tc = NULL;
	r->tc_count = 0;
	r->tc_valid = 0;
}

static PyObject *
track_dict(const struct shmdemux_track *t)
{
	const char *fmt = "";
	PyObject *d, *ed;

	if (t->media_type == SHMDEMUX_MEDIA_VIDEO && t->format >= 0)
		fmt = av_get_pix_fmt_name(t->format);
	else if (t->media_type == SHMDEMUX_MEDIA_AUDIO && t->format >= 0)
		fmt = av_get_sample_fmt_name(t->format);
	if (fmt == NULL)
		fmt = "";
	ed = t->extradata != NULL ?
	    PyBytes_FromStringAndSize((const char *)t->extradata,
				      (Py_ssize_t)t->extradata_size) :
	    (Py_INCREF(empty_bytes), empty_bytes);
	if (ed == NULL)
		return NULL;
	d = Py_BuildValue(
		"{s:i,s:i,s:i,s:O,s:i,s:I,s:i,s:s,s:i,s:i,s:L,s:i,s:i,s:i,s:i,"
		"s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:K,s:i,s:i,"
		"s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:i,s:N,s:N,s:L,s:i,"
		"s:N,s:s,s:s,s:s}",
		"index", t->index, "id", t->id, "media_type", t->media_type,
		"codec_type", media_name(t->media_type),
		"codec_id", t->codec_id, "codec_tag", (unsigned)t->codec_tag,
		"format_id", t->format, "format", fmt,
		"profile", t->profile, "level", t->level,
		"bit_rate", (long long)t->bit_rate,
		"bits_per_coded_sample", t->bits_per_coded_sample,
		"bits_per_raw_sample", t->bits_per_raw_sample,
		"width", t->width, "height", t->height,
		"sar_num", t->sar_num, "sar_den", t->sar_den,
		"field_order", t->field_order, "color_range", t->color_range,
		"color_primaries", t->color_primaries,
		"color_trc", t->color_trc, "color_space", t->color_space,
		"chroma_location", t->chroma_location,
		"video_delay", t->video_delay, "sample_rate", t->sample_rate,
		"ch_order", t->ch_order, "channels", t->channels,
		"ch_mask", (unsigned long long)t->ch_mask,
		"block_align", t->block_align, "frame_size", t->frame_size,
		"initial_padding", t->initial_padding,
		"trailing_padding", t->trailing_padding,
		"seek_preroll", t->seek_preroll,
		"tb_num", t->tb_num, "tb_den", t->tb_den,
		"avg_fr_num", t->avg_fr_num, "avg_fr_den", t->avg_fr_den,
		"r_fr_num", t->r_fr_num, "r_fr_den", t->r_fr_den,
		"st_sar_num", t->st_sar_num, "st_sar_den", t->st_sar_den,
		"start_time", ts_or_none(t->start_time),
		"duration", ts_or_none(t->duration),
		"nb_frames", (long long)t->nb_frames,
		"disposition", t->disposition, "extradata", ed,
		"codec_name", t->codec_name, "language", t->language,
		"title", t->title);
	return d;
}

/* Refresh the per-track cache and the track list from the library's
 * table. Lock and GIL held. */
static int
reader_refresh_tracks(ReaderObject *r)
{
	struct shmdemux_track t;
	struct track_fast *tc;
	PyObject *list;
	uint32_t gen = shmdemux_track_generation(r->s);
	int n = shmdemux_track_count(r->s);

	if (r->tc_valid && gen == r->tc_gen && n == r->tc_count)
		return 0;
	tc = n > 0 ? PyMem_Calloc((size_t)n, sizeof(*tc)) : NULL;
	list = PyList_New(0);
	if ((n > 0 && tc == NULL) || list == NULL) {
		PyMem_Free(tc);
		Py_XDECREF(list);
		PyErr_NoMemory();
		return -1;
	}
	for (int i = 0; i < n; i++) {
		PyObject *d;

		if (shmdemux_get_track(r->s, i, &t) < 0) {
			n = i;
			break;
		}
		tc[i].type = media_name(t.media_type);
		tc[i].tb_num = t.tb_num;
		tc[i].tb_den = t.tb_den;
		d = track_dict(&t);
		if (d == NULL || PyList_Append(list, d) < 0) {
			Py_XDECREF(d);
			PyMem_Free(tc);
			Py_DECREF(list);
			return -1;
		}
		Py_DECREF(d);
	}
	track_cache_clear(r);
	r->tc = tc;
	r->tc_count = n;
	r->tc_gen = gen;
	r->tc_valid = 1;
	Py_XSETREF(r->tracks, list);
	return 0;
}

/* The current status as a dict, for an exception. Lock and GIL held. */
static PyObject *
reader_status_locked(ReaderObject *r)
{
	struct shmdemux_status st;

	shmdemux_status(r->s, &st);
	return status_dict(&st);
}

/* Raise for a read's code, with the stream's status. Lock held. */
static PyObject *
reader_raise(ReaderObject *r, int code)
{
	PyObject *st = NULL;

	if (r->s != NULL && code < -4096)
		st = reader_status_locked(r);
	if (PyErr_Occurred()) {
		Py_XDECREF(st);
		return NULL;
	}
	raise_code(code, st != NULL ?
		   PyUnicode_AsUTF8(PyDict_GetItemString(st, "message")) : NULL,
		   st);
	Py_XDECREF(st);
	return NULL;
}

static PyObject *make_packet(ReaderObject *r, const struct shmdemux_packet *p);
static PyObject *make_frame_packet(ReaderObject *r);

/* What to do with a read's result. */
enum { TAKE_ITEM, TAKE_AGAIN };

/* Turn the pending result into a Python object (or an exception). Lock
 * and GIL held. Returns TAKE_AGAIN (*out NULL, no error) for results to
 * read past: a track table change unless events, an overrun unless
 * overruns. */
static int
reader_take(ReaderObject *r, int events, int overruns, PyObject **out)
{
	int ret = r->pending_ret;

	r->pending = 0;
	*out = NULL;
	if (ret == SHMDEMUX_TRACKS_CHANGED) {
		if (reader_refresh_tracks(r) < 0)
			return TAKE_ITEM;
		if (!events)
			return TAKE_AGAIN;
		Py_INCREF(tracks_changed);
		*out = tracks_changed;
		return TAKE_ITEM;
	}
	if (ret == 0) {
		*out = make_packet(r, &r->pkt);
		if (*out == NULL && !PyErr_Occurred())
			ret = SHMDEMUX_EOVERRUN; /* a live copy lapped */
		else
			return TAKE_ITEM;
	} else if (ret == SHMDEMUX_FRAME) {
		*out = make_frame_packet(r);
		if (*out == NULL && !PyErr_Occurred())
			ret = SHMDEMUX_EOVERRUN;
		else
			return TAKE_ITEM;
	}
	if (ret == SHMDEMUX_EOVERRUN && !overruns) {
		r->skipped_overruns++;
		return TAKE_AGAIN;
	}
	reader_raise(r, ret);
	return TAKE_ITEM;
}

static int
wait_interrupted(ReaderObject *r, uint64_t ticket)
{
	return __atomic_load_n(&r->closing, __ATOMIC_ACQUIRE) ||
	    __atomic_load_n(&shutting_down, __ATOMIC_ACQUIRE) ||
	    (ticket != 0 &&
	     __atomic_load_n(&r->interrupted, __ATOMIC_ACQUIRE) == ticket);
}

/* Get the next result into r->pending, unless one is there. Lock and GIL
 * held on entry and return. timeout_ms: 0 never waits, < 0 forever.
 * Returns 1 when a result is pending, 0 when none came (timeout,
 * interrupted, closing), -1 with a Python exception (a signal handler
 * raised, in the main thread). */
static int
reader_fill(ReaderObject *r, int timeout_ms, uint64_t ticket, int signals)
{
	uint64_t deadline = 0;
	int ret, slice;

	if (r->pending)
		return 1;
	if (r->s == NULL || wait_interrupted(r, ticket))
		return 0;
	reader_invalidate(r);
	if (timeout_ms == 0) {
		ret = shmdemux_read(r->s, &r->pkt, 0);
		goto got;
	}
	if (timeout_ms > 0)
		deadline = mono_ms() + (uint64_t)timeout_ms;
	for (;;) {
		Py_BEGIN_ALLOW_THREADS
		for (;;) {
			slice = WAIT_SLICE_MS;
			if (timeout_ms > 0) {
				uint64_t now = mono_ms();

				slice = now >= deadline ? 0 :
				    (int)(deadline - now < WAIT_SLICE_MS ?
					  deadline - now : WAIT_SLICE_MS);
			}
			ret = shmdemux_read(r->s, &r->pkt, slice);
			if (ret != -EAGAIN || slice == 0 || signals ||
			    wait_interrupted(r, ticket))
				break;
		}
		Py_END_ALLOW_THREADS
		if (ret != -EAGAIN)
			goto got;
		if (slice == 0 || wait_interrupted(r, ticket))
			return 0;
		if (signals && PyErr_CheckSignals() < 0)
			return -1;
	}
got:
	if (ret == -EAGAIN)
		return 0;
	r->pending = 1;
	r->pending_ret = ret;
	return 1;
}

/* The end of a locked section: unlock, then detach if close() came
 * meanwhile. GIL held. */
static void
reader_done(ReaderObject *r)
{
	reader_unlock(r);
	reader_maybe_detach(r);
}

/* Blocking read for read() and iteration. */
static PyObject *
reader_read_blocking(ReaderObject *r, int timeout_ms, int events,
		     int overruns)
{
	PyObject *out = NULL;
	uint64_t deadline = timeout_ms > 0 ? mono_ms() + (uint64_t)timeout_ms : 0;
	int ret;

	if (reader_check(r) < 0)
		return NULL;
	if (r->observer) {
		PyErr_SetString(PyExc_ValueError, "an observer cannot read");
		return NULL;
	}
	Py_INCREF(r);
	reader_lock(r);
	for (;;) {
		int left = timeout_ms;

		if (timeout_ms > 0) {
			uint64_t now = mono_ms();

			left = now >= deadline ? 0 : (int)(deadline - now);
		}
		ret = reader_fill(r, left, 0, 1);
		if (ret < 0)
			break;
		if (ret == 0) { /* timed out, or closed meanwhile */
			out = (Py_INCREF(Py_None), Py_None);
			break;
		}
		if (reader_take(r, events, overruns, &out) == TAKE_ITEM)
			break;
	}
	reader_done(r);
	Py_DECREF(r);
	return out;
}

static PyObject *
Reader_read(ReaderObject *r, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", "events", "overruns", NULL };
	PyObject *timeout = Py_None;
	int ms, events = 0, overruns = 1;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O$pp:read", kwlist,
					 &timeout, &events, &overruns) ||
	    timeout_ms_from(timeout, &ms) < 0)
		return NULL;
	return reader_read_blocking(r, ms, events, overruns);
}

/* Never blocks: a record, None when there is none now (or another thread
 * is waiting on the stream), TRACKS_CHANGED with events=True. Raises
 * EndOfStream at the clean end. */
static PyObject *
Reader_read_nowait(ReaderObject *r, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "events", "overruns", NULL };
	PyObject *out = NULL;
	int events = 0, overruns = 0, ret;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|pp:read_nowait", kwlist,
					 &events, &overruns) ||
	    reader_check(r) < 0)
		return NULL;
	if (r->observer) {
		PyErr_SetString(PyExc_ValueError, "an observer cannot read");
		return NULL;
	}
	if (reader_trylock(r) < 0)
		Py_RETURN_NONE; /* a wait holds it: the caller waits too */
	Py_INCREF(r);
	for (;;) {
		ret = reader_fill(r, 0, 0, 0);
		if (ret <= 0) {
			out = (Py_INCREF(Py_None), Py_None);
			break;
		}
		if (reader_take(r, events, overruns, &out) == TAKE_ITEM)
			break;
	}
	reader_done(r);
	Py_DECREF(r);
	return out;
}

static PyObject *
Reader_wait_ticket(ReaderObject *r, PyObject *unused)
{
	(void)unused;
	return PyLong_FromUnsignedLongLong(++r->wait_ticket);
}

/* The event loop's blocking wait, run in an executor thread: waits until
 * a result is pending (read_nowait then returns it), the stream closes,
 * the ticket is interrupted or the interpreter shuts down. Returns True
 * when a result is pending. Never raises for the stream's end: that is
 * the pending result. */
static PyObject *
Reader_wait_blocking(ReaderObject *r, PyObject *arg)
{
	unsigned long long ticket = PyLong_AsUnsignedLongLong(arg);
	int ret;

	if (PyErr_Occurred())
		return NULL;
	if (r->s == NULL || r->observer)
		Py_RETURN_FALSE;
	Py_INCREF(r);
	reader_lock(r);
	ret = reader_fill(r, -1, ticket, 0);
	reader_done(r);
	Py_DECREF(r);
	if (ret < 0)
		return NULL;
	if (ret == 0 && __atomic_load_n(&shutting_down, __ATOMIC_ACQUIRE)) {
		/* Every later wait would return at once: end the caller's
		 * loop instead of letting it spin. */
		PyErr_SetString(PyExc_RuntimeError, "the interpreter is "
				"shutting down: no more waiting on streams");
		return NULL;
	}
	return PyBool_FromLong(ret);
}

static PyObject *
Reader_interrupt(ReaderObject *r, PyObject *arg)
{
	unsigned long long ticket = PyLong_AsUnsignedLongLong(arg);

	if (PyErr_Occurred())
		return NULL;
	__atomic_store_n(&r->interrupted, ticket, __ATOMIC_RELEASE);
	Py_RETURN_NONE;
}

#ifdef SHMDEMUX_HAVE_STREAM_FD
static PyObject *
Reader_fileno(ReaderObject *r, PyObject *unused)
{
	int fd;

	(void)unused;
	if (reader_check(r) < 0)
		return NULL;
	fd = shmdemux_stream_fd(r->s);
	if (fd < 0)
		return raise_code(fd, NULL, NULL);
	return PyLong_FromLong(fd);
}
#endif

static PyObject *
Reader_iternext(ReaderObject *r)
{
	PyObject *o = reader_read_blocking(r, -1, 0, 0);

	if (o == Py_None) { /* closed under us: end the iteration */
		Py_DECREF(o);
		return NULL;
	}
	/* The clean end stops the iteration; other ends raise. */
	if (o == NULL && PyErr_ExceptionMatches(end_of_stream))
		PyErr_Clear();
	return o;
}

static PyObject *
Reader_wait_running(ReaderObject *r, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "timeout", NULL };
	PyObject *timeout = Py_None;
	int ms, ret;

	if (!PyArg_ParseTupleAndKeywords(args, kw, "|O:wait_running", kwlist,
					 &timeout) ||
	    timeout_ms_from(timeout, &ms) < 0 || reader_check(r) < 0)
		return NULL;
	Py_INCREF(r);
	reader_lock(r);
	if (r->s == NULL) {
		reader_done(r);
		Py_DECREF(r);
		PyErr_SetString(PyExc_ValueError, "stream is closed");
		return NULL;
	}
	Py_BEGIN_ALLOW_THREADS
	ret = shmdemux_wait_running(r->s, ms);
	Py_END_ALLOW_THREADS
	if (ret >= 0 && reader_refresh_tracks(r) < 0)
		ret = INT_MIN;
	reader_done(r);
	Py_DECREF(r);
	if (ret == INT_MIN)
		return NULL;
	if (ret == -ETIMEDOUT)
		Py_RETURN_NONE;
	if (ret < 0)
		return raise_code(ret, NULL, NULL);
	return PyLong_FromLong(ret);
}

/* A list of copies of the cached dicts: callers may change theirs. */
static PyObject *
tracks_copy(PyObject *tracks)
{
	Py_ssize_t n = PyList_GET_SIZE(tracks);
	PyObject *out = PyList_New(n);

	for (Py_ssize_t i = 0; out != NULL && i < n; i++) {
		PyObject *d = PyDict_Copy(PyList_GET_ITEM(tracks, i));

		if (d == NULL)
			Py_CLEAR(out);
		else
			PyList_SET_ITEM(out, i, d);
	}
	return out;
}

/* The latest track table: refreshed when the handle is free, else the
 * copy made by the last read (a wait holds the handle). */
static PyObject *
Reader_get_tracks(ReaderObject *r, void *c)
{
	(void)c;
	if (r->s != NULL && reader_trylock(r) == 0) {
		int ret = r->s != NULL ? reader_refresh_tracks(r) : 0;

		reader_done(r);
		if (ret < 0)
			return NULL;
	}
	if (r->tracks == NULL)
		return PyList_New(0);
	return tracks_copy(r->tracks);
}

/* Take the handle for a quick call, or fail: a thread waiting on the
 * stream holds it for as long as it waits. */
static int
reader_lock_now(ReaderObject *r)
{
	if (reader_check(r) < 0)
		return -1;
	if (reader_trylock(r) < 0) {
		PyErr_SetString(PyExc_RuntimeError, "another thread is waiting "
				"on this stream");
		return -1;
	}
	return 0;
}

static PyObject *
Reader_get_format_name(ReaderObject *r, void *c)
{
	PyObject *o;

	(void)c;
	if (reader_lock_now(r) < 0)
		return NULL;
	o = PyUnicode_FromString(shmdemux_format_name(r->s));
	reader_done(r);
	return o;
}

static PyObject *
Reader_status(ReaderObject *r, PyObject *unused)
{
	PyObject *d;

	(void)unused;
	if (reader_lock_now(r) < 0)
		return NULL;
	d = reader_status_locked(r);
	reader_done(r);
	return d;
}

static PyObject *
Reader_close(ReaderObject *r, PyObject *unused)
{
	(void)unused;
	__atomic_store_n(&r->closing, 1, __ATOMIC_RELEASE);
	reader_invalidate(r);
	reader_maybe_detach(r);
	Py_RETURN_NONE;
}

static PyObject *
Reader_exit(ReaderObject *r, PyObject *args)
{
	(void)args;
	return Reader_close(r, NULL);
}

#define READER_GET(name, expr)                                          \
	static PyObject *Reader_get_##name(ReaderObject *r, void *c)    \
	{                                                               \
		(void)c;                                                \
		return (expr);                                          \
	}
READER_GET(closed, PyBool_FromLong(r->s == NULL ||
	__atomic_load_n(&r->closing, __ATOMIC_ACQUIRE)))
READER_GET(detached, PyBool_FromLong(r->s == NULL))
READER_GET(exports, PyLong_FromSsize_t(r->exports))
READER_GET(id, PyLong_FromUnsignedLong(r->id))
READER_GET(live, PyBool_FromLong(r->live))
READER_GET(copy, PyBool_FromLong(r->copy))
READER_GET(skipped, PyLong_FromUnsignedLongLong(r->skipped_overruns))

static void
Reader_dealloc(ReaderObject *r)
{
	/* Nothing can hold the handle now: a wait and every export hold a
	 * reference to this object. */
	shmdemux_detach(&r->s);
	track_cache_clear(r);
	Py_XDECREF(r->tracks);
	pthread_mutex_destroy(&r->lock);
	Py_TYPE(r)->tp_free((PyObject *)r);
}

/* The stream's mode, from the broker's list. */
struct mode_find {
	uint32_t id;
	int mode;
};

static int
mode_cb(const struct shmdemux_stream_info *info, void *ctx)
{
	struct mode_find *m = ctx;

	if (info->id != m->id)
		return 0;
	m->mode = info->mode;
	return 1;
}

static PyObject *
Connection_attach(ConnectionObject *self, PyObject *args, PyObject *kw)
{
	static char *kwlist[] = { "stream", "start", "observer", "copy", NULL };
	PyObject *ref, *start_o = NULL, *copy_o = Py_None, *name = NULL;
	struct mode_find mf = { 0, SHMDEMUX_MODE_LOSSLESS };
	shmdemux_stream *s = NULL;
	ReaderObject *r;
	errbuf err = "";
	uint32_t id;
	int observer = 0, start = SHMDEMUX_START_OLDEST, ret;
	unsigned flags;

	if (conn_check(self) < 0 ||
	    !PyArg_ParseTupleAndKeywords(args, kw, "O|$OpO:attach", kwlist,
					 &ref, &start_o, &observer, &copy_o))
		return NULL;
	if (start_o != NULL && start_o != Py_None) {
		if (PyUnicode_Check(start_o) &&
		    PyUnicode_CompareWithASCIIString(start_o, "oldest") == 0)
			start = SHMDEMUX_START_OLDEST;
		else if (PyUnicode_Check(start_o) &&
			 PyUnicode_CompareWithASCIIString(start_o, "keyframe") == 0)
			start = SHMDEMUX_START_KEYFRAME;
		else if (PyUnicode_Check(start_o) &&
			 PyUnicode_CompareWithASCIIString(start_o, "live") == 0)
			start = SHMDEMUX_START_LIVE;
		else {
			PyErr_SetString(PyExc_ValueError, "start must be "
					"'oldest', 'keyframe' or 'live'");
			return NULL;
		}
	}
	if (stream_ref(ref, &id, &name) < 0)
		return NULL;
	flags = SHMDEMUX_ATTACH_TRACK_EVENTS |
	    (observer ? SHMDEMUX_ATTACH_OBSERVER : 0);
#if defined(SHMDEMUX_HAVE_STREAM_FD) && defined(SHMDEMUX_ATTACH_POLL)
	/* A reader's descriptor exists only when asked for at attach
	 * (observers do not read, so they have none). */
	if (!observer)
		flags |= SHMDEMUX_ATTACH_POLL;
#endif
	CONN_CALL(self,
		ret = shmdemux_attach(self->c, id,
			name ? PyBytes_AS_STRING(name) : NULL, start, flags, &s);
		if (ret < 0) copy_last_error(self, err);
		if (ret == 0) {
			mf.id = shmdemux_stream_id(s);
			shmdemux_list(self->c, mode_cb, &mf);
		});
	Py_XDECREF(name);
	if (ret < 0)
		return raise_code(ret, err, NULL);
	r = (ReaderObject *)ReaderType.tp_alloc(&ReaderType, 0);
	if (r == NULL) {
		shmdemux_detach(&s);
		return NULL;
	}
	pthread_mutex_init(&r->lock, NULL);
	r->s = s;
	r->id = mf.id;
	r->observer = observer;
	r->live = mf.mode == SHMDEMUX_MODE_LIVE;
	/* Live producers never wait: a view may be overwritten while it is
	 * read, so live readers copy (and check the copy) unless told not. */
	r->copy = copy_o == Py_None ? r->live : PyObject_IsTrue(copy_o);
	if (r->copy < 0) {
		Py_DECREF(r);
		return NULL;
	}
	reader_lock(r);
	ret = reader_refresh_tracks(r);
	reader_unlock(r);
	if (ret < 0) {
		Py_DECREF(r);
		return NULL;
	}
	return (PyObject *)r;
}

/* ==== RingBuffer: the exporter behind Packet.data ==== */

typedef struct {
	PyObject_HEAD
	ReaderObject *reader;   /* strong */
	uint64_t gen;
	const uint8_t *data;
	Py_ssize_t size;
} RingBufferObject;

/* An export of ring memory: refused once the record was released; counted
 * so that the mapping outlives every export. */
static int
ring_export(PyObject *exporter, ReaderObject *r, uint64_t gen,
	    const uint8_t *data, Py_ssize_t size, Py_buffer *view, int flags)
{
	if (r->s == NULL || gen != r->gen) {
		PyErr_SetString(PyExc_BufferError, "the record was released: "
				"a packet's data is valid until the next read "
				"(bytes(pkt.data) keeps a copy)");
		view->obj = NULL;
		return -1;
	}
	if (PyBuffer_FillInfo(view, exporter, (void *)data, size, 1,
			      flags) < 0)
		return -1;
	r->exports++;
	return 0;
}

static void
ring_unexport(ReaderObject *r)
{
	r->exports--;
	reader_maybe_detach(r);
}

static int
RingBuffer_getbuffer(RingBufferObject *b, Py_buffer *view, int flags)
{
	return ring_export((PyObject *)b, b->reader, b->gen, b->data, b->size,
			   view, flags);
}

static void
RingBuffer_releasebuffer(RingBufferObject *b, Py_buffer *view)
{
	(void)view;
	ring_unexport(b->reader);
}

static void
RingBuffer_dealloc(RingBufferObject *b)
{
	Py_XDECREF(b->reader);
	Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyBufferProcs RingBuffer_as_buffer = {
	(getbufferproc)RingBuffer_getbuffer,
	(releasebufferproc)RingBuffer_releasebuffer,
};

/* ==== Packet ==== */

static PyObject *
Packet_get_data(PacketObject *p, void *c)
{
	RingBufferObject *b;

	(void)c;
	if (p->frame != NULL) {
		Py_INCREF(empty_bytes);
		return empty_bytes;
	}
	if (p->owner != NULL) {
		Py_INCREF(p->owner);
		return p->owner;
	}
	if (p->view != NULL) {
		Py_INCREF(p->view);
		return p->view;
	}
	b = PyObject_New(RingBufferObject, &RingBufferType);
	if (b == NULL)
		return NULL;
	Py_INCREF(p->reader);
	b->reader = p->reader;
	b->gen = p->gen;
	b->data = p->data;
	b->size = p->size;
	p->view = PyMemoryView_FromObject((PyObject *)b);
	Py_DECREF(b);
	Py_XINCREF(p->view);
	return p->view;
}

static void
packet_release_view(PacketObject *p)
{
	PyObject *res;

	if (p->view == NULL)
		return;
	/* Fails (BufferError) while something holds a buffer of the view;
	 * that holder keeps the mapping until it lets go. */
	res = PyObject_CallMethodNoArgs(p->view, str_release);
	if (res == NULL)
		PyErr_Clear();
	Py_XDECREF(res);
}

static PyObject *Frame_get_valid(PyObject *fo, void *c);

static PyObject *
Packet_get_valid(PacketObject *p, void *c)
{
	if (p->frame != NULL)
		return Frame_get_valid(p->frame, c);
	if (p->owner != NULL || p->reader == NULL)
		Py_RETURN_TRUE;
	return PyBool_FromLong(p->reader->s != NULL && p->gen == p->reader->gen);
}

static PyObject *
Packet_release(PacketObject *p, PyObject *unused)
{
	ReaderObject *r = p->reader;
	int ret;

	(void)unused;
	if (r == NULL || p->gen != r->gen || r->s == NULL)
		Py_RETURN_TRUE;
	if (reader_trylock(r) < 0)
		Py_RETURN_TRUE; /* a wait already moved on */
	if (r->pending) {
		reader_done(r);
		Py_RETURN_TRUE;
	}
	reader_invalidate(r);
	ret = shmdemux_release(r->s);
	reader_done(r);
	return PyBool_FromLong(ret == 0);
}

static PyObject *
seconds(int64_t ts, int num, int den)
{
	if (ts == SHMDEMUX_NOPTS)
		Py_RETURN_NONE;
	if (den == 0)
		return PyFloat_FromDouble(0.0);
	return PyFloat_FromDouble((double)ts * num / den);
}

/* The simple getters: one expression of p each. */
#define PACKET_GET(name, expr)                                          \
	static PyObject *Packet_get_##name(PacketObject *p, void *c)    \
	{                                                               \
		(void)c;                                                \
		return (expr);                                          \
	}
PACKET_GET(pts, ts_or_none(p->pts))
PACKET_GET(dts, ts_or_none(p->dts))
PACKET_GET(duration, PyLong_FromLongLong(p->duration))
PACKET_GET(pos, PyLong_FromLongLong(p->pos))
PACKET_GET(pts_seconds, seconds(p->pts, p->tb_num, p->tb_den))
PACKET_GET(dts_seconds, seconds(p->dts, p->tb_num, p->tb_den))
PACKET_GET(duration_seconds, seconds(p->duration, p->tb_num, p->tb_den))
PACKET_GET(stream_index, PyLong_FromLong(p->track))
PACKET_GET(codec_type, (Py_INCREF(p->codec_type), p->codec_type))
PACKET_GET(flags, PyLong_FromUnsignedLong(p->flags))
PACKET_GET(size, PyLong_FromSsize_t(p->size))
PACKET_GET(seq, PyLong_FromUnsignedLongLong(p->seq))
PACKET_GET(track_gen, PyLong_FromUnsignedLong(p->track_gen))
PACKET_GET(tb_num, PyLong_FromLong(p->tb_num))
PACKET_GET(tb_den, PyLong_FromLong(p->tb_den))

/* The flag named by the closure (SHMDEMUX_PKT_*). */
static PyObject *
Packet_get_flag(PacketObject *p, void *c)
{
	return PyBool_FromLong(p->flags & (uint32_t)(uintptr_t)c);
}

static PyObject *fraction_type;

static PyObject *
fraction(int num, int den)
{
	if (den == 0)
		Py_RETURN_NONE;
	return PyObject_CallFunction(fraction_type, "ii", num, den);
}

static PyObject *
Packet_get_time_base(PacketObject *p, void *c)
{
	(void)c;
	return fraction(p->tb_num, p->tb_den);
}

static PyObject *
Packet_get_frame(PacketObject *p, void *c)
{
	(void)c;
	if (p->frame == NULL)
		Py_RETURN_NONE;
	Py_INCREF(p->frame);
	return p->frame;
}

static PyObject *
Packet_get_side_data(PacketObject *p, void *c)
{
	(void)c;
	if (p->side_data == NULL)
		return PyTuple_New(0);
	Py_INCREF(p->side_data);
	return p->side_data;
}

static PyObject *
Packet_repr(PacketObject *p)
{
	char pts[32] = "None", dts[32] = "None";

	if (p->pts != SHMDEMUX_NOPTS)
		snprintf(pts, sizeof(pts), "%lld", (long long)p->pts);
	if (p->dts != SHMDEMUX_NOPTS)
		snprintf(dts, sizeof(dts), "%lld", (long long)p->dts);
	return PyUnicode_FromFormat("<shmdemux.Packet stream_index=%d "
		"codec_type=%S%s size=%zd pts=%s dts=%s duration=%lld key=%d>",
		p->track, p->codec_type, p->frame ? " (frame)" : "", p->size,
		pts, dts, (long long)p->duration,
		(p->flags & SHMDEMUX_PKT_KEY) ? 1 : 0);
}

static void
Packet_dealloc(PacketObject *p)
{
	if (p->reader != NULL && p->reader->cur == p)
		p->reader->cur = NULL;
	Py_XDECREF(p->view);
	Py_XDECREF(p->owner);
	Py_XDECREF(p->frame);
	Py_XDECREF(p->side_data);
	Py_XDECREF(p->codec_type);
	Py_XDECREF(p->reader);
	PyObject_Free(p);
}

/* Track values for record p of track i, generation gen. Lock held. */
static const struct track_fast *
track_of(ReaderObject *r, int i, uint32_t gen)
{
	static const struct track_fast unknown = { NULL, 0, 1 };

	if (!r->tc_valid || gen != r->tc_gen || i >= r->tc_count)
		if (reader_refresh_tracks(r) < 0)
			return NULL;
	if (i < 0 || i >= r->tc_count)
		return &unknown;
	return &r->tc[i];
}

static PyObject *
side_data_tuple(const struct shmdemux_packet *p)
{
	PyObject *t = PyTuple_New(p->nb_side_data);

	for (unsigned i = 0; t != NULL && i < p->nb_side_data; i++) {
		PyObject *e = Py_BuildValue("(Iy#)",
			(unsigned)p->side_data[i].type,
			(const char *)p->side_data[i].data,
			(Py_ssize_t)p->side_data[i].size);

		if (e == NULL) {
			Py_CLEAR(t);
			break;
		}
		PyTuple_SET_ITEM(t, i, e);
	}
	return t;
}

/* A live copy is only good if the view was intact until the copy was
 * made: release it now and ask. 0 intact, 1 lapped. Lock held. */
static int
live_copy_lapped(ReaderObject *r)
{
	if (!r->live)
		return 0;
	r->gen++;
	return shmdemux_release(r->s) == SHMDEMUX_EOVERRUN;
}

static PacketObject *
packet_alloc(ReaderObject *r, const struct track_fast *tf)
{
	PacketObject *o = PyObject_New(PacketObject, &PacketType);

	if (o == NULL)
		return NULL;
	o->reader = NULL;
	o->view = NULL;
	o->owner = NULL;
	o->frame = NULL;
	o->side_data = NULL;
	o->data = NULL;
	o->size = 0;
	o->gen = r->gen;
	o->codec_type = tf->type != NULL ? tf->type : str_media[0];
	Py_INCREF(o->codec_type);
	o->tb_num = tf->tb_num;
	o->tb_den = tf->tb_den;
	o->pos = -1;
	o->flags = 0;
	return o;
}

/* Lock and GIL held. NULL without an exception: a live copy was lapped. */
static PyObject *
make_packet(ReaderObject *r, const struct shmdemux_packet *p)
{
	const struct track_fast *tf = track_of(r, p->track, p->track_gen);
	PacketObject *o;

	if (tf == NULL)
		return NULL;
	o = packet_alloc(r, tf);
	if (o == NULL)
		return NULL;
	o->track = p->track;
	o->pts = p->pts;
	o->dts = p->dts;
	o->duration = p->duration;
	o->pos = p->pos;
	o->flags = p->flags;
	o->track_gen = p->track_gen;
	o->seq = p->seq;
	o->size = (Py_ssize_t)p->size;
	if (p->nb_side_data > 0) {
		o->side_data = side_data_tuple(p);
		if (o->side_data == NULL)
			goto fail;
	}
	if (r->copy) {
		o->owner = PyBytes_FromStringAndSize((const char *)p->data,
						     (Py_ssize_t)p->size);
		if (o->owner == NULL)
			goto fail;
		if (live_copy_lapped(r)) {
			Py_DECREF(o);
			return NULL;
		}
		o->data = (const uint8_t *)PyBytes_AS_STRING(o->owner);
		return (PyObject *)o;
	}
	Py_INCREF(r);
	o->reader = r;
	o->data = p->data;
	r->cur = o;
	return (PyObject *)o;
fail:
	Py_DECREF(o);
	return NULL;
}

/* ==== Plane and Frame ==== */

typedef struct {
	PyObject_HEAD
	ReaderObject *reader;   /* strong, NULL when owner holds a copy */
	PyObject *owner;
	uint64_t gen;
	const uint8_t *data;
	Py_ssize_t size;
	int index, line_size, height, width;
} PlaneObject;

static int
Plane_getbuffer(PlaneObject *pl, Py_buffer *view, int flags)
{
	if (pl->owner != NULL)
		return PyBuffer_FillInfo(view, (PyObject *)pl,
					 (void *)pl->data, pl->size, 1, flags);
	if (ring_export((PyObject *)pl, pl->reader, pl->gen, pl->data,
			pl->size, view, flags) < 0)
		return -1;
	view->internal = (void *)1;
	return 0;
}

static void
Plane_releasebuffer(PlaneObject *pl, Py_buffer *view)
{
	if (view->internal == (void *)1)
		ring_unexport(pl->reader);
}

static void
Plane_dealloc(PlaneObject *pl)
{
	Py_XDECREF(pl->reader);
	Py_XDECREF(pl->owner);
	PyObject_Free(pl);
}

static PyObject *
Plane_get_valid(PlaneObject *pl, void *c)
{
	(void)c;
	return PyBool_FromLong(pl->owner != NULL ||
	    (pl->reader->s != NULL && pl->gen == pl->reader->gen));
}

static Py_ssize_t
Plane_len(PlaneObject *pl)
{
	return pl->size;
}

static PyObject *
Plane_repr(PlaneObject *pl)
{
	return PyUnicode_FromFormat("<shmdemux.Plane %d: %d rows of %d bytes, "
		"line_size %d, buffer_size %zd>", pl->index, pl->height,
		pl->width, pl->line_size, pl->size);
}

static PyBufferProcs Plane_as_buffer = {
	(getbufferproc)Plane_getbuffer,
	(releasebufferproc)Plane_releasebuffer,
};

static PySequenceMethods Plane_as_sequence = {
	.sq_length = (lenfunc)Plane_len,
};

typedef struct {
	PyObject_HEAD
	struct shmdemux_frame f;  /* data pointers unused: see planes */
	PyObject *planes;         /* tuple of Plane */
	PyObject *codec_type;
	int tb_num, tb_den;
} FrameObject;

static void
Frame_dealloc(FrameObject *fo)
{
	Py_XDECREF(fo->planes);
	Py_XDECREF(fo->codec_type);
	PyObject_Free(fo);
}

/* Rows and useful bytes per row of plane i of a frame. */
static void
plane_layout(const struct shmdemux_frame *f, int i, int *rows, int *width)
{
	if (f->media_type != SHMDEMUX_MEDIA_VIDEO) {
		*rows = 1;
		*width = f->plane_size[i] > INT_MAX ? INT_MAX :
		    (int)f->plane_size[i];
		return;
	}
	*rows = f->linesize[i] > 0 ?
	    (int)(f->plane_size[i] / (size_t)f->linesize[i]) : 0;
	*width = av_image_get_linesize(f->format, f->width, i);
	if (*width < 0)
		*width = f->linesize[i];
}

/* Lock and GIL held; a frame view is held. NULL without an exception: a
 * live copy was lapped. */
static PyObject *
make_frame_packet(ReaderObject *r)
{
	const struct track_fast *tf;
	FrameObject *fo;
	PacketObject *o;
	struct shmdemux_frame f;
	int ret = shmdemux_get_frame(r->s, &f);

	if (ret < 0)
		return reader_raise(r, ret);
	tf = track_of(r, f.track, f.track_gen);
	if (tf == NULL)
		return NULL;
	fo = PyObject_New(FrameObject, &FrameType);
	if (fo == NULL)
		return NULL;
	fo->f = f;
	fo->codec_type = media_name(f.media_type);
	Py_INCREF(fo->codec_type);
	fo->tb_num = tf->tb_num;
	fo->tb_den = tf->tb_den;
	fo->planes = PyTuple_New(f.nb_planes);
	if (fo->planes == NULL)
		goto fail;
	for (int i = 0; i < f.nb_planes; i++) {
		PlaneObject *pl = PyObject_New(PlaneObject, &PlaneType);

		if (pl == NULL)
			goto fail;
		PyTuple_SET_ITEM(fo->planes, i, (PyObject *)pl);
		pl->reader = NULL;
		pl->owner = NULL;
		pl->gen = r->gen;
		pl->index = i;
		pl->line_size = f.linesize[i];
		plane_layout(&f, i, &pl->height, &pl->width);
		pl->size = (Py_ssize_t)f.plane_size[i];
		if (r->copy) {
			pl->owner = PyBytes_FromStringAndSize(
				(const char *)f.data[i], pl->size);
			if (pl->owner == NULL)
				goto fail;
			pl->data = (const uint8_t *)PyBytes_AS_STRING(pl->owner);
		} else {
			Py_INCREF(r);
			pl->reader = r;
			pl->data = f.data[i];
		}
	}
	if (r->copy && live_copy_lapped(r))
		goto fail;
	o = packet_alloc(r, tf);
	if (o == NULL)
		goto fail;
	o->frame = (PyObject *)fo;
	o->track = f.track;
	/* The seed's shape: a decoded frame's pts and dts are the frame's
	 * presentation time; Frame.pkt_dts has the packet's dts. */
	o->pts = f.pts;
	o->dts = f.pts;
	o->duration = f.duration;
	o->flags = (f.flags & SHMDEMUX_FRAME_KEY) ? SHMDEMUX_PKT_KEY : 0;
	o->track_gen = f.track_gen;
	o->seq = f.seq;
	if (!r->copy) {
		Py_INCREF(r);
		o->reader = r;
		r->cur = o;
	}
	return (PyObject *)o;
fail: /* an exception, or none when a live copy was lapped */
	Py_DECREF(fo);
	return NULL;
}

#define FRAME_GET(name, expr)                                           \
	static PyObject *Frame_get_##name(FrameObject *fo, void *c)     \
	{                                                               \
		(void)c;                                                \
		return (expr);                                          \
	}
#define FRAME_INT(name, v) FRAME_GET(name, PyLong_FromLongLong((long long)(v)))
FRAME_INT(stream_index, fo->f.track)
FRAME_INT(duration, fo->f.duration)
FRAME_INT(flags, fo->f.flags)
FRAME_INT(pict_type_id, fo->f.pict_type)
FRAME_INT(format_id, fo->f.format)
FRAME_INT(width, fo->f.width)
FRAME_INT(height, fo->f.height)
FRAME_INT(color_range, fo->f.color_range)
FRAME_INT(color_primaries, fo->f.color_primaries)
FRAME_INT(color_trc, fo->f.color_trc)
FRAME_INT(color_space, fo->f.color_space)
FRAME_INT(chroma_location, fo->f.chroma_location)
FRAME_INT(sample_rate, fo->f.sample_rate)
FRAME_INT(channels, fo->f.channels)
FRAME_INT(ch_order, fo->f.ch_order)
FRAME_INT(channel_mask, fo->f.ch_mask)
FRAME_INT(samples, fo->f.nb_samples)
FRAME_INT(seq, fo->f.seq)
FRAME_INT(tb_num, fo->tb_num)
FRAME_INT(tb_den, fo->tb_den)

FRAME_GET(pts, ts_or_none(fo->f.pts))
FRAME_GET(best_effort_timestamp, ts_or_none(fo->f.best_effort_timestamp))
FRAME_GET(pkt_dts, ts_or_none(fo->f.pkt_dts))
FRAME_GET(time, seconds(fo->f.pts, fo->tb_num, fo->tb_den))
FRAME_GET(time_base, fraction(fo->tb_num, fo->tb_den))
FRAME_GET(sample_aspect_ratio, fraction(fo->f.sar_num, fo->f.sar_den))
FRAME_GET(codec_type, (Py_INCREF(fo->codec_type), fo->codec_type))
FRAME_GET(planes, (Py_INCREF(fo->planes), fo->planes))

static PyObject *
Frame_get_format(FrameObject *fo, void *c)
{
	const char *n = NULL;

	(void)c;
	if (fo->f.media_type == SHMDEMUX_MEDIA_VIDEO)
		n = av_get_pix_fmt_name(fo->f.format);
	else if (fo->f.media_type == SHMDEMUX_MEDIA_AUDIO)
		n = av_get_sample_fmt_name(fo->f.format);
	return PyUnicode_FromString(n != NULL ? n : "");
}

static PyObject *
Frame_get_is_planar(FrameObject *fo, void *c)
{
	(void)c;
	if (fo->f.media_type == SHMDEMUX_MEDIA_AUDIO)
		return PyBool_FromLong(av_sample_fmt_is_planar(fo->f.format));
	return PyBool_FromLong(fo->f.nb_planes > 1);
}

static PyObject *
Frame_get_bytes_per_sample(FrameObject *fo, void *c)
{
	(void)c;
	if (fo->f.media_type != SHMDEMUX_MEDIA_AUDIO)
		return PyLong_FromLong(0);
	return PyLong_FromLong(av_get_bytes_per_sample(fo->f.format));
}

static PyObject *
Frame_get_flag(FrameObject *fo, void *c)
{
	return PyBool_FromLong(fo->f.flags & (uint32_t)(uintptr_t)c);
}

static PyObject *
Frame_get_pict_type(FrameObject *fo, void *c)
{
	static const char *const names[] = {
		"NONE", "I", "P", "B", "S", "SI", "SP", "BI"
	};
	int t = fo->f.pict_type;

	(void)c;
	if (t < 0 || t >= (int)(sizeof(names) / sizeof(names[0])))
		t = 0;
	return PyUnicode_FromString(names[t]);
}

static PyObject *
Frame_get_valid(PyObject *self, void *c)
{
	FrameObject *fo = (FrameObject *)self;

	(void)c;
	for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(fo->planes); i++) {
		PlaneObject *pl = (PlaneObject *)PyTuple_GET_ITEM(fo->planes, i);

		if (pl->owner == NULL &&
		    (pl->reader->s == NULL || pl->gen != pl->reader->gen))
			Py_RETURN_FALSE;
	}
	Py_RETURN_TRUE;
}

/* to_ndarray() and to_av() live in shmdemux._frames (numpy and PyAV are
 * optional and imported only there). */
static PyObject *
frame_delegate(PyObject *self, const char *fn, PyObject *args, PyObject *kw)
{
	PyObject *mod, *f, *full, *res = NULL;

	mod = PyImport_ImportModule("shmdemux._frames");
	if (mod == NULL)
		return NULL;
	f = PyObject_GetAttrString(mod, fn);
	Py_DECREF(mod);
	if (f == NULL)
		return NULL;
	full = PyTuple_New(PyTuple_GET_SIZE(args) + 1);
	if (full != NULL) {
		Py_INCREF(self);
		PyTuple_SET_ITEM(full, 0, self);
		for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
			PyObject *a = PyTuple_GET_ITEM(args, i);

			Py_INCREF(a);
			PyTuple_SET_ITEM(full, i + 1, a);
		}
		res = PyObject_Call(f, full, kw);
		Py_DECREF(full);
	}
	Py_DECREF(f);
	return res;
}

static PyObject *
Frame_to_ndarray(PyObject *self, PyObject *args, PyObject *kw)
{
	return frame_delegate(self, "to_ndarray", args, kw);
}

static PyObject *
Frame_to_av(PyObject *self, PyObject *args, PyObject *kw)
{
	return frame_delegate(self, "to_av", args, kw);
}

static PyObject *
Frame_repr(FrameObject *fo)
{
	PyObject *fmt = Frame_get_format(fo, NULL), *r;
	char pts[32] = "None";

	if (fmt == NULL)
		return NULL;
	if (fo->f.pts != SHMDEMUX_NOPTS)
		snprintf(pts, sizeof(pts), "%lld", (long long)fo->f.pts);
	if (fo->f.media_type == SHMDEMUX_MEDIA_VIDEO)
		r = PyUnicode_FromFormat("<shmdemux.Frame video %dx%d %U "
			"pts=%s stream_index=%d>", fo->f.width, fo->f.height,
			fmt, pts, fo->f.track);
	else
		r = PyUnicode_FromFormat("<shmdemux.Frame audio %d samples "
			"%U %d Hz %d ch pts=%s stream_index=%d>",
			fo->f.nb_samples, fmt, fo->f.sample_rate,
			fo->f.channels, pts, fo->f.track);
	Py_DECREF(fmt);
	return r;
}

/* ==== type tables ==== */

#define GET(type, name, doc) \
	{ #name, (getter)type##_get_##name, NULL, PyDoc_STR(doc), NULL }
#define METH_KW(f) ((PyCFunction)(void (*)(void))(f))

static PyMethodDef Connection_methods[] = {
	{ "open_path", METH_KW(Connection_open_path),
	  METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("open_path(path, **options) -> int\n\nAsk the broker to "
		    "open a file (resolved by the broker: pass an absolute "
		    "path). Returns the new stream's id.") },
	{ "open_fd", METH_KW(Connection_open_fd), METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("open_fd(fd, **options) -> int\n\nOpen a stream reading "
		    "from fd (pipe, socket, fifo or file), passed to the "
		    "broker; the caller keeps its own fd.") },
	{ "open_push", METH_KW(Connection_open_push),
	  METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("open_push(**options) -> (int, int)\n\nOpen a stream "
		    "whose bytes the caller writes: returns (stream id, write "
		    "fd). Keep this connection open until push_end() or "
		    "push_abort().") },
	{ "push_end", (PyCFunction)Connection_push_end, METH_VARARGS,
	  PyDoc_STR("push_end(stream_id, fd)\n\nClose fd and end the pushed "
		    "input cleanly (the stream ends EOF after its last byte).") },
	{ "push_abort", (PyCFunction)Connection_push_abort, METH_VARARGS,
	  PyDoc_STR("push_abort(stream_id, fd, errno=EIO)\n\nClose fd; the "
		    "input failed (the stream ends input-error).") },
	{ "attach", METH_KW(Connection_attach), METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("attach(stream, *, start='oldest', observer=False, "
		    "copy=None) -> Reader\n\nAttach to a stream by id or name, "
		    "as one more consumer.") },
	{ "list", (PyCFunction)Connection_list, METH_NOARGS,
	  PyDoc_STR("list() -> list[dict]\n\nEvery stream the broker knows.") },
	{ "close_stream", (PyCFunction)Connection_close_stream, METH_O,
	  PyDoc_STR("close_stream(stream)\n\nAsk the stream's worker to stop "
		    "(end reason 'closed').") },
	{ "kill_stream", (PyCFunction)Connection_kill_stream, METH_O,
	  PyDoc_STR("kill_stream(stream)\n\nSIGKILL the stream's worker (end "
		    "reason 'killed').") },
	{ "close", (PyCFunction)Connection_close, METH_NOARGS,
	  PyDoc_STR("Close the connection (streams attached through it stay).") },
	{ "__enter__", Connection_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)Connection_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef Connection_getset[] = {
	GET(Connection, closed, "True once closed."),
	GET(Connection, socket_path, "The broker socket this connection uses."),
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject ConnectionType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmdemux.Connection",
	.tp_basicsize = sizeof(ConnectionObject),
	.tp_dealloc = (destructor)Connection_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE,
	.tp_doc = PyDoc_STR(
		"Connection(socket_path=None, *, autostart=True)\n\n"
		"A control connection to the shmdemux broker. socket_path "
		"None means $SHMDEMUX_SOCKET, else $XDG_RUNTIME_DIR/"
		"shmdemux.sock, else /tmp/shmdemux-<uid>.sock; autostart "
		"starts a per-user broker there when none answers."),
	.tp_methods = Connection_methods,
	.tp_getset = Connection_getset,
	.tp_init = (initproc)Connection_init,
	.tp_new = Connection_new,
};

static PyMethodDef Reader_methods[] = {
	{ "read", METH_KW(Reader_read), METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("read(timeout=None, *, events=False, overruns=True) -> "
		    "Packet | None\n\nThe next record, waiting up to timeout "
		    "seconds (None: forever) with the GIL released; None on "
		    "timeout. Raises EndOfStream at the clean end, the end's "
		    "exception otherwise, Overrun when a live reader lost "
		    "packets (overruns=False skips them).") },
	{ "read_nowait", METH_KW(Reader_read_nowait),
	  METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("read_nowait(*, events=False, overruns=False) -> Packet | "
		    "None\n\nThe next record if one is there now, else None.") },
	{ "wait_running", METH_KW(Reader_wait_running),
	  METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("wait_running(timeout=None) -> int | None\n\nWait until "
		    "the track table is published or the stream ended; returns "
		    "the state (STATE_*), None on timeout.") },
	{ "status", (PyCFunction)Reader_status, METH_NOARGS,
	  PyDoc_STR("status() -> dict\n\nState, end reason, exit code, "
		    "signal, syscall, counters and the end message.") },
	{ "close", (PyCFunction)Reader_close, METH_NOARGS,
	  PyDoc_STR("Detach (deferred while a buffer of a record is still "
		    "exported, so no view reads unmapped memory).") },
	{ "_wait_ticket", (PyCFunction)Reader_wait_ticket, METH_NOARGS, NULL },
	{ "_wait_blocking", (PyCFunction)Reader_wait_blocking, METH_O, NULL },
	{ "_interrupt", (PyCFunction)Reader_interrupt, METH_O, NULL },
#ifdef SHMDEMUX_HAVE_STREAM_FD
	{ "fileno", (PyCFunction)Reader_fileno, METH_NOARGS,
	  PyDoc_STR("The stream's pollable descriptor: readable when a record "
		    "or the end is there.") },
#endif
	{ "__enter__", Connection_enter, METH_NOARGS, NULL },
	{ "__exit__", (PyCFunction)Reader_exit, METH_VARARGS, NULL },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef Reader_getset[] = {
	GET(Reader, id, "The stream's id."),
	GET(Reader, tracks, "The track table: one dict per track."),
	GET(Reader, format_name, "The container format name."),
	GET(Reader, closed, "True once close() was called."),
	GET(Reader, detached, "True once the ring is unmapped."),
	GET(Reader, exports, "Ring buffers still exported."),
	GET(Reader, live, "True for a live-mode stream."),
	GET(Reader, copy, "True when payloads are copied out."),
	GET(Reader, skipped, "Overruns read past (live mode)."),
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyObject *
Reader_iter(PyObject *self)
{
	Py_INCREF(self);
	return self;
}

static PyTypeObject ReaderType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmdemux._shmdemux.Reader",
	.tp_basicsize = sizeof(ReaderObject),
	.tp_dealloc = (destructor)Reader_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = PyDoc_STR("An attached stream (Connection.attach())."),
	.tp_iter = Reader_iter,
	.tp_iternext = (iternextfunc)Reader_iternext,
	.tp_methods = Reader_methods,
	.tp_getset = Reader_getset,
};

static PyTypeObject RingBufferType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmdemux._shmdemux.RingBuffer",
	.tp_basicsize = sizeof(RingBufferObject),
	.tp_dealloc = (destructor)RingBuffer_dealloc,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = PyDoc_STR("A record's payload in the ring (exporter)."),
	.tp_as_buffer = &RingBuffer_as_buffer,
};

static PyMethodDef Packet_methods[] = {
	{ "release", (PyCFunction)Packet_release, METH_NOARGS,
	  PyDoc_STR("release() -> bool\n\nRelease the record now (the data "
		    "view stops working). False when a live producer may have "
		    "overwritten it while it was held: what was read from the "
		    "view is garbage.") },
	{ NULL, NULL, 0, NULL },
};

static PyGetSetDef Packet_getset[] = {
	GET(Packet, data, "The payload: a read-only memoryview of the ring "
	    "record, valid until the next read (bytes(pkt.data) keeps a copy); "
	    "bytes when the stream copies; b'' for a decoded frame."),
	GET(Packet, stream_index, "The track index."),
	GET(Packet, codec_type, "'video', 'audio', 'subtitle', 'data', ..."),
	GET(Packet, pts, "Presentation time in time_base units, None if unset."),
	GET(Packet, dts, "Decode time in time_base units, None if unset."),
	GET(Packet, duration, "Duration in time_base units, 0 if unknown."),
	{ "is_keyframe", (getter)Packet_get_flag, NULL, PyDoc_STR("Key packet (or key frame)."),
	  (void *)(uintptr_t)SHMDEMUX_PKT_KEY },
	{ "is_corrupt", (getter)Packet_get_flag, NULL, PyDoc_STR("The demuxer flagged the packet corrupt."),
	  (void *)(uintptr_t)SHMDEMUX_PKT_CORRUPT },
	{ "is_discard", (getter)Packet_get_flag, NULL, PyDoc_STR("The demuxer flagged it to be discarded."),
	  (void *)(uintptr_t)SHMDEMUX_PKT_DISCARD },
	{ "is_disposable", (getter)Packet_get_flag, NULL, PyDoc_STR("Disposable (no other frame needs it)."),
	  (void *)(uintptr_t)SHMDEMUX_PKT_DISPOSABLE },
	GET(Packet, flags, "SHMDEMUX_PKT_* / AV_PKT_FLAG_* bits."),
	GET(Packet, size, "Payload size in bytes."),
	GET(Packet, pos, "Byte position in the input, -1 if unknown."),
	GET(Packet, seq, "Record number in the stream."),
	GET(Packet, track_gen, "Track table generation of the packet."),
	GET(Packet, time_base, "The track's time base (fractions.Fraction)."),
	GET(Packet, pts_seconds, "pts in seconds, None if unset."),
	GET(Packet, dts_seconds, "dts in seconds, None if unset."),
	GET(Packet, duration_seconds, "duration in seconds."),
	GET(Packet, side_data, "Tuple of (type, bytes) side data entries."),
	GET(Packet, valid, "True while the data can still be exported."),
	{ "time_base_num", (getter)Packet_get_tb_num, NULL,
	  PyDoc_STR("Time base numerator."), NULL },
	{ "time_base_den", (getter)Packet_get_tb_den, NULL,
	  PyDoc_STR("Time base denominator."), NULL },
	{ "decoded_frame", (getter)Packet_get_frame, NULL,
	  PyDoc_STR("The decoded Frame (streams opened with decode), else "
		    "None."), NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject PacketType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmdemux.Packet",
	.tp_basicsize = sizeof(PacketObject),
	.tp_dealloc = (destructor)Packet_dealloc,
	.tp_repr = (reprfunc)Packet_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = PyDoc_STR("One packet (or decoded frame) of a stream."),
	.tp_methods = Packet_methods,
	.tp_getset = Packet_getset,
};

static PyMemberDef Plane_members[] = {
	{ "index", T_INT, offsetof(PlaneObject, index), READONLY,
	  PyDoc_STR("Plane number.") },
	{ "line_size", T_INT, offsetof(PlaneObject, line_size), READONLY,
	  PyDoc_STR("Bytes from one row to the next (video).") },
	{ "height", T_INT, offsetof(PlaneObject, height), READONLY,
	  PyDoc_STR("Rows (video; 1 for audio).") },
	{ "width", T_INT, offsetof(PlaneObject, width), READONLY,
	  PyDoc_STR("Bytes of picture per row (video; the data size for "
		    "audio).") },
	{ "buffer_size", T_PYSSIZET, offsetof(PlaneObject, size), READONLY,
	  PyDoc_STR("Bytes in the plane's buffer.") },
	{ NULL, 0, 0, 0, NULL },
};

static PyGetSetDef Plane_getset[] = {
	GET(Plane, valid, "True while the plane can still be exported."),
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject PlaneType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmdemux.Plane",
	.tp_basicsize = sizeof(PlaneObject),
	.tp_dealloc = (destructor)Plane_dealloc,
	.tp_repr = (reprfunc)Plane_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = PyDoc_STR("One plane of a decoded frame: a buffer "
			    "(memoryview(plane)) with its layout."),
	.tp_as_buffer = &Plane_as_buffer,
	.tp_as_sequence = &Plane_as_sequence,
	.tp_members = Plane_members,
	.tp_getset = Plane_getset,
};

static PyMethodDef Frame_methods[] = {
	{ "to_ndarray", METH_KW(Frame_to_ndarray), METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("to_ndarray(copy=True) -> numpy.ndarray\n\nThe picture or "
		    "samples as numpy arrays, laid out as PyAV's "
		    "to_ndarray() does. copy=False returns views of the ring, "
		    "valid until the next read.") },
	{ "to_av", METH_KW(Frame_to_av), METH_VARARGS | METH_KEYWORDS,
	  PyDoc_STR("to_av() -> av.VideoFrame | av.AudioFrame\n\nA PyAV frame "
		    "holding a copy.") },
	{ NULL, NULL, 0, NULL },
};

#define FLAG(name, bit, doc) \
	{ #name, (getter)Frame_get_flag, NULL, PyDoc_STR(doc), (void *)(uintptr_t)(bit) }

static PyGetSetDef Frame_getset[] = {
	GET(Frame, stream_index, "The track index."),
	GET(Frame, codec_type, "'video' or 'audio'."),
	GET(Frame, pts, "Presentation time (time_base units), None if unset."),
	GET(Frame, best_effort_timestamp, "libavcodec's best effort pts."),
	GET(Frame, pkt_dts, "dts of the packet that produced the frame."),
	GET(Frame, duration, "Duration in time_base units, 0 if unknown."),
	GET(Frame, time, "pts in seconds, None if unset."),
	GET(Frame, time_base, "The track's time base (fractions.Fraction)."),
	GET(Frame, flags, "SHMDEMUX_FRAME_* bits."),
	FLAG(key_frame, SHMDEMUX_FRAME_KEY, "A key frame."),
	FLAG(interlaced_frame, SHMDEMUX_FRAME_INTERLACED, "Interlaced."),
	FLAG(top_field_first, SHMDEMUX_FRAME_TOP_FIELD_FIRST,
	     "Top field first."),
	FLAG(is_corrupt, SHMDEMUX_FRAME_CORRUPT, "The decoder flagged it."),
	GET(Frame, pict_type, "'I', 'P', 'B', ... or 'NONE'."),
	GET(Frame, pict_type_id, "AVPictureType."),
	GET(Frame, format, "Pixel or sample format name ('yuv420p', 'fltp')."),
	GET(Frame, format_id, "AVPixelFormat / AVSampleFormat."),
	GET(Frame, is_planar, "One plane per component / channel."),
	GET(Frame, bytes_per_sample, "Bytes per audio sample (0 for video)."),
	GET(Frame, width, "Width in pixels."),
	GET(Frame, height, "Height in pixels."),
	GET(Frame, sample_aspect_ratio, "Fraction, None if unknown."),
	GET(Frame, color_range, "AVColorRange."),
	GET(Frame, color_primaries, "AVColorPrimaries."),
	GET(Frame, color_trc, "AVColorTransferCharacteristic."),
	GET(Frame, color_space, "AVColorSpace."),
	GET(Frame, chroma_location, "AVChromaLocation."),
	GET(Frame, sample_rate, "Samples per second."),
	GET(Frame, channels, "Channel count."),
	GET(Frame, ch_order, "AVChannelOrder."),
	GET(Frame, channel_mask, "Native-order channel mask."),
	GET(Frame, samples, "Samples per channel."),
	GET(Frame, seq, "Record number in the stream."),
	GET(Frame, planes, "Tuple of Plane buffers."),
	GET(Frame, valid, "True while the planes can still be exported."),
	{ "time_base_num", (getter)Frame_get_tb_num, NULL,
	  PyDoc_STR("Time base numerator."), NULL },
	{ "time_base_den", (getter)Frame_get_tb_den, NULL,
	  PyDoc_STR("Time base denominator."), NULL },
	{ NULL, NULL, NULL, NULL, NULL },
};

static PyTypeObject FrameType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "shmdemux.Frame",
	.tp_basicsize = sizeof(FrameObject),
	.tp_dealloc = (destructor)Frame_dealloc,
	.tp_repr = (reprfunc)Frame_repr,
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = PyDoc_STR("A frame decoded in the sandboxed worker; its "
			    "planes are views of the ring."),
	.tp_methods = Frame_methods,
	.tp_getset = Frame_getset,
};

/* ==== module ==== */

/* Functions of one int argument: the library's, for Python. */
#define MOD_INT_FN(name, expr)                                          \
	static PyObject *mod_##name(PyObject *m, PyObject *arg)         \
	{                                                               \
		long v = PyLong_AsLong(arg);                            \
									\
		(void)m;                                                \
		if (v == -1 && PyErr_Occurred())                        \
			return NULL;                                    \
		return (expr);                                          \
	}
MOD_INT_FN(strerror, PyUnicode_FromString(shmdemux_strerror((int)v)))
MOD_INT_FN(end_reason_name,
	   PyUnicode_FromString(shmdemux_end_reason_name((int)v)))
MOD_INT_FN(end_code, PyLong_FromLong(shmdemux_end_code((int)v)))
MOD_INT_FN(is_end, PyBool_FromLong(shmdemux_is_end((int)v)))

static PyObject *
mod_shutdown(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	__atomic_store_n(&shutting_down, 1, __ATOMIC_RELEASE);
	Py_RETURN_NONE;
}

static PyObject *
mod_library_version(PyObject *m, PyObject *unused)
{
	(void)m;
	(void)unused;
	return Py_BuildValue("(si)", shmdemux_version(), shmdemux_abi_version());
}

static PyMethodDef module_methods[] = {
	{ "strerror", mod_strerror, METH_O,
	  PyDoc_STR("The library's description of a code.") },
	{ "end_reason_name", mod_end_reason_name, METH_O, NULL },
	{ "end_code", mod_end_code, METH_O, NULL },
	{ "is_end", mod_is_end, METH_O, NULL },
	{ "library_version", mod_library_version, METH_NOARGS,
	  PyDoc_STR("(version, ABI) of the libshmdemux loaded.") },
	{ "_shutdown", mod_shutdown, METH_NOARGS,
	  PyDoc_STR("Interrupt every wait (interpreter exit).") },
	{ NULL, NULL, 0, NULL },
};

static struct PyModuleDef moduledef = {
	PyModuleDef_HEAD_INIT,
	.m_name = "shmdemux._shmdemux",
	.m_doc = PyDoc_STR("CPython binding of libshmdemux (use the shmdemux "
			   "package)."),
	.m_size = -1,
	.m_methods = module_methods,
};

static int
add_int(PyObject *m, const char *name, long v)
{
	return PyModule_AddIntConstant(m, name, v);
}

PyMODINIT_FUNC
PyInit__shmdemux(void)
{
	static const char *const media[] = {
		"unknown", "video", "audio", "data", "subtitle", "attachment"
	};
	PyTypeObject *types[] = { &ConnectionType, &ReaderType,
		&RingBufferType, &PacketType, &FrameType, &PlaneType };
	PyObject *m, *errors, *fractions;

	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		if (PyType_Ready(types[i]) < 0)
			return NULL;
	m = PyModule_Create(&moduledef);
	if (m == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(media) / sizeof(media[0]); i++) {
		str_media[i] = PyUnicode_InternFromString(media[i]);
		if (str_media[i] == NULL)
			goto fail;
	}
	str_release = PyUnicode_InternFromString("release");
	empty_bytes = PyBytes_FromStringAndSize("", 0);
	errors = PyImport_ImportModule("shmdemux._errors");
	if (str_release == NULL || empty_bytes == NULL || errors == NULL)
		goto fail;
	error_factory = PyObject_GetAttrString(errors, "error_from_code");
	tracks_changed = PyObject_GetAttrString(errors, "TRACKS_CHANGED");
	end_of_stream = PyObject_GetAttrString(errors, "EndOfStream");
	Py_DECREF(errors);
	fractions = PyImport_ImportModule("fractions");
	if (fractions == NULL)
		goto fail;
	fraction_type = PyObject_GetAttrString(fractions, "Fraction");
	Py_DECREF(fractions);
	if (error_factory == NULL || tracks_changed == NULL ||
	    end_of_stream == NULL || fraction_type == NULL)
		goto fail;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		const char *n = strrchr(types[i]->tp_name, '.') + 1;

		Py_INCREF(types[i]);
		if (PyModule_AddObject(m, n, (PyObject *)types[i]) < 0) {
			Py_DECREF(types[i]);
			goto fail;
		}
	}
	if (add_int(m, "EOF", SHMDEMUX_EOF) || add_int(m, "EOPEN", SHMDEMUX_EOPEN) ||
	    add_int(m, "EDEMUX", SHMDEMUX_EDEMUX) ||
	    add_int(m, "ECRASHED", SHMDEMUX_ECRASHED) ||
	    add_int(m, "ESANDBOX", SHMDEMUX_ESANDBOX) ||
	    add_int(m, "EMEMORY", SHMDEMUX_EMEMORY) ||
	    add_int(m, "EWATCHDOG", SHMDEMUX_EWATCHDOG) ||
	    add_int(m, "EKILLED", SHMDEMUX_EKILLED) ||
	    add_int(m, "ECLOSED", SHMDEMUX_ECLOSED) ||
	    add_int(m, "EEXITED", SHMDEMUX_EEXITED) ||
	    add_int(m, "EINPUT", SHMDEMUX_EINPUT) ||
	    add_int(m, "ERING", SHMDEMUX_ERING) ||
	    add_int(m, "EEXEC", SHMDEMUX_EEXEC) ||
	    add_int(m, "EUNKNOWN", SHMDEMUX_EUNKNOWN) ||
	    add_int(m, "ESPOOL", SHMDEMUX_ESPOOL) ||
	    add_int(m, "EOVERRUN", SHMDEMUX_EOVERRUN) ||
	    add_int(m, "EEVICTED", SHMDEMUX_EEVICTED) ||
	    add_int(m, "ECORRUPT", SHMDEMUX_ECORRUPT) ||
	    add_int(m, "EABI", SHMDEMUX_EABI) ||
	    add_int(m, "EBROKER", SHMDEMUX_EBROKER) ||
	    add_int(m, "EREFUSED", SHMDEMUX_EREFUSED) ||
	    add_int(m, "STATE_STARTING", SHMDEMUX_STATE_STARTING) ||
	    add_int(m, "STATE_OPENING", SHMDEMUX_STATE_OPENING) ||
	    add_int(m, "STATE_RUNNING", SHMDEMUX_STATE_RUNNING) ||
	    add_int(m, "STATE_ENDED", SHMDEMUX_STATE_ENDED) ||
	    add_int(m, "DECODE_VIDEO", SHMDEMUX_DECODE_VIDEO) ||
	    add_int(m, "DECODE_AUDIO", SHMDEMUX_DECODE_AUDIO) ||
	    add_int(m, "PKT_KEY", SHMDEMUX_PKT_KEY) ||
	    add_int(m, "PKT_CORRUPT", SHMDEMUX_PKT_CORRUPT) ||
	    add_int(m, "PKT_DISCARD", SHMDEMUX_PKT_DISCARD) ||
	    add_int(m, "PKT_TRUSTED", SHMDEMUX_PKT_TRUSTED) ||
	    add_int(m, "PKT_DISPOSABLE", SHMDEMUX_PKT_DISPOSABLE) ||
	    add_int(m, "WAIT_SLICE_MS", WAIT_SLICE_MS) ||
#ifdef SHMDEMUX_HAVE_STREAM_FD
	    add_int(m, "HAVE_STREAM_FD", 1) ||
#else
	    add_int(m, "HAVE_STREAM_FD", 0) ||
#endif
	    add_int(m, "ABI_VERSION", SHMDEMUX_ABI_VERSION) ||
	    PyModule_AddStringConstant(m, "VERSION", VERSION_STRING) < 0)
		goto fail;
	return m;
fail:
	Py_DECREF(m);
	return NULL;
}
