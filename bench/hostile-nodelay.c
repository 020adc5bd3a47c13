// LD_PRELOAD shim for bench/hostile --nodelay-shim: sets TCP_NODELAY on every socket ds-lb
// accepts. ds-lb (at 17811a6) leaves Nagle on for client sockets and relays a response head and
// body in two writes, so a client that waits for the whole response before its next request
// waits ~40 ms for its own delayed ACK (22 req/s on one keep-alive connection). The shim shows
// what the hostile-client figures are without that stall, until ds-lb sets the option itself.
// Build: cc -O2 -shared -fPIC -o hostile-nodelay.so bench/hostile-nodelay.c -ldl
#define _GNU_SOURCE
#include <dlfcn.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags) {
    static int (*real)(int, struct sockaddr *, socklen_t *, int);
    if (!real) real = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
    int c = real(fd, addr, len, flags);
    if (c >= 0) {
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return c;
}
