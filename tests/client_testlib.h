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

#endif
