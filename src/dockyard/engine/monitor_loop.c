/* dockyard-monitor: the slim half of a container's monitor, in C.
 *
 * The same loop as engine/monitor_loop.py (Loop.run_until_exit), for the long idle life of a container: the heavy
 * Python monitor creates the container, then execs this program (same pid, same fds, still a child subreaper) with
 * its state as key=value items (NUL-separated) in a memfd whose number is its one argument besides the container's
 * id, "cid=ID state=FD" (state in argv would be readable by every user in /proc/PID/cmdline, and a client's
 * unread stdin is part of it):
 *
 *   python=EXE src=DIR root=DIR cid=ID pid=N pidfd=FD log_fd=FD log_size=N log_path=PATH
 *   out=FD:STREAM (repeated)  stdin=FD  tty=FD  listener=FD  partial1=HEX  partial2=HEX
 *   client=FD:HELLO:STDIN:STDOUT:STDERR:BUFHEX (repeated; 0/1 flags, hex may be empty)
 *   pending=FD:HEX (repeated, after its client=: the client's unread bytes of a frame, in pieces)
 *   health=INTERVAL_MS:LIMIT_MS (optional: every INTERVAL, fork the health probe process, engine/health.py,
 *                                unless one still runs; one older than LIMIT is killed)
 *
 * It copies the container's output to the json-file log and to attached clients, client stdin frames to the
 * container, resize frames to the pty, and accepts new attach clients (engine/attach.py has the protocol). When
 * the container's init exits (its pidfd becomes readable) it reaps it, drains its output (up to 0.5 s of
 * silence), flushes partial lines, and execs back into Python for the finish phase:
 *
 *   EXE -I -S -c BOOT SRC FD       (BOOT calls engine.monitor.finish_main(FD); FD is a memfd holding
 *                                   Loop.to_state()'s JSON without output fds or pidfd, plus "status")
 *
 * The listener, clients and log fd stay open across that exec. Only fixed, small buffers; libc only.
 *
 * Unless `rm -f` is removing the container (see removal()): then there is nothing to record and the monitor
 * only hands the status to its clients and to the remover, then leaves.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX (20L * 1024 * 1024)
#define PARTIAL_MAX (16 * 1024) /* Docker's json-file writes a partial line once it reaches 16 KiB */
#define READ_MAX 65536
#define MAX_CLIENTS 128
#define HELLO_MAX 256
#define PATH_LEN 4096

enum { F_STDIN = 0, F_STDOUT = 1, F_STDERR = 2, F_EXIT = 3, F_RESIZE = 4, F_START = 5 };
enum { K_OUT = 1, K_EXIT, K_LISTEN, K_CLIENT, K_TICK, K_PROBE };

struct client {
    int used, fd;
    int hello, o_in, o_out, o_err;   /* hello line seen; its stdin/stdout/stderr options */
    char hbuf[HELLO_MAX];            /* the hello line so far (longer lines are cut) */
    int hlen;
    unsigned char hdr[8];            /* frame header so far */
    int hdrlen;
    uint32_t total, remaining;       /* payload length of the current frame, and what is still to come */
    char pay[32];                    /* a resize payload ("rows cols") */
    int plen;
};

static const char *python, *src, *root = "", *cid = "";
static char log_path[PATH_LEN];
static int pid = -1, pidfd = -1, stdin_fd = -1, tty_fd = -1, listener = -1, log_fd = -1, ep = -1;
static long log_size;
static struct { int fd, stream; } outs[2];
static int nout;
static unsigned char partial[3][PARTIAL_MAX];
static size_t plen[3];
static struct client clients[MAX_CLIENTS];
static unsigned char rbuf[READ_MAX];
static long h_interval, h_limit;            /* health: ms; 0 = no healthcheck */
static int tick_fd = -1, probe_pid = -1, probe_fd = -1;
static struct timespec probe_t0;

/* ---- errors: left where engine/monitor.py leaves its tracebacks ---------------------------------------------- */
static void note(const char *what) {
    char path[PATH_LEN];
    int e = errno;
    snprintf(path, sizeof path, "%s/containers/%s/monitor.err", root, cid);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    dprintf(fd, "dockyard-monitor: %s: %s\n", what, strerror(e));
    close(fd);
}

static int write_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) { /* a non-blocking pty master that is full: wait a little */
                struct pollfd pf = {fd, POLLOUT, 0};
                if (poll(&pf, 1, 1000) > 0)
                    continue;
            }
            return -1;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- the json-file log ----------------------------------------------------------------------------------------- */
static char wbuf[65536];
static size_t wlen, counted;
static int dry; /* counting the size of a blob before writing it (rotation decides on the whole blob) */

static void wflush(void) {
    if (wlen && log_fd >= 0)
        write_all(log_fd, wbuf, wlen);
    wlen = 0;
}

static void put(const void *p, size_t n) {
    if (dry) {
        counted += n;
        return;
    }
    if (wlen + n > sizeof wbuf)
        wflush();
    memcpy(wbuf + wlen, p, n);
    wlen += n;
}

/* a record's bytes may start in the partial buffer (a) and go on in the new data (b) */
struct span {
    const unsigned char *a, *b;
    size_t na, nb;
};

static inline unsigned at(const struct span *s, size_t i) { return i < s->na ? s->a[i] : s->b[i - s->na]; }

static void put_escaped(const struct span *s) {
    static const char hex[] = "0123456789abcdef";
    size_t n = s->na + s->nb, i = 0;
    while (i < n) {
        unsigned c = at(s, i);
        if (c < 0x80) {
            char e[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            switch (c) {
            case '"': put("\\\"", 2); break;
            case '\\': put("\\\\", 2); break;
            case '\n': put("\\n", 2); break;
            case '\r': put("\\r", 2); break;
            case '\t': put("\\t", 2); break;
            case '\b': put("\\b", 2); break;
            case '\f': put("\\f", 2); break;
            default:
                if (c < 0x20)
                    put(e, 6);
                else {
                    char ch = (char)c;
                    put(&ch, 1);
                }
            }
            i++;
            continue;
        }
        /* UTF-8 passes through; an invalid sequence (its maximal valid prefix) becomes U+FFFD, as Python's
           decode("utf-8", "replace") does, so that every record is valid JSON */
        size_t need;
        unsigned lo = 0x80, hi = 0xBF;
        if (c >= 0xC2 && c <= 0xDF)
            need = 1;
        else if (c >= 0xE0 && c <= 0xEF) {
            need = 2;
            if (c == 0xE0) lo = 0xA0;
            if (c == 0xED) hi = 0x9F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            need = 3;
            if (c == 0xF0) lo = 0x90;
            if (c == 0xF4) hi = 0x8F;
        } else {
            put("\xef\xbf\xbd", 3);
            i++;
            continue;
        }
        size_t j = 1;
        while (j <= need && i + j < n) {
            unsigned d = at(s, i + j);
            if (d < lo || d > hi)
                break;
            lo = 0x80;
            hi = 0xBF;
            j++;
        }
        if (j == need + 1) {
            for (size_t k = 0; k < j; k++) {
                char ch = (char)at(s, i + k);
                put(&ch, 1);
            }
        } else
            put("\xef\xbf\xbd", 3);
        i += j;
    }
}

/* the records of buf[0:end) where buf = partial[kind] + data: one per line, all with the same time */
static void put_records(int kind, const unsigned char *data, size_t end, const char *ts) {
    const unsigned char *p = partial[kind];
    size_t np = plen[kind], start = 0;
    const char *head = "{\"log\": \"";
    char tail[128];
    int nt = snprintf(tail, sizeof tail, "\", \"stream\": \"%s\", \"time\": \"%s\"}\n",
                      kind == F_STDOUT ? "stdout" : "stderr", ts);
    while (start < end) {
        size_t stop = start; /* index of the next newline, or end */
        while (stop < end && (stop < np ? p[stop] : data[stop - np]) != '\n')
            stop++;
        size_t upto = stop < end ? stop + 1 : end; /* the newline belongs to the record */
        struct span s;
        if (start < np) {
            s.a = p + start;
            s.na = (upto < np ? upto : np) - start;
            s.b = data;
            s.nb = upto > np ? upto - np : 0;
        } else {
            s.a = data + (start - np);
            s.na = upto - start;
            s.b = NULL;
            s.nb = 0;
        }
        put(head, strlen(head));
        put_escaped(&s);
        put(tail, (size_t)nt);
        start = upto;
    }
}

static void rotate(void) {
    char old[PATH_LEN + 2], dropped[PATH_LEN + 8];
    snprintf(old, sizeof old, "%s.1", log_path);
    if (access(old, F_OK) == 0) { /* the rotated file is replaced: its output is gone; `logs` says so */
        snprintf(dropped, sizeof dropped, "%s.dropped", log_path);
        int fd = open(dropped, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
    }
    if (rename(log_path, old) < 0)
        note("rotating the log");
    if (log_fd >= 0)
        close(log_fd);
    log_fd = open(log_path, O_WRONLY | O_APPEND | O_CREAT, 0600); /* inherited by the finish phase */
    if (log_fd < 0)
        note("opening the log");
    log_size = 0;
}

/* Append complete lines as json-file records; a partial line waits (up to 16 KiB) unless flushing. */
static void log_data(int kind, const unsigned char *data, size_t n, int flush) {
    size_t np = plen[kind], total = np + n, end = 0;
    for (size_t i = n; i > 0; i--)
        if (data[i - 1] == '\n') {
            end = np + i;
            break;
        }
    if (flush || total - end >= PARTIAL_MAX)
        end = total;
    if (!end) {
        memcpy(partial[kind] + np, data, n); /* total < PARTIAL_MAX here */
        plen[kind] = total;
        return;
    }
    struct timespec now;
    struct tm tm;
    char ts[64];
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t k = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + k, sizeof ts - k, ".%09ldZ", now.tv_nsec);
    dry = 1;
    counted = 0;
    put_records(kind, data, end, ts);
    dry = 0;
    if (log_size + (long)counted > LOG_MAX) /* keep one rotated file, as json-file with max-file=2 */
        rotate();
    put_records(kind, data, end, ts);
    wflush();
    log_size += (long)counted;
    /* what is left after end lies in data (end >= np whenever end > 0) */
    size_t left = total - end;
    memmove(partial[kind], data + (end - np), left);
    plen[kind] = left;
}

/* ---- clients ----------------------------------------------------------------------------------------------------- */
static void drop(struct client *c) {
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->used = 0;
}

static int send_all(int fd, const unsigned char *hdr, const void *p, size_t n) {
    struct iovec iov[2] = {{(void *)hdr, 8}, {(void *)p, n}};
    struct msghdr m = {0};
    m.msg_iov = iov;
    m.msg_iovlen = 2;
    size_t left = 8 + n;
    while (left) {
        ssize_t w = sendmsg(fd, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        left -= (size_t)w;
        while (m.msg_iovlen && (size_t)w >= m.msg_iov[0].iov_len) {
            w -= (ssize_t)m.msg_iov[0].iov_len;
            m.msg_iov++;
            m.msg_iovlen--;
        }
        if (m.msg_iovlen) {
            m.msg_iov[0].iov_base = (char *)m.msg_iov[0].iov_base + w;
            m.msg_iov[0].iov_len -= (size_t)w;
        }
    }
    return 0;
}

static void send_frames(int kind, const void *p, size_t n) {
    unsigned char hdr[8] = {(unsigned char)kind, 0, 0, 0, (unsigned char)(n >> 24), (unsigned char)(n >> 16),
                            (unsigned char)(n >> 8), (unsigned char)n};
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (!c->used)
            continue;
        if ((kind == F_STDOUT && !c->o_out) || (kind == F_STDERR && !c->o_err))
            continue;
        if (send_all(c->fd, hdr, p, n) < 0)
            drop(c);
    }
}

static int opt(const char *line, const char *key, int dflt) {
    const char *p = strstr(line, key);
    if (!p)
        return dflt;
    p += strlen(key);
    while (*p == ' ' || *p == ':' || *p == '\t')
        p++;
    if (!strncmp(p, "false", 5) || !strncmp(p, "0", 1) || !strncmp(p, "null", 4))
        return 0;
    if (!strncmp(p, "true", 4) || (*p >= '1' && *p <= '9'))
        return 1;
    return dflt;
}

static void close_stdin(void) {
    if (stdin_fd >= 0 && stdin_fd != tty_fd)
        close(stdin_fd);
    if (stdin_fd != tty_fd)
        stdin_fd = -1;
}

static void frame_done(struct client *c) {
    if (c->hdr[0] == F_STDIN && c->total == 0)
        close_stdin();
    else if (c->hdr[0] == F_RESIZE && tty_fd >= 0 && c->plen < (int)sizeof c->pay) {
        unsigned rows, cols;
        c->pay[c->plen] = 0;
        if (sscanf(c->pay, "%u %u", &rows, &cols) == 2) {
            struct winsize ws = {(unsigned short)rows, (unsigned short)cols, 0, 0};
            ioctl(tty_fd, TIOCSWINSZ, &ws);
        }
    }
    c->hdrlen = 0;
    c->plen = 0;
}

static void feed(struct client *c, const unsigned char *d, size_t n) {
    while (n) {
        if (c->hdrlen < 8) {
            size_t k = 8 - (size_t)c->hdrlen < n ? 8 - (size_t)c->hdrlen : n;
            memcpy(c->hdr + c->hdrlen, d, k);
            c->hdrlen += (int)k;
            d += k;
            n -= k;
            if (c->hdrlen == 8) {
                c->total = c->remaining = (uint32_t)c->hdr[4] << 24 | (uint32_t)c->hdr[5] << 16 |
                                          (uint32_t)c->hdr[6] << 8 | c->hdr[7];
                c->plen = 0;
                if (!c->total)
                    frame_done(c);
            }
            continue;
        }
        size_t k = c->remaining < n ? c->remaining : n;
        if (c->hdr[0] == F_STDIN && stdin_fd >= 0)
            write_all(stdin_fd, d, k); /* errors (the container closed its stdin) are ignored */
        else if (c->hdr[0] == F_RESIZE) {
            if ((size_t)c->plen + k < sizeof c->pay)
                memcpy(c->pay + c->plen, d, k);
            c->plen = (size_t)c->plen + k < sizeof c->pay ? c->plen + (int)k : (int)sizeof c->pay; /* too long:
                                                                                  ignored in frame_done */
        }
        c->remaining -= (uint32_t)k;
        d += k;
        n -= k;
        if (!c->remaining)
            frame_done(c);
    }
}

static void hello_line(struct client *c) {
    c->hbuf[c->hlen] = 0;
    c->o_in = opt(c->hbuf, "\"stdin\"", 0);
    c->o_out = opt(c->hbuf, "\"stdout\"", 1);
    c->o_err = opt(c->hbuf, "\"stderr\"", 1);
    c->hello = 1;
    c->hlen = 0;
}

/* bytes from a client: its hello line first, then frames */
static void client_bytes(struct client *c, const unsigned char *d, size_t n) {
    if (!c->hello) {
        const unsigned char *nl = memchr(d, '\n', n);
        size_t k = nl ? (size_t)(nl - d) : n;
        size_t room = HELLO_MAX - 1 - (size_t)c->hlen;
        memcpy(c->hbuf + c->hlen, d, k < room ? k : room);
        c->hlen += (int)(k < room ? k : room);
        if (!nl)
            return;
        hello_line(c);
        d = nl + 1;
        n -= k + 1;
    }
    feed(c, d, n);
}

static struct client *add_client(int fd) {
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (!clients[i].used) {
            struct client *c = &clients[i];
            memset(c, 0, sizeof *c);
            c->used = 1;
            c->fd = fd;
            c->o_out = c->o_err = 1;
            struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)K_CLIENT << 48 | (uint64_t)i << 32 |
                                                                    (uint32_t)fd};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
                c->used = 0;
                return NULL;
            }
            return c;
        }
    return NULL;
}

static void accept_client(void) {
    int fd = accept4(listener, NULL, NULL, 0); /* blocking, as the Python loop's; inherited by the finish phase */
    if (fd < 0)
        return;
    struct ucred cr;
    socklen_t len = sizeof cr;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0 || cr.uid != geteuid()) {
        close(fd); /* only clients of our own user (engine/attach.py: peer_allowed) */
        return;
    }
    if (!add_client(fd))
        close(fd);
}

static void client_input(struct client *c) {
    ssize_t n = recv(c->fd, rbuf, sizeof rbuf, MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        drop(c);
        return;
    }
    client_bytes(c, rbuf, (size_t)n);
}

/* ---- output ------------------------------------------------------------------------------------------------------ */
static void close_out(int i) {
    int fd = outs[i].fd, kind = outs[i].stream;
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    outs[i] = outs[--nout];
    if (plen[kind])
        log_data(kind, (const unsigned char *)"", 0, 1);
    if (fd != tty_fd)
        close(fd);
}

static void out_ready(int fd) {
    int i;
    for (i = 0; i < nout && outs[i].fd != fd; i++)
        ;
    if (i == nout)
        return;
    ssize_t n = read(fd, rbuf, sizeof rbuf);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) { /* EOF, or EIO: the pty's other side is closed */
        close_out(i);
        return;
    }
    int stream = outs[i].stream;
    log_data(stream, rbuf, (size_t)n, 0);
    send_frames(stream, rbuf, (size_t)n);
}

/* ---- the hand-back to Python ------------------------------------------------------------------------------------- */
static char sbuf[65536];
static size_t slen;

static void sput(const char *s) {
    size_t n = strlen(s);
    if (slen + n < sizeof sbuf) {
        memcpy(sbuf + slen, s, n);
        slen += n;
    }
    sbuf[slen] = 0;
}

static void sputf(const char *fmt, long v) { /* short formats only */
    char b[128];
    snprintf(b, sizeof b, fmt, v);
    sput(b);
}

static void sput_str(const char *s) {
    char b[8];
    sput("\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\' || c < 0x20) {
            snprintf(b, sizeof b, "\\u%04x", c);
            sput(b);
        } else {
            b[0] = (char)c;
            b[1] = 0;
            sput(b);
        }
    }
    sput("\"");
}

static void sput_hex(const unsigned char *p, size_t n) {
    static const char hex[] = "0123456789abcdef";
    char b[3] = {0};
    sput("\"");
    for (size_t i = 0; i < n; i++) {
        b[0] = hex[p[i] >> 4];
        b[1] = hex[p[i] & 15];
        sput(b);
    }
    sput("\"");
}

static void inherit(int fd) {
    int fl = fcntl(fd, F_GETFD);
    if (fl >= 0)
        fcntl(fd, F_SETFD, fl & ~FD_CLOEXEC);
}

static void hand_back(int status) {
    static const char boot[] = "import sys; sys.path.insert(0, sys.argv[1]); "
                               "from dockyard.engine.monitor import finish_main; finish_main(sys.argv[2])";
    char fdarg[16];
    sput("{\"root\": ");
    sput_str(root);
    sput(", \"cid\": ");
    sput_str(cid);
    sputf(", \"pid\": %ld", pid);
    sput(", \"pidfd\": null, \"out\": {}, \"stdin\": null, \"tty\": null, \"listener\": ");
    if (listener >= 0) {
        inherit(listener);
        sputf("%ld", listener);
    } else
        sput("null");
    sput(", \"clients\": [");
    int first = 1;
    for (int i = 0; i < MAX_CLIENTS; i++) {
        struct client *c = &clients[i];
        if (!c->used)
            continue;
        inherit(c->fd);
        sputf(first ? "{\"fd\": %ld" : ", {\"fd\": %ld", c->fd);
        first = 0;
        if (c->hello) {
            sput(", \"hello\": true, \"opts\": {");
            sput(c->o_in ? "\"stdin\": true" : "\"stdin\": false");
            sput(c->o_out ? ", \"stdout\": true" : ", \"stdout\": false");
            sput(c->o_err ? ", \"stderr\": true}" : ", \"stderr\": false}");
        } else
            sput(", \"hello\": false, \"opts\": {}");
        sput(", \"buf\": ");
        sput_hex((const unsigned char *)c->hbuf, (size_t)c->hlen);
        /* the unread rest of a frame, re-expressed so that Python's FrameReader skips or completes it */
        unsigned char pend[8 + sizeof c->pay];
        size_t np = 0;
        if (c->hdrlen < 8) {
            memcpy(pend, c->hdr, (size_t)c->hdrlen);
            np = (size_t)c->hdrlen;
        } else if (c->hdr[0] == F_RESIZE && (size_t)c->plen < sizeof c->pay) {
            memcpy(pend, c->hdr, 8);
            memcpy(pend + 8, c->pay, (size_t)c->plen);
            np = 8 + (size_t)c->plen;
        } else {
            uint32_t r = c->remaining;
            unsigned char h[8] = {c->hdr[0], 0, 0, 0, (unsigned char)(r >> 24), (unsigned char)(r >> 16),
                                  (unsigned char)(r >> 8), (unsigned char)r};
            memcpy(pend, h, 8);
            np = 8;
        }
        sput(", \"pending\": ");
        sput_hex(pend, np);
        sput("}");
    }
    sputf("], \"log_fd\": %ld, \"log_path\": ", log_fd);
    sput_str(log_path);
    sputf(", \"log_size\": %ld", log_size);
    sput(", \"partial\": {\"1\": \"\", \"2\": \"\"}");
    sputf(", \"status\": %ld}", status);
    if (log_fd >= 0)
        inherit(log_fd);
    int mfd = memfd_create("dockyard-monitor-state", 0); /* inherited by the finish phase, which reads it */
    if (mfd < 0 || write_all(mfd, sbuf, slen) < 0 || lseek(mfd, 0, SEEK_SET) < 0) {
        note("memfd for the finish phase");
        _exit(1);
    }
    snprintf(fdarg, sizeof fdarg, "%d", mfd);
    char *argv[] = {(char *)python, "-I", "-S", "-c", (char *)boot, (char *)src, fdarg, NULL};
    execv(python, argv);
    note("exec python");
    _exit(1);
}

/* ---- health probes: a short-lived Python process per tick (engine/health.py probe_main) ---------------------- */
static long ms_since(const struct timespec *t0) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

static void probe_reap(void) {
    if (probe_pid < 0)
        return;
    epoll_ctl(ep, EPOLL_CTL_DEL, probe_fd, NULL);
    close(probe_fd);
    while (waitpid(probe_pid, NULL, 0) < 0 && errno == EINTR)
        ;
    probe_pid = probe_fd = -1;
}

static void probe_tick(void) {
    static const char boot[] = "import sys; sys.path.insert(0, sys.argv[1]); "
                               "from dockyard.engine.health import probe_main; probe_main(sys.argv[2], sys.argv[3])";
    uint64_t n;
    if (read(tick_fd, &n, sizeof n) < 0 && errno != EAGAIN)
        note("timerfd");
    if (probe_pid > 0) {
        if (ms_since(&probe_t0) > h_limit)
            kill(probe_pid, SIGKILL); /* reaped when its pidfd fires */
        return;
    }
    pid_t p = fork();
    if (p < 0) {
        note("fork health probe");
        return;
    }
    if (p == 0) { /* none of the monitor's fds (listener, clients, log, pipes) reach the probe */
        signal(SIGPIPE, SIG_DFL);
        for (int fd = 3; fd < 65536; fd++)
            close(fd);
        char *argv[] = {(char *)python, "-I", "-S", "-c", (char *)boot, (char *)src, (char *)root, (char *)cid, NULL};
        execv(python, argv);
        _exit(127);
    }
    int fd = (int)syscall(SYS_pidfd_open, p, 0);
    if (fd < 0) {
        note("pidfd_open health probe");
        kill(p, SIGKILL);
        waitpid(p, NULL, 0);
        return;
    }
    fcntl(fd, F_SETFD, FD_CLOEXEC);
    probe_pid = p;
    probe_fd = fd;
    clock_gettime(CLOCK_MONOTONIC, &probe_t0);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)K_PROBE << 48 | (uint32_t)fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        note("epoll_ctl probe");
}

static void health_start(void) {
    if (h_interval <= 0)
        return;
    tick_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    if (tick_fd < 0) {
        note("timerfd_create");
        return;
    }
    struct itimerspec its = {{h_interval / 1000, (h_interval % 1000) * 1000000},
                             {h_interval / 1000, (h_interval % 1000) * 1000000}};
    if (timerfd_settime(tick_fd, 0, &its, NULL) < 0)
        note("timerfd_settime");
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)K_TICK << 48 | (uint32_t)tick_fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, tick_fd, &ev) < 0)
        note("epoll_ctl timer");
}

/* ---- arguments ----------------------------------------------------------------------------------------------------- */
static int unhex(const char *s, unsigned char *out, size_t max) {
    size_t n = 0;
    for (; s[0] && s[1] && n < max; s += 2) {
        unsigned v;
        if (sscanf(s, "%2x", &v) != 1)
            break;
        out[n++] = (unsigned char)v;
    }
    return (int)n;
}

static void parse(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        char a[16], *v = strchr(argv[i], '=');
        if (!v || v - argv[i] >= (long)sizeof a)
            continue;
        memcpy(a, argv[i], (size_t)(v - argv[i]));
        a[v++ - argv[i]] = 0;
        if (!strcmp(a, "python")) python = v;
        else if (!strcmp(a, "src")) src = v;
        else if (!strcmp(a, "root")) root = v;
        else if (!strcmp(a, "cid")) cid = v;
        else if (!strcmp(a, "pid")) pid = atoi(v);
        else if (!strcmp(a, "pidfd")) pidfd = atoi(v);
        else if (!strcmp(a, "log_fd")) log_fd = atoi(v);
        else if (!strcmp(a, "log_size")) log_size = atol(v);
        else if (!strcmp(a, "log_path")) snprintf(log_path, sizeof log_path, "%s", v);
        else if (!strcmp(a, "stdin")) stdin_fd = atoi(v);
        else if (!strcmp(a, "tty")) tty_fd = atoi(v);
        else if (!strcmp(a, "listener")) listener = atoi(v);
        else if (!strcmp(a, "health")) {
            h_interval = atol(v);
            char *l = strchr(v, ':');
            h_limit = l ? atol(l + 1) : 0;
        }
        else if (!strcmp(a, "partial1") || !strcmp(a, "partial2")) {
            int k = a[7] - '0';
            plen[k] = (size_t)unhex(v, partial[k], PARTIAL_MAX - 1);
        } else if (!strcmp(a, "out") && nout < 2) {
            outs[nout].fd = atoi(v);
            char *s = strchr(v, ':');
            outs[nout].stream = s && atoi(s + 1) == F_STDERR ? F_STDERR : F_STDOUT;
            nout++;
        }
    }
}

static void feed_hex(struct client *c, const char *h) {
    while (*h) {
        unsigned char b[512];
        int n = unhex(h, b, sizeof b);
        if (!n)
            break;
        h += 2 * n;
        client_bytes(c, b, (size_t)n);
    }
}

/* clients need the epoll set: parsed in a second pass */
static void parse_clients(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        if (!strncmp(argv[i], "pending=", 8)) {
            int fd = atoi(argv[i] + 8);
            char *h = strchr(argv[i] + 8, ':');
            for (int k = 0; h && k < MAX_CLIENTS; k++)
                if (clients[k].used && clients[k].fd == fd)
                    feed_hex(&clients[k], h + 1);
            continue;
        }
        if (strncmp(argv[i], "client=", 7))
            continue;
        char *f[6] = {0}, *p = argv[i] + 7;
        for (int k = 0; k < 6; k++) {
            f[k] = p;
            p = strchr(p, ':');
            if (!p) {
                for (int m = k + 1; m < 6; m++)
                    f[m] = "";
                break;
            }
            *p++ = 0;
        }
        struct client *c = add_client(atoi(f[0]));
        if (!c) {
            close(atoi(f[0]));
            continue;
        }
        if (atoi(f[1])) {
            c->hello = 1;
            c->o_in = atoi(f[2]);
            c->o_out = atoi(f[3]);
            c->o_err = atoi(f[4]);
        } else
            feed_hex(c, f[5]);
    }
}

static void watch(int fd, int kind) {
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)kind << 48 | (uint32_t)fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
        note("epoll_ctl");
}

/* argv, followed by the items of the state memfd ("state=FD"), as one argument vector */
static char **load_args(int argc, char **argv, int *n) {
    int sfd = -1;
    for (int i = 1; i < argc; i++)
        if (!strncmp(argv[i], "state=", 6))
            sfd = atoi(argv[i] + 6);
    size_t cap = 65536, len = 0, items = 0;
    char *buf = malloc(cap + 1);
    while (buf && sfd >= 0) {
        ssize_t r = read(sfd, buf + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == cap)
            buf = realloc(buf, (cap *= 2) + 1);
    }
    if (sfd >= 0)
        close(sfd);
    if (!buf)
        return NULL;
    buf[len] = 0;
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        items++;
    char **v = calloc((size_t)argc + items + 1, sizeof *v);
    if (!v)
        return NULL;
    int k = 0;
    for (int i = 0; i < argc; i++)
        v[k++] = argv[i];
    for (size_t i = 0; i < len; i += strlen(buf + i) + 1)
        v[k++] = buf + i;
    *n = k;
    return v;
}

/* rm -f made <root>/containers/<cid>/removing before it killed the container: the container is leaving the store,
 * so there is nothing to record and no finish phase to run (a Python start per container, the cost of removing many
 * at once). The exit status goes into that file (for the remover's "die" event) and to attached clients, and the
 * monitor leaves; the remover unmounts and deletes the rest. 1: handled. */
static int removal(int status) {
    char path[4096], b[24];
    if (snprintf(path, sizeof path, "%s/containers/%s/removing", root, cid) >= (int)sizeof path)
        return 0;
    int fd = open(path, O_WRONLY | O_TRUNC | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int n = snprintf(b, sizeof b, "%d\n", status);
    if (write_all(fd, b, (size_t)n) < 0)
        note("writing the removal status");
    close(fd);
    wflush();
    n = snprintf(b, sizeof b, "%d", status);
    send_frames(F_EXIT, b, (size_t)n);
    for (int i = 0; i < MAX_CLIENTS; i++)
        if (clients[i].used)
            drop(&clients[i]);
    if (listener >= 0)
        close(listener);
    if (log_fd >= 0)
        close(log_fd);
    return 1;
}

int main(int argc, char **argv) {
    signal(SIGPIPE, SIG_IGN);
    argv = load_args(argc, argv, &argc);
    if (!argv) {
        note("reading the state");
        return 1;
    }
    parse(argc, argv);
    if (!python || !src || pid <= 0 || pidfd < 0) {
        errno = EINVAL;
        note("bad arguments");
        return 1;
    }
    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        note("epoll_create1");
        return 1;
    }
    parse_clients(argc, argv);
    for (int i = 0; i < nout; i++)
        watch(outs[i].fd, K_OUT);
    watch(pidfd, K_EXIT);
    if (listener >= 0)
        watch(listener, K_LISTEN);
    /* the fds we keep must not leak into the finish phase except those it takes over (set again there) */
    for (int i = 0; i < nout; i++)
        fcntl(outs[i].fd, F_SETFD, FD_CLOEXEC);
    fcntl(pidfd, F_SETFD, FD_CLOEXEC);
    if (stdin_fd >= 0)
        fcntl(stdin_fd, F_SETFD, FD_CLOEXEC);
    health_start();

    int status = -1;
    struct epoll_event evs[32];
    while (status < 0 || nout) {
        int n = epoll_wait(ep, evs, 32, status < 0 ? -1 : 500); /* a grandchild may hold the pipe: bounded */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            note("epoll_wait");
            break;
        }
        if (!n && status >= 0)
            break;
        for (int e = 0; e < n; e++) {
            uint64_t d = evs[e].data.u64;
            int kind = (int)(d >> 48), slot = (int)(d >> 32 & 0xffff), fd = (int)(uint32_t)d;
            if (kind == K_EXIT) {
                int st;
                epoll_ctl(ep, EPOLL_CTL_DEL, pidfd, NULL);
                pid_t r;
                while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
                    ;
                if (r < 0) {
                    note("waitpid");
                    status = 255;
                } else
                    status = WIFSIGNALED(st) ? 128 + WTERMSIG(st) : WEXITSTATUS(st);
            } else if (kind == K_OUT)
                out_ready(fd);
            else if (kind == K_LISTEN)
                accept_client();
            else if (kind == K_CLIENT && clients[slot].used && clients[slot].fd == fd)
                client_input(&clients[slot]);
            else if (kind == K_TICK && status < 0)
                probe_tick();
            else if (kind == K_PROBE)
                probe_reap();
        }
    }
    if (status < 0)
        status = 255;
    if (tick_fd >= 0)
        close(tick_fd);
    if (probe_pid > 0) { /* the container is gone: so is the question */
        kill(probe_pid, SIGKILL);
        probe_reap();
    }
    while (nout)
        close_out(nout - 1);
    close_stdin();
    if (tty_fd >= 0)
        close(tty_fd);
    stdin_fd = tty_fd = -1;
    close(pidfd);
    while (waitpid(-1, NULL, WNOHANG) > 0) /* reap anything else that was reparented to us */
        ;
    if (removal(status))
        return 0;
    hand_back(status);
    return 1;
}
