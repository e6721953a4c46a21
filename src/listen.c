/* md_listen: see include/md_listen.h. */
#include "md_listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "md_state.h"

/* Large enough that a burst of a few milliseconds at a million ticks per
 * second sits in the kernel while a worker is busy, rather than being
 * dropped. SO_RCVBUFFORCE works past rmem_max when we are privileged. */
#define MD_UDP_RCVBUF (16 << 20)

static int resolve(const md_listen_spec *s, int socktype, struct sockaddr_storage *ss,
                   socklen_t *len, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_socktype = socktype, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", s->port);
    int rc = getaddrinfo(s->host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "%s: cannot resolve '%s': %s", s->spec, s->host, gai_strerror(rc));
        return -1;
    }
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    *len = ai->ai_addrlen;
    freeaddrinfo(ai);
    return 0;
}

static int open_inet(const md_listen_spec *s, int socktype, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    if (resolve(s, socktype, &ss, &len, err, errlen) < 0) return -1;
    int fd = socket(ss.ss_family, socktype | SOCK_CLOEXEC, 0);
    if (fd < 0) goto fail;
    int one = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) goto fail;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0) goto fail;
    if (socktype == SOCK_DGRAM) {
        int sz = MD_UDP_RCVBUF;
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
            (void)setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
        /* Makes the kernel report its cumulative drop count with each datagram. */
        if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof one) < 0) goto fail;
    }
    if (bind(fd, (struct sockaddr *)&ss, len) < 0) goto fail;
    if (socktype == SOCK_STREAM && listen(fd, 1024) < 0) goto fail;
    return fd;
fail:
    snprintf(err, errlen, "%s: %s", s->spec, strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
}

static int open_unix(const md_listen_spec *s, char *err, size_t errlen)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(s->path) >= sizeof sun.sun_path) {
        snprintf(err, errlen, "%s: socket path too long", s->spec);
        return -1;
    }
    strcpy(sun.sun_path, s->path);
    /* A stale socket file from a previous run would make bind fail; remove
     * it only if it is a socket, never a regular file someone mistyped. */
    struct stat stt;
    if (lstat(s->path, &stt) == 0 && S_ISSOCK(stt.st_mode)) unlink(s->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "%s: %s", s->spec, strerror(errno));
        if (fd >= 0) close(fd);
        return -1;
    }
    return fd;
}

int md_listen_open(md_listener *ls, const md_config *cfg, char *err, size_t errlen)
{
    int nw = cfg->ncpus;
    for (int i = 0; i < cfg->nlisten; i++) {
        md_listener *l = &ls[i];
        l->spec = &cfg->listen[i];
        l->id = i;
        char name[600];
        int n = snprintf(name, sizeof name, "feed:%s", l->spec->spec);
        l->feed_hash = md_sym_hash(name, (size_t)n < sizeof name ? (size_t)n : sizeof name - 1);
        for (int w = 0; w < MD_MAX_WORKERS; w++) l->fds[w] = -1;
    }
    for (int i = 0; i < cfg->nlisten; i++) {
        md_listener *l = &ls[i];
        switch (l->spec->kind) {
        case MD_LISTEN_UDP:
        case MD_LISTEN_TCP:
            for (int w = 0; w < nw; w++) {
                l->fds[w] = open_inet(l->spec,
                                      l->spec->kind == MD_LISTEN_UDP ? SOCK_DGRAM : SOCK_STREAM,
                                      err, errlen);
                if (l->fds[w] < 0) goto fail;
            }
            break;
        case MD_LISTEN_UNIX: {
            int fd = open_unix(l->spec, err, errlen);
            if (fd < 0) goto fail;
            for (int w = 0; w < nw; w++) l->fds[w] = fd;
            break;
        }
        case MD_LISTEN_FILE:
            l->fds[0] = open(l->spec->path, O_RDONLY | O_CLOEXEC);
            if (l->fds[0] < 0) {
                snprintf(err, errlen, "%s: cannot open '%s': %s", l->spec->spec, l->spec->path,
                         strerror(errno));
                goto fail;
            }
            break;
        }
    }
    return 0;
fail:
    md_listen_close(ls, cfg);
    return -1;
}

void md_listen_close(md_listener *ls, const md_config *cfg)
{
    for (int i = 0; i < cfg->nlisten; i++) {
        md_listener *l = &ls[i];
        if (!l->spec) continue;
        int shared = l->spec->kind == MD_LISTEN_UNIX;
        for (int w = 0; w < MD_MAX_WORKERS; w++) {
            if (l->fds[w] < 0) continue;
            if (!shared || w == 0) close(l->fds[w]);
            l->fds[w] = -1;
        }
        if (shared) unlink(l->spec->path);
    }
}
