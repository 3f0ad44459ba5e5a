/*
 * client_testlib.h - helpers for tests that drive a broker through
 * libshmdemux (on top of broker_testlib: CHECK, private brokers).
 */
#ifndef SHMDEMUX_CLIENT_TESTLIB_H
#define SHMDEMUX_CLIENT_TESTLIB_H

#include <stdint.h>

#include "shmdemux.h"

/* The broker's LIST entry of stream id; CHECKs that it exists. */
struct shmdemux_stream_info tl_info_of(shmdemux_conn *c, uint32_t id);

/* Open path with opts (NULL: defaults); CHECKs success, returns the id. */
uint32_t tl_open_path(shmdemux_conn *c, const char *path,
		      const struct shmdemux_open_opts *opts);

/* Run a shell command line; its status (0 when it exits 0), and the
 * command on stderr when it fails. */
int tl_run(const char *cmd);

/* Tests of a broker with real workers on the generated media take
 * SHMDEMUXD WORKER BIN_DIR MEDIA_DIR FFPROBE_PACKETS CASE. */
struct tl_media_env {
	const char *worker, *bin_dir, *media, *ffprobe_packets;
};
struct tl_case {
	const char *name;
	void (*run)(void);
};
/* Check those arguments into *env (exit status 2 for a wrong count or an
 * unknown case, 77 when the worker, MEDIA_DIR/probe or ffprobe-packets is
 * missing), tl_init() with timeout_s, run the case named CASE (cases ends
 * with a NULL name), check /dev/shm. Returns main's exit status. */
int tl_media_main(int argc, char **argv, const char *probe,
		  unsigned timeout_s, const struct tl_case *cases,
		  struct tl_media_env *env);

#endif
