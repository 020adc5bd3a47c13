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

// Process lifetime. `cl_spawn` forks and execs `path` with `argv`/`envp` (NULL-terminated).
// The child asks the kernel to SIGKILL it when the spawning thread's process dies
// (PR_SET_PDEATHSIG), and exits at once if that already happened between fork and prctl.
// The child leads a process group of its own, so signals a terminal sends to its foreground
// group (Ctrl-C, Ctrl-Z) reach the spawner alone; it ignores SIGTTOU, so its writes to that
// terminal are not stopped under `stty tostop`.
// Only async-signal-safe calls run between fork and exec. Returns the pid or -1 with errno.
pid_t cl_spawn(const char *path, char *const argv[], char *const envp[]);

// Names the calling thread (at most 15 bytes are kept), for `top -H` and gdb.
void cl_set_thread_name(const char *name);
/// malloc_trim(0): gives free heap pages of every arena back to the kernel (<malloc.h>, which
/// Glibc's Swift module does not export).
int cl_malloc_trim(void);

#ifdef __cplusplus
}
#endif
#endif
