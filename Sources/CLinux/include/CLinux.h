#ifndef DS_CLINUX_H
#define DS_CLINUX_H

// Linux calls that Glibc's Swift module does not export (epoll, eventfd, signalfd,
// accept4, splice, pipe2, prctl), wrapped as out-of-line functions compiled with _GNU_SOURCE so
// Swift never needs the GNU feature macros or the C varargs.

#include <stdint.h>
#include <sys/types.h>
#include <sys/socket.h>
#include <signal.h>

#ifdef __cplusplus
extern "C" {
#endif

// epoll. Events are passed as plain integers: the flags below have the kernel's values.
typedef struct cl_epoll_event {
    uint32_t events;
    uint64_t data;
} cl_epoll_event;

extern const uint32_t CL_EPOLLIN;
extern const uint32_t CL_EPOLLOUT;
extern const uint32_t CL_EPOLLERR;
extern const uint32_t CL_EPOLLHUP;
extern const uint32_t CL_EPOLLRDHUP;
extern const uint32_t CL_EPOLLET;
extern const uint32_t CL_EPOLLEXCLUSIVE;

int cl_epoll_create(void);
int cl_epoll_add(int epfd, int fd, uint32_t events, uint64_t data);
int cl_epoll_mod(int epfd, int fd, uint32_t events, uint64_t data);
int cl_epoll_del(int epfd, int fd);
// Fills `out` (an array of `max` cl_epoll_event) and returns the count, or -1 with errno.
// Waits at most `timeout_ns` (negative: no limit), with epoll_pwait2, or where the kernel lacks
// it, with epoll_wait and the timeout rounded up to whole milliseconds (never shorter).
int cl_epoll_wait(int epfd, cl_epoll_event *out, int max, int64_t timeout_ns);
// For tests: 0 makes every wait use the epoll_wait fallback, 1 tries epoll_pwait2 again.
void cl_epoll_use_pwait2(int enabled);

// eventfd: a non-blocking, close-on-exec counter used for cross-thread wake-ups.
int cl_eventfd(void);
int cl_eventfd_signal(int fd);
int cl_eventfd_drain(int fd);

// CLOCK_MONOTONIC in nanoseconds: the clock of the loops' timers.
uint64_t cl_monotonic_ns(void);

// signalfd for the given signals (which are also blocked in the calling thread).
int cl_signalfd(const int *signals, int count);
// Reads one signal from a signalfd; returns the signal number, 0 when none is pending, -1 on error.
int cl_signalfd_read(int fd);
// Blocks the signals in every thread created after this call from the calling thread.
int cl_block_signals(const int *signals, int count);

// Sockets.
int cl_accept4(int fd, struct sockaddr *addr, socklen_t *len);
int cl_socket_nonblocking(int domain, int type);
int cl_set_int_option(int fd, int level, int name, int value);
extern const int CL_SOL_SOCKET;
extern const int CL_SO_REUSEADDR;
extern const int CL_SO_REUSEPORT;
extern const int CL_IPPROTO_TCP;
extern const int CL_TCP_NODELAY;
int cl_set_nonblocking(int fd);

// Zero-copy forwarding.
int cl_pipe2_nonblocking(int fds[2]);
ssize_t cl_splice(int fd_in, int fd_out, size_t len);
// fcntl(F_SETPIPE_SZ): F_SETPIPE_SZ is Linux-only and Glibc's Swift module does not export it.
// Returns the pipe's new capacity, or -1 with errno (EPERM above /proc/sys/fs/pipe-max-size).
int cl_set_pipe_size(int fd, int size);

// Process lifetime: the one fork + exec of the project (ds-lb's replicas and the integration
// tests' ds-lb / ds-server children). fork + exec rather than posix_spawn because the child must
// set PR_SET_PDEATHSIG, which posix_spawn cannot do.
typedef struct cl_spawn_options {
    // With `fds` non-NULL the child's descriptors are exactly fds[0..<fd_count] as its 0, 1,
    // 2, … and every other descriptor is closed (fd_count at most 64); with NULL it keeps the
    // spawner's descriptors that are not close-on-exec.
    const int *fds;
    int fd_count;
    // Sent by the kernel to the child when the thread that called cl_spawn exits (prctl(2):
    // PR_SET_PDEATHSIG follows the forking thread, not the process), so call cl_spawn only from
    // a thread that lives as long as the process. If that thread is already gone by the time
    // prctl took effect, the child exits (status 127) instead of exec'ing.
    int death_signal;
    // The child leads a process group of its own, so signals a terminal sends to its
    // foreground group (Ctrl-C, Ctrl-Z) reach the spawner alone, or a test can signal the
    // child's group without signalling itself. The group exists when cl_spawn returns.
    int new_group;
    // Signals 1–31 get their default action (as from a shell) rather than execve's rule
    // (caught ones become default, ignored ones stay ignored).
    int default_signals;
    // SIGTTOU is ignored (after default_signals), so the child's writes to the terminal are not
    // stopped under `stty tostop`.
    int ignore_sigttou;
    // cl_spawn returns only once the child has exec'd, and fails with the execve's (or the
    // child's set-up's) errno if it did not; without it a child that cannot exec exits with
    // status 127 and cl_spawn returns its pid.
    int report_exec_failure;
} cl_spawn_options;

// Forks and execs `path` with `argv` and `envp` (NULL-terminated). The child's signal mask is
// empty whatever the spawning thread blocks (signalfd users block signals). Only
// async-signal-safe calls run between fork and exec. Returns the pid or -1 with errno.
pid_t cl_spawn(const char *path, char *const argv[], char *const envp[], const cl_spawn_options *options);

// pidfd_open(2) (Linux 5.3): a descriptor that polls readable once the child `pid` exited, so an
// event loop learns of the exit without SIGCHLD or polling. -1 with errno (ENOSYS on older kernels).
int cl_pidfd_open(pid_t pid);

// Names the calling thread (at most 15 bytes are kept), for `top -H` and gdb.
void cl_set_thread_name(const char *name);
/// The nth CPU (counting from 0, wrapping around) this thread may run on, or -1 with errno.
int cl_allowed_cpu(int nth);
/// Pins the calling thread to `cpu`: 0, or -1 with errno.
int cl_pin_current_thread(int cpu);
/// malloc_trim(0): gives free heap pages of every arena back to the kernel (<malloc.h>, which
/// Glibc's Swift module does not export).
int cl_malloc_trim(void);

#ifdef __cplusplus
}
#endif
#endif
