// The integration tests' process spawner: fork + exec with PR_SET_PDEATHSIG set in the child,
// which posix_spawn cannot do. A child started this way dies when the test process dies,
// SIGKILL of xctest included, so no ds-lb or ds-server outlives a crashed or killed test run.
#ifndef CTESTSPAWN_H
#define CTESTSPAWN_H

#include <sys/types.h>

// Forks and execs `path` with `argv` and `envp` (NULL-terminated). The child's descriptors are
// exactly `fds[0..<fd_count]` as its 0, 1, 2, … (every other descriptor is closed), its signal
// mask is empty and signals 1–31 have their default action, and the kernel sends it
// `death_signal` when the thread that called ts_spawn exits (prctl(2): PR_SET_PDEATHSIG follows
// the forking thread, not the process) — so call it only from a thread that lives as long as
// the process. Returns the pid once the child has exec'd, or -1 with errno set to why the child
// could not start (fork, or the execve's own error). fd_count is at most 64. With `new_group`
// the child leads a process group of its own (setpgid), so a test can signal that group the
// way a terminal signals its foreground job without signalling itself.
pid_t ts_spawn(const char *path, char *const argv[], char *const envp[],
               const int *fds, int fd_count, int death_signal, int new_group);

#endif
