#define _GNU_SOURCE
#include "CTestSpawn.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

enum { max_fds = 64 };

// Child side, between fork and execve: only async-signal-safe calls (the parent is
// multi-threaded, so another thread may have held the malloc lock at fork). On failure the
// errno goes to `report` (close-on-exec, so a successful execve closes it with nothing written).
static void child(const char *path, char *const argv[], char *const envp[], const int *fds,
                  int fd_count, int death_signal, int new_group, pid_t parent, int report) {
    int err;
    if (new_group && setpgid(0, 0) != 0) goto fail;
    // Move every source above the targets first, so dup2(fds[i], i) cannot overwrite a
    // source that a later target still needs (e.g. fds = {5, 3} → 3 is a source and a target).
    int base = fd_count + 1;
    int moved[max_fds];
    report = fcntl(report, F_DUPFD_CLOEXEC, base);
    if (report < 0) _exit(127);
    for (int i = 0; i < fd_count; i++) {
        moved[i] = fcntl(fds[i], F_DUPFD, base);
        if (moved[i] < 0) goto fail;
    }
    for (int i = 0; i < fd_count; i++) {
        if (dup2(moved[i], i) < 0) goto fail; // dup2 clears close-on-exec on the target
    }
    if (dup3(report, fd_count, O_CLOEXEC) < 0) goto fail;
    report = fd_count;
    // Nothing else reaches the child: test threads open sockets without close-on-exec at any time.
    if (syscall(SYS_close_range, (unsigned)fd_count + 1, ~0U, 0) != 0) {
        for (int fd = fd_count + 1; fd < 65536; fd++) close(fd);
    }
    // As from a shell: default dispositions, nothing blocked (the tests' threads may block some).
    struct sigaction dfl = {0};
    dfl.sa_handler = SIG_DFL;
    for (int sig = 1; sig < 32; sig++) {
        if (sig != SIGKILL && sig != SIGSTOP) sigaction(sig, &dfl, NULL);
    }
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (prctl(PR_SET_PDEATHSIG, death_signal) != 0) goto fail;
    // The parent may have died before prctl took effect: then no signal will ever come.
    if (getppid() != parent) { errno = ESRCH; goto fail; }
    execve(path, argv, envp);
fail:
    err = errno;
    (void)!write(report, &err, sizeof err);
    _exit(127);
}

pid_t ts_spawn(const char *path, char *const argv[], char *const envp[],
               const int *fds, int fd_count, int death_signal, int new_group) {
    if (fd_count < 0 || fd_count > max_fds) { errno = EINVAL; return -1; }
    int report[2];
    if (pipe2(report, O_CLOEXEC) != 0) return -1;
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) child(path, argv, envp, fds, fd_count, death_signal, new_group, parent, report[1]);
    // From this side too, so the group exists when ts_spawn returns whichever side ran first.
    if (pid > 0 && new_group) setpgid(pid, pid);
    close(report[1]);
    if (pid < 0) {
        int err = errno;
        close(report[0]);
        errno = err;
        return -1;
    }
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
