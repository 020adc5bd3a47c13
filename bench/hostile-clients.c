// Hostile clients for bench/hostile: one epoll thread, so that 6,000 hostile
// connections cost little CPU next to the load they are meant to disturb (the machine has 2
// shared cores; the Python version in hostile-clients.py lagged by seconds at this scale, which
// made its cut times meaningless). Runs until SIGTERM/SIGINT (or --seconds), prints a JSON
// progress line every --report seconds and a final one with "final": true.
//
//   slowloris (--slow N): a request head, one byte every --byte-interval ms, never finished. When
//     ds-lb cuts it, the time from its first byte to the cut (FIN or RST seen) is recorded with
//     the status line ds-lb sent (408 expected); it reconnects after uniform(0, --reconnect) ms.
//   non-readers (--nonread N): even ones send POST /echo with a --body-bytes body, odd ones
//     --pipeline pipelined GET /home requests, as fast as the socket takes them; none reads. A
//     cut that reaches the client (RST, or the socket leaving ESTABLISHED) is recorded, then it
//     reconnects. Usually none does: ds-lb's FIN waits behind the response bytes that the full
//     receive window holds back, so bench/hostile counts these cuts on ds-lb's side instead.
// Source addresses rotate over 127.0.0.2 .. 127.0.0.(1 + --sources). Loopback only.
//
// Build: cc -O2 -o hostile-clients bench/hostile-clients.c   (bench/hostile does this)
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum kind { SLOW, ECHO, PIPE };
enum state { WAITING, CONNECTING, OPEN };

struct conn {
    int fd;
    enum kind kind;
    enum state state;
    int index;
    double t_connected, t_first, next_at;
    size_t sent;
    char status[4];
    int got;
};

static volatile sig_atomic_t stop_flag = 0;
static void on_signal(int s) { (void)s; stop_flag = 1; }

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

struct series { double *v; size_t n, cap; };
static void push(struct series *s, double x) {
    if (s->n == s->cap) { s->cap = s->cap ? s->cap * 2 : 1024; s->v = realloc(s->v, s->cap * sizeof(double)); }
    s->v[s->n++] = x;
}
static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }
static void print_series(const char *name, struct series *s) {
    if (s->n == 0) { printf("\"%s\": {\"n\": 0}", name); return; }
    double *c = malloc(s->n * sizeof(double));
    memcpy(c, s->v, s->n * sizeof(double));
    qsort(c, s->n, sizeof(double), cmp);
    size_t n = s->n;
    printf("\"%s\": {\"n\": %zu, \"min\": %.3f, \"p50\": %.3f, \"p99\": %.3f, \"max\": %.3f}", name, n, c[0],
           c[n / 2], c[(size_t)(n * 0.99) < n ? (size_t)(n * 0.99) : n - 1], c[n - 1]);
    free(c);
}

static struct {
    long slow_connects, slow_cut, slow_connect_errors, slow_resets, slow_408, slow_other_status, slow_no_status;
    long nonread_connects, nonread_cut, nonread_connect_errors, echo_open, pipe_open;
    long long echo_bytes_sent, pipe_bytes_sent;
} C;
static struct series slow_life, nonread_life;
static int slow_open, nonread_open;
static double t_start;

static void report(int final) {
    printf("{\"t\": %.1f, \"final\": %s, \"slow_open\": %d, \"nonread_open\": %d, \"counters\": {"
           "\"slow_connects\": %ld, \"slow_cut\": %ld, \"slow_connect_errors\": %ld, \"slow_cut_by_reset\": %ld, "
           "\"nonread_connects\": %ld, \"nonread_cut\": %ld, \"nonread_connect_errors\": %ld, "
           "\"echo_bytes_sent\": %lld, \"pipeline_bytes_sent\": %lld}, "
           "\"slow_statuses\": {\"408\": %ld, \"other\": %ld, \"none\": %ld}, ",
           now_s() - t_start, final ? "true" : "false", slow_open, nonread_open,
           C.slow_connects, C.slow_cut, C.slow_connect_errors, C.slow_resets,
           C.nonread_connects, C.nonread_cut, C.nonread_connect_errors, C.echo_bytes_sent, C.pipe_bytes_sent,
           C.slow_408, C.slow_other_status, C.slow_no_status);
    print_series("slow_cut_after_s", &slow_life);
    printf(", ");
    print_series("nonread_cut_after_s", &nonread_life);
    printf("}\n");
    fflush(stdout);
}

static int port = 0, sources = 100, pipeline = 2000;
static double byte_interval = 2.0, reconnect_max = 5.0, ramp = 10.0;
static size_t body_bytes = 1 << 20;
static char *slow_head, *echo_payload, *pipe_payload;
static size_t slow_len, echo_len, pipe_len;
static int ep;

static double urand(void) { return rand() / (RAND_MAX + 1.0); }

static void start_connect(struct conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) { c->next_at = now_s() + 1; if (c->kind == SLOW) C.slow_connect_errors++; else C.nonread_connect_errors++; return; }
    struct sockaddr_in src = { .sin_family = AF_INET, .sin_port = 0 };
    src.sin_addr.s_addr = htonl(0x7f000002u + (uint32_t)(c->index % sources));
    bind(fd, (struct sockaddr *)&src, sizeof src);
    struct sockaddr_in dst = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
    dst.sin_addr.s_addr = htonl(0x7f000001u);
    int rc = connect(fd, (struct sockaddr *)&dst, sizeof dst);
    if (rc < 0 && errno != EINPROGRESS) {
        close(fd);
        if (c->kind == SLOW) C.slow_connect_errors++; else C.nonread_connect_errors++;
        c->next_at = now_s() + 1;
        return;
    }
    c->fd = fd;
    c->state = CONNECTING;
    c->sent = 0; c->got = 0; memset(c->status, 0, sizeof c->status);
    c->next_at = now_s() + 10;  // connect deadline
    struct epoll_event ev = { .events = EPOLLOUT | EPOLLIN | EPOLLRDHUP | EPOLLET, .data.ptr = c };
    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
}

static void end_conn(struct conn *c, int reset) {
    double t = now_s();
    if (c->state == OPEN) {
        if (c->kind == SLOW) {
            slow_open--;
            C.slow_cut++;
            if (reset) C.slow_resets++;
            push(&slow_life, t - c->t_first);
            if (c->got >= 3) { if (memcmp(c->status, "408", 3) == 0) C.slow_408++; else C.slow_other_status++; }
            else C.slow_no_status++;
        } else {
            nonread_open--;
            C.nonread_cut++;
            push(&nonread_life, t - c->t_connected);
        }
    } else if (c->state == CONNECTING) {
        if (c->kind == SLOW) C.slow_connect_errors++; else C.nonread_connect_errors++;
    }
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
    c->state = WAITING;
    c->next_at = t + urand() * reconnect_max;
}

static void pump_nonreader(struct conn *c) {
    const char *p = c->kind == ECHO ? echo_payload : pipe_payload;
    size_t len = c->kind == ECHO ? echo_len : pipe_len;
    while (c->sent < len) {
        ssize_t n = send(c->fd, p + c->sent, len - c->sent, MSG_NOSIGNAL);
        if (n > 0) { c->sent += (size_t)n; if (c->kind == ECHO) C.echo_bytes_sent += n; else C.pipe_bytes_sent += n; continue; }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        end_conn(c, 1);
        return;
    }
}

static void on_event(struct conn *c, uint32_t events) {
    if (c->fd < 0) return;
    double t = now_s();
    if (c->state == CONNECTING) {
        int err = 0; socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err != 0 || (events & (EPOLLERR | EPOLLHUP))) { end_conn(c, 1); return; }
        if (!(events & EPOLLOUT)) return;
        c->state = OPEN;
        c->t_connected = t;
        if (c->kind == SLOW) {
            slow_open++; C.slow_connects++;
            c->t_first = t;
            send(c->fd, slow_head, 1, MSG_NOSIGNAL);
            c->sent = 1;
            c->next_at = t + byte_interval;
        } else {
            nonread_open++; C.nonread_connects++;
            if (c->kind == ECHO) C.echo_open++; else C.pipe_open++;
            c->next_at = t + 1;
            pump_nonreader(c);
        }
        return;
    }
    if (c->state != OPEN) return;
    if (c->kind == SLOW) {
        if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            char buf[4096];
            for (;;) {
                ssize_t n = recv(c->fd, buf, sizeof buf, 0);
                if (n > 0) {
                    for (ssize_t i = 0; i < n && c->got < 12; i++, c->got++)
                        if (c->got >= 9) c->status[c->got - 9] = buf[i];
                    continue;
                }
                if (n == 0) { end_conn(c, 0); return; }
                if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                end_conn(c, 1);
                return;
            }
            if (events & (EPOLLHUP | EPOLLERR)) end_conn(c, 1);
        }
    } else {
        if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) { end_conn(c, (events & (EPOLLHUP | EPOLLERR)) != 0); return; }
        if (events & EPOLLOUT) pump_nonreader(c);
    }
}

static void on_due(struct conn *c, double t) {
    if (c->state == WAITING) { start_connect(c); return; }
    if (c->state == CONNECTING) { end_conn(c, 0); return; }  // connect timed out
    if (c->kind == SLOW) {
        if (c->sent >= slow_len) c->sent = slow_len - 1;
        ssize_t n = send(c->fd, slow_head + c->sent, 1, MSG_NOSIGNAL);
        if (n == 1) c->sent++;
        else if (n < 0 && errno != EAGAIN) { end_conn(c, 1); return; }
        c->next_at = t + byte_interval;
    } else {
        struct tcp_info info; socklen_t l = sizeof info;
        if (getsockopt(c->fd, IPPROTO_TCP, TCP_INFO, &info, &l) == 0 && info.tcpi_state != TCP_ESTABLISHED) { end_conn(c, 0); return; }
        pump_nonreader(c);
        if (c->fd >= 0) c->next_at = t + 1;
    }
}

int main(int argc, char **argv) {
    int slow = 5000, nonread = 1000;
    double seconds = 0, report_every = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--slow")) slow = atoi(v);
        else if (!strcmp(k, "--nonread")) nonread = atoi(v);
        else if (!strcmp(k, "--byte-interval")) byte_interval = atof(v);
        else if (!strcmp(k, "--reconnect")) reconnect_max = atof(v);
        else if (!strcmp(k, "--ramp")) ramp = atof(v);
        else if (!strcmp(k, "--body-bytes")) body_bytes = (size_t)atol(v);
        else if (!strcmp(k, "--pipeline")) pipeline = atoi(v);
        else if (!strcmp(k, "--sources")) sources = atoi(v);
        else if (!strcmp(k, "--report")) report_every = atof(v);
        else if (!strcmp(k, "--seconds")) seconds = atof(v);
        else { fprintf(stderr, "hostile-clients: unknown option %s\n", k); return 2; }
    }
    if (port <= 0 || sources <= 0 || sources > 250) { fprintf(stderr, "hostile-clients: --port P required; --sources 1..250\n"); return 2; }
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    srand(12345);

    // A head that never ends: the request line, then header lines forever (one byte at a time).
    slow_len = 1 << 16;
    slow_head = malloc(slow_len);
    size_t off = (size_t)snprintf(slow_head, slow_len, "GET /home?id=1 HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\n");
    while (off + 8 < slow_len) { memcpy(slow_head + off, "X-a: b\r\n", 8); off += 8; }
    slow_len = off;
    char hdr[256];
    int hl = snprintf(hdr, sizeof hdr, "POST /echo?id=7 HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\nContent-Type: application/octet-stream\r\n\r\n", body_bytes);
    echo_len = (size_t)hl + body_bytes;
    echo_payload = malloc(echo_len);
    memcpy(echo_payload, hdr, (size_t)hl);
    memset(echo_payload + hl, 'x', body_bytes);
    pipe_payload = malloc((size_t)pipeline * 64);
    pipe_len = 0;
    for (int k = 0; k < pipeline; k++)
        pipe_len += (size_t)sprintf(pipe_payload + pipe_len, "GET /home?id=%d HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 100000 + k);

    ep = epoll_create1(EPOLL_CLOEXEC);
    int total = slow + nonread;
    struct conn *conns = calloc((size_t)total, sizeof *conns);
    t_start = now_s();
    for (int i = 0; i < total; i++) {
        conns[i].fd = -1;
        conns[i].index = i;
        conns[i].kind = i < slow ? SLOW : ((i - slow) % 2 == 0 ? ECHO : PIPE);
        conns[i].state = WAITING;
        conns[i].next_at = t_start + urand() * ramp;
    }
    double next_report = t_start + report_every;
    struct epoll_event evs[512];
    while (!stop_flag) {
        int n = epoll_wait(ep, evs, 512, 10);
        for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
        double t = now_s();
        for (int i = 0; i < total; i++)
            if (conns[i].next_at <= t) on_due(&conns[i], t);
        if (t >= next_report) { report(0); next_report += report_every; }
        if (seconds > 0 && t - t_start >= seconds) break;
    }
    report(1);
    return 0;
}
