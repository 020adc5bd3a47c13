// The leanest replica bench/compare can put behind a proxy (`--static-backend`): one thread, one
// epoll loop, GET /home answered with the same JSON body and Content-Type as ds-server's,
// /heartbeat with an empty 200, anything else 404; keep-alive with no request limit (HTTP/1.0
// only when asked, as ab does), pipelined requests answered in order. No request bodies: a
// request with Content-Length or Transfer-Encoding gets a 400 and the connection is closed.
// What it saves against the nginx fast backend is nginx's per-request work in user space (its
// parser, location match, header generation, timers): with --isolate on 2 CPUs, the load
// generator and the replica share the one CPU the proxy does not use, and that CPU, not the
// proxy, otherwise caps the req/s of every proxy faster than it.
//
// Build: cc -O2 -o static-backend static-backend.c      Run: static-backend PORT
// Listens on 127.0.0.1 only. Stops on SIGTERM or SIGINT.
#define _GNU_SOURCE
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF 16384
#define MAXFD 65536

static const char home[] =
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 59\r\n\r\n"
    "{\"message\": \"Hello from Server: 1\", \"status\": \"successful\"}";
static const char heartbeat[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";
static const char missing[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
static const char bad[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

struct conn {
    char in[BUF];
    size_t have;
    char out[BUF];
    size_t pending, sent;
    int closing;
};

static struct conn *conns[MAXFD];
static volatile sig_atomic_t stop;

static void on_signal(int sig) { (void)sig; stop = 1; }

static void drop(int ep, int fd) {
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd]);
    conns[fd] = NULL;
}

// Case-insensitive search for a header name at the start of a line inside [head, end).
static int has_field(const char *head, const char *end, const char *name) {
    size_t n = strlen(name);
    for (const char *p = head; p + n < end; p++) {
        if ((p == head || p[-1] == '\n') && strncasecmp(p, name, n) == 0) return 1;
    }
    return 0;
}

// Answers every complete request in c->in; returns 0 when the connection must close after the
// answers already queued.
static int answer(struct conn *c) {
    size_t at = 0;
    for (;;) {
        char *start = c->in + at;
        char *end = memmem(start, c->have - at, "\r\n\r\n", 4);
        if (!end) break;
        end += 4;
        const char *reply = missing;
        size_t len = sizeof missing - 1;
        int keep = 1;
        if (has_field(start, end, "content-length:") || has_field(start, end, "transfer-encoding:")) {
            reply = bad, len = sizeof bad - 1, keep = 0;
        } else if (strncmp(start, "GET /home", 9) == 0 && (start[9] == ' ' || start[9] == '?')) {
            reply = home, len = sizeof home - 1;
        } else if (strncmp(start, "GET /heartbeat ", 15) == 0) {
            reply = heartbeat, len = sizeof heartbeat - 1;
        }
        // HTTP/1.0 closes unless it asks to keep alive; HTTP/1.1 keeps alive unless it asks to close.
        const char *line_end = memchr(start, '\r', (size_t)(end - start));
        int http10 = line_end - start >= 8 && memcmp(line_end - 8, "HTTP/1.0", 8) == 0;
        if (http10 ? !has_field(start, end, "connection: keep-alive") : has_field(start, end, "connection: close"))
            keep = 0;
        if (c->pending + len > BUF) break;  // answer the rest once this output is written
        memcpy(c->out + c->pending, reply, len);
        c->pending += len;
        at = (size_t)(end - c->in);
        if (!keep) {
            c->closing = 1;
            break;
        }
    }
    memmove(c->in, c->in + at, c->have - at);
    c->have -= at;
    return !c->closing;
}

// Writes what is queued; returns -1 on error, 0 when some is left (wait for EPOLLOUT), 1 when all is out.
static int flush(int fd, struct conn *c) {
    while (c->sent < c->pending) {
        ssize_t n = send(fd, c->out + c->sent, c->pending - c->sent, MSG_NOSIGNAL);
        if (n < 0) return errno == EAGAIN ? 0 : -1;
        c->sent += (size_t)n;
    }
    c->pending = c->sent = 0;
    return 1;
}

// Answers and writes until the input holds no complete request (then waits for input) or the
// socket takes no more (then waits for EPOLLOUT); closes after a 400 or a head over BUF bytes.
static void serve(int ep, int fd, struct conn *c) {
    for (;;) {
        size_t before = c->have;
        answer(c);
        int w = flush(fd, c);
        if (w < 0 || (w > 0 && c->closing) || (c->have == BUF && c->have == before)) {
            drop(ep, fd);
            return;
        }
        if (w == 0 || c->have == before) {
            struct epoll_event ev = {.events = (w == 0 ? EPOLLOUT : EPOLLIN | EPOLLRDHUP), .data.fd = fd};
            epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev);
            return;
        }
    }
}

int main(int argc, char **argv) {
    if (argc != 2 || atoi(argv[1]) <= 0 || atoi(argv[1]) > 65535) {
        fprintf(stderr, "usage: static-backend PORT (1-65535), got %s\n", argc > 1 ? argv[1] : "nothing");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
                               .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(ls, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(ls, 4096) < 0) {
        fprintf(stderr, "static-backend: cannot listen on 127.0.0.1:%s: %s\n", argv[1], strerror(errno));
        return 1;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event events[256];
    while (!stop) {
        int n = epoll_wait(ep, events, 256, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return 1;
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            if (fd == ls) {
                int c;
                while ((c = accept4(ls, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
                    if (c >= MAXFD || !(conns[c] = calloc(1, sizeof(struct conn)))) {
                        close(c);
                        continue;
                    }
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    struct epoll_event cev = {.events = EPOLLIN | EPOLLRDHUP, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
                }
                continue;
            }
            struct conn *c = conns[fd];
            if (!c) continue;
            if (!c->pending) {  // not waiting for EPOLLOUT: this event is input
                ssize_t r = recv(fd, c->in + c->have, BUF - c->have, 0);
                if (r == 0 || (r < 0 && errno != EAGAIN)) {
                    drop(ep, fd);
                    continue;
                }
                if (r > 0) c->have += (size_t)r;
            }
            serve(ep, fd, c);
        }
    }
    return 0;
}
