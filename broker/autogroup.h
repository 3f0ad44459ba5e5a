/*
 * autogroup.h - the nice value of a process's scheduling group (the
 * kernel's autogroup, sched(7)): every worker leads a session of its own
 * (spawn.c), so each is a group of its own, and a group's nice can be
 * raised back to 0 without privilege, unlike a process's own.
 */
#ifndef SHMDEMUXD_AUTOGROUP_H
#define SHMDEMUXD_AUTOGROUP_H

#include <sys/types.h>

/* Set pid's group nice (-20..19): 0 or -errno; -ENOENT if the kernel has
 * no autogroups. */
int autogroup_set(pid_t pid, int nice);

/* pid's group nice into *nice: 0, or -errno; -ENOENT if the kernel has no
 * autogroups, -EPROTO if none is in effect for it (a process in a cgroup
 * with the cpu controller is in no autogroup: the file is empty). */
int autogroup_get(pid_t pid, int *nice);

#endif
