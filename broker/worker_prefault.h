/*
 * worker_prefault.h - a fork server's child takes, while it waits for its
 * stream, the page faults its stream would otherwise take on the way to
 * its first packet.
 *
 * A process made by fork() shares its parent's pages until it writes to
 * them, and maps a library's code only as it first runs it: every first
 * touch of a page is a fault, which on a virtual machine without nested
 * paging costs tens of microseconds. Opening and probing a short H.264 +
 * AAC clip touches ~1,400 pages that a process doing it for the second
 * time already has: the heap (copy on write), the fresh memory the
 * decoders that probing opens are zeroed into, and the code of libavcodec
 * and libavformat. A child made ahead of its stream touches them while it
 * waits: its stream then starts as fast as a second open in one process.
 *
 * No libav here (the broker tests' stand-in worker links it too).
 */
#ifndef SHMDEMUX_WORKER_PREFAULT_H
#define SHMDEMUX_WORKER_PREFAULT_H

/* A child is cloned as its predecessor takes its stream; it starts only
 * this long after (or never, if its own stream comes first). On a VM where
 * faults are costly, one process's faults slow every other's: started at
 * once, the faults slowed the stream that had just started (first packet
 * p50 32 ms against 18 ms with a delay), and with clips opened back to
 * back (a thumbnailer) the broker did 8% fewer of them per second. After
 * 100 ms a burst of opens gets children that did nothing (as many clips
 * per second as without any of this), a stream opened after a pause one
 * that did it all. Measured on 2 vCPUs with 1-5 s 720p H.264 clips. */
#define WORKER_PREFAULT_DELAY_MS 100

/* Fresh memory a waiting child faults in and keeps for its stream:
 * probing a 720p H.264 + AAC clip takes ~5 MiB (1,200 pages), a 1080p
 * frame 3 MiB. */
#define WORKER_PREFAULT_HEAP (16u << 20)

/* In the fork server, before anything is allocated: the heap serves the
 * decoders' large buffers (not a mmap per buffer, faulted afresh each
 * time) and free() keeps what a child faulted in. */
void worker_prefault_setup(void);

/* In a child waiting for its stream on sock: touch the heap, the fresh
 * heap it will use and the code and read-only data of the libraries
 * named in worker_prefault.c. Returns as soon as sock is readable (or at
 * its end), whatever is left: a stream never waits for this. The number
 * of pages touched. */
unsigned long worker_prefault(int sock);

/* Once the stream is probed: give back what of that heap it did not use. */
void worker_prefault_release(void);

#endif
