/*
 * md_listen: opening the feed sockets. Done by the main thread before the
 * workers start, so that a port in use or a bad path is a start-up error
 * with a clear message, not a worker that silently never receives.
 *
 * UDP and TCP get one socket per worker bound with SO_REUSEPORT (the kernel
 * spreads datagrams and connections across workers by flow hash). A Unix
 * stream socket cannot be shared that way, so there is one socket and every
 * worker arms a multishot accept on it. A file:// feed is read by worker 0.
 */
#ifndef MD_LISTEN_H
#define MD_LISTEN_H

#include <stdint.h>

#include "md_config.h"

typedef struct md_listener {
    const md_listen_spec *spec;
    int id;                          /* index in cfg->listen; also the feed id */
    int fds[MD_MAX_WORKERS];         /* per worker; -1 where the worker has none */
    uint64_t feed_hash;              /* liveness identity when a tick names no source */
} md_listener;

/* Opens every listener in cfg. 0 on success; -1 with a message in err. */
int md_listen_open(md_listener *ls, const md_config *cfg, char *err, size_t errlen);
void md_listen_close(md_listener *ls, const md_config *cfg);

#endif
