#ifndef _GNU_SOURCE
#define _GNU_SOURCE // GNU-only calls: accept4, pipe2, splice, signalfd helpers
#endif
#include "CLinux.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

const uint32_t CL_EPOLLIN = EPOLLIN;
const uint32_t CL_EPOLLOUT = EPOLLOUT;
const uint32_t CL_EPOLLERR = EPOLLERR;
const uint32_t CL_EPOLLHUP = EPOLLHUP;
const uint32_t CL_EPOLLRDHUP = EPOLLRDHUP;
const uint32_t CL_EPOLLET = EPOLLET;
const uint32_t CL_EPOLLEXCLUSIVE = EPOLLEXCLUSIVE;

const int CL_SOL_SOCKET = SOL_SOCKET;
const int CL_SO_REUSEADDR = SO_REUSEADDR;
const int CL_SO_REUSEPORT = SO_REUSEPORT;
const int CL_IPPROTO_TCP = IPPROTO_TCP;
const int CL_TCP_NODELAY = TCP_NODELAY;

int cl_epoll_create(void) { return epoll_create1(EPOLL_CLOEXEC); }

static int epoll_ctl_with(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = data;
    return epoll_ctl(epfd, op, fd, &ev);
}

int cl_epoll_add(int epfd, int fd, uint32_t events, uint64_t data) {
    return epoll_ctl_with(epfd, EPOLL_CTL_ADD, fd, events, data);
}

int cl_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data) {
    return epoll_ctl_with(epfd, EPOLL_CTL_MOD, fd, events, data);
}

int cl_epoll_del(int epfd, int fd) { return epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL); }

// epoll_pwait2 (Linux 5.11) takes its timeout as a timespec, so a timer deadline needs no
// timerfd and is not rounded to milliseconds. Called through syscall(2): glibc only wraps it
// from 2.35. 441 is its number on every architecture (the syscall table was unified by then).
#ifndef SYS_epoll_pwait2
#define SYS_epoll_pwait2 441
#endif

// Cleared for good once the kernel answers ENOSYS (older than 5.11); tests clear it to cover
// the fallback. Atomic: every loop thread reads it.
static int use_pwait2 = 1;

void cl_epoll_use_pwait2(int enabled) { __atomic_store_n(&use_pwait2, enabled, __ATOMIC_RELAXED); }

static int epoll_wait_timeout(int epfd, struct epoll_event *events, int max, int64_t timeout_ns) {
    if (timeout_ns < 0) return epoll_wait(epfd, events, max, -1);
    if (timeout_ns == 0) return epoll_wait(epfd, events, max, 0);
    if (__atomic_load_n(&use_pwait2, __ATOMIC_RELAXED)) {
        struct timespec ts;
        ts.tv_sec = (time_t)(timeout_ns / 1000000000);
        ts.tv_nsec = (long)(timeout_ns % 1000000000);
        long n = syscall(SYS_epoll_pwait2, epfd, events, max, &ts, NULL, 0);
        if (n >= 0 || errno != ENOSYS) return (int)n;
        __atomic_store_n(&use_pwait2, 0, __ATOMIC_RELAXED);
    }
    // Milliseconds rounded up: a timer must never be woken for before its deadline.
    int64_t ms = (timeout_ns + 999999) / 1000000;
    return epoll_wait(epfd, events, max, ms > INT_MAX ? INT_MAX : (int)ms);
}

int cl_epoll_wait(int epfd, cl_epoll_event *out, int max, int64_t timeout_ns) {
    // struct epoll_event is packed on x86_64, so it is copied into our unpacked layout rather
    // than handed to Swift directly.
    struct epoll_event events[256];
    if (max > 256) max = 256;
    int n = epoll_wait_timeout(epfd, events, max, timeout_ns);
    for (int i = 0; i < n; i++) {
        out[i].events = events[i].events;
        out[i].data = events[i].data.u64;
    }
    return n;
}

int cl_eventfd(void) { return eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC); }

int cl_eventfd_signal(int fd) {
    uint64_t one = 1;
    ssize_t n = write(fd, &one, sizeof one);
    // EAGAIN means the counter is saturated: the reader is already due to wake.
    return (n == sizeof one || errno == EAGAIN) ? 0 : -1;
}

int cl_eventfd_drain(int fd) {
    uint64_t value;
    ssize_t n = read(fd, &value, sizeof value);
    return (n == sizeof value || errno == EAGAIN) ? 0 : -1;
}

uint64_t cl_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void fill_set(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++) sigaddset(set, signals[i]);
}

int cl_block_signals(const int *signals, int count) {
    sigset_t set;
    fill_set(&set, signals, count);
    return pthread_sigmask(SIG_BLOCK, &set, NULL);
}

int cl_signalfd(const int *signals, int count) {
    sigset_t set;
    fill_set(&set, signals, count);
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) return -1;
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

int cl_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n == sizeof info) return (int)info.ssi_signo;
    if (n < 0 && errno == EAGAIN) return 0;
    return -1;
}

int cl_accept4(int fd, struct sockaddr *addr, socklen_t *len) {
    return accept4(fd, addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

int cl_socket_nonblocking(int domain, int type) {
    return socket(domain, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
}

int cl_set_int_option(int fd, int level, int name, int value) {
    return setsockopt(fd, level, name, &value, sizeof value);
}

int cl_set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -1;
    return fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

int cl_pipe2_nonblocking(int fds[2]) { return pipe2(fds, O_NONBLOCK | O_CLOEXEC); }

ssize_t cl_splice(int fd_in, int fd_out, size_t len) {
    return splice(fd_in, NULL, fd_out, NULL, len, SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
}

int cl_set_pipe_size(int fd, int size) { return fcntl(fd, F_SETPIPE_SZ, size); }

enum { spawn_max_fds = 64 };

// Child side, between fork and execve. The parent is multi-threaded, and another thread may have
// held a lock (malloc's, stdio's) at the fork, which in the child stays held forever: so only
// async-signal-safe calls from here on (signal-safety(7)), no malloc, no stdio. memset is on
// that list since POSIX.1-2008 TC2; syscall(2) is a bare trap with no lock. On failure the errno
// goes to `report` when there is one (close-on-exec, so a successful execve closes it with
// nothing written), and the child exits with 127.
static void spawn_child(const char *path, char *const argv[], char *const envp[],
                        const cl_spawn_options *o, pid_t parent, int report) {
    int err;
    // Its own group before signals are unblocked, so a Ctrl-C meant for the spawner that comes
    // from here on stays the spawner's.
    if (o->new_group && setpgid(0, 0) != 0) goto fail;
    if (o->fds != NULL) {
        // Move every source above the targets first, so dup2(fds[i], i) cannot overwrite a
        // source that a later target still needs (e.g. fds = {5, 3}: 3 is a source and a target).
        int base = o->fd_count + 1;
        int moved[spawn_max_fds];
        if (report >= 0) {
            report = fcntl(report, F_DUPFD_CLOEXEC, base);
            if (report < 0) _exit(127);
        }
        for (int i = 0; i < o->fd_count; i++) {
            moved[i] = fcntl(o->fds[i], F_DUPFD, base);
            if (moved[i] < 0) goto fail;
        }
        for (int i = 0; i < o->fd_count; i++) {
            if (dup2(moved[i], i) < 0) goto fail; // dup2 clears close-on-exec on the target
        }
        unsigned first_closed = (unsigned)o->fd_count;
        if (report >= 0) {
            if (dup3(report, o->fd_count, O_CLOEXEC) < 0) goto fail;
            report = o->fd_count;
            first_closed += 1;
        }
        // Nothing else reaches the child: other threads open descriptors without close-on-exec
        // at any time.
        if (syscall(SYS_close_range, first_closed, ~0U, 0) != 0) {
            for (int fd = (int)first_closed; fd < 65536; fd++) close(fd);
        }
    }
    struct sigaction action;
    if (o->default_signals) {
        memset(&action, 0, sizeof action);
        action.sa_handler = SIG_DFL;
        for (int sig = 1; sig < 32; sig++) {
            if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &action, NULL);
        }
    }
    if (o->ignore_sigttou) {
        // An ignored disposition survives execve; the child does no job control of its own.
        memset(&action, 0, sizeof action);
        action.sa_handler = SIG_IGN;
        sigaction(SIGTTOU, &action, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, o->death_signal) != 0) goto fail;
    // The parent may have died before prctl took effect: then no signal will ever come.
    if (getppid() != parent) { errno = ESRCH; goto fail; }
    execve(path, argv, envp);
fail:
    err = errno;
    if (report >= 0) (void)!write(report, &err, sizeof err);
    _exit(127);
}

pid_t cl_spawn(const char *path, char *const argv[], char *const envp[], const cl_spawn_options *o) {
    if (o->fds != NULL && (o->fd_count < 0 || o->fd_count > spawn_max_fds)) { errno = EINVAL; return -1; }
    int report[2] = {-1, -1};
    if (o->report_exec_failure && pipe2(report, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) spawn_child(path, argv, envp, o, parent, report[1]);
    // Also from the parent, so the group exists when cl_spawn returns whichever side ran first
    // (EACCES once the child has exec'd is harmless: it set the group itself before that).
    if (pid > 0 && o->new_group) setpgid(pid, pid);
    if (report[1] >= 0) close(report[1]);
    if (pid < 0) {
        int err = errno;
        if (report[0] >= 0) close(report[0]);
        errno = err;
        return -1;
    }
    if (report[0] < 0) return pid;
    // EOF = the execve succeeded (the pipe closed on exec); 4 bytes = the child's errno.
    int err = 0;
    ssize_t n;
    do { n = read(report[0], &err, sizeof err); } while (n < 0 && errno == EINTR);
    close(report[0]);
    if (n == (ssize_t)sizeof err) {
        int status;
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
        errno = err;
        return -1;
    }
    return pid;
}

void cl_set_thread_name(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

int cl_allowed_cpu(int nth) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    int count = CPU_COUNT(&set);
    if (count == 0) return -1;
    int wanted = nth % count;
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &set) && wanted-- == 0) return cpu;
    }
    return -1;
}

int cl_pin_current_thread(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    // sched_setaffinity(0) is the calling thread (a Linux thread is a task with its own mask).
    return sched_setaffinity(0, sizeof set, &set);
}
int cl_malloc_trim(void) { return malloc_trim(0); }

int cl_pidfd_open(pid_t pid) {
#ifdef SYS_pidfd_open
    // Through syscall(2): glibc's pidfd_open wrapper is newer than some glibcs we build with.
    // A pidfd is close-on-exec by definition (pidfd_open(2)).
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}
