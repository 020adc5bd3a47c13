import CLinux

#if canImport(Glibc)
import Glibc
#endif

// The Linux calls the reactor (DSReactor) and the Docker client's connection need, over the C
// shim, so those modules depend on DSSystem alone. Each wrapper is @inlinable: several run once
// per loop turn or per spliced chunk (epoll wait, eventfd, splice), and without cross-module
// optimisation an opaque call into DSSystem would be an extra call per use in the data plane;
// inlined, the caller calls the shim directly, exactly as it did before these existed.

/// epoll. Events are plain integers with the kernel's flag values.
///
/// Usable from inline, as `EventFD` and `Splice` are: without it a package type's inlinable members
/// are not emitted into other modules, and the wrappers would be calls again.
@usableFromInline package enum Epoll {
    @usableFromInline package typealias Event = cl_epoll_event

    @inlinable package static var readable: UInt32 { CL_EPOLLIN }
    @inlinable package static var writable: UInt32 { CL_EPOLLOUT }
    @inlinable package static var readHangup: UInt32 { CL_EPOLLRDHUP }
    @inlinable package static var hangup: UInt32 { CL_EPOLLHUP }
    @inlinable package static var error: UInt32 { CL_EPOLLERR }
    @inlinable package static var edgeTriggered: UInt32 { CL_EPOLLET }
    @inlinable package static var exclusive: UInt32 { CL_EPOLLEXCLUSIVE }

    /// A close-on-exec epoll instance, or -1 with errno.
    @inlinable package static func create() -> Int32 { cl_epoll_create() }
    @inlinable package static func add(_ epfd: Int32, _ fd: Int32, events: UInt32, data: UInt64) -> Int32 {
        cl_epoll_add(epfd, fd, events, data)
    }
    @inlinable package static func remove(_ epfd: Int32, _ fd: Int32) -> Int32 { cl_epoll_del(epfd, fd) }
    /// Fills `events` (room for `max`) and returns the count, or -1 with errno; waits at most
    /// `timeoutNanoseconds` (negative: no limit), never less.
    @inlinable
    package static func wait(_ epfd: Int32, _ events: UnsafeMutablePointer<Event>, max: Int32, timeoutNanoseconds: Int64) -> Int32
    {
        cl_epoll_wait(epfd, events, max, timeoutNanoseconds)
    }
    /// For tests: false makes every wait use the epoll_wait fallback, true tries epoll_pwait2 again.
    package static func usePwait2(_ enabled: Bool) { cl_epoll_use_pwait2(enabled ? 1 : 0) }
}

/// eventfd: a non-blocking, close-on-exec counter for cross-thread wake-ups.
@usableFromInline package enum EventFD {
    @inlinable package static func create() -> Int32 { cl_eventfd() }
    /// 0, or -1 with errno; a saturated counter counts as signalled.
    @inlinable package static func signal(_ fd: Int32) -> Int32 { cl_eventfd_signal(fd) }
    @inlinable package static func drain(_ fd: Int32) -> Int32 { cl_eventfd_drain(fd) }
}

/// signalfd: signals as readable events.
package enum SignalFD {
    /// A non-blocking signalfd for `signals`, which are also blocked in the calling thread (and
    /// so in every thread it creates afterwards).
    package static func open(_ signals: [Int32]) throws -> Int32 {
        try signals.withUnsafeBufferPointer { list in
            try syscall("signalfd") { cl_signalfd(list.baseAddress, Int32(list.count)) }
        }
    }

    /// One pending signal's number, 0 when none is pending, -1 on error.
    package static func read(_ fd: Int32) -> Int32 { cl_signalfd_read(fd) }
}

/// Zero-copy forwarding through a pipe.
@usableFromInline package enum Splice {
    /// A non-blocking, close-on-exec pipe: (read end, write end).
    @inlinable package static func makePipe() throws -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        _ = try fds.withUnsafeMutableBufferPointer { p in try syscall("pipe2") { cl_pipe2_nonblocking(p.baseAddress!) } }
        return (fds[0], fds[1])
    }

    /// F_SETPIPE_SZ: the pipe's new capacity, or -1 with errno.
    @inlinable package static func setPipeSize(_ fd: Int32, _ bytes: Int32) -> Int32 { cl_set_pipe_size(fd, bytes) }

    /// splice(2), non-blocking, at most `length` bytes: the count, or -1 with errno.
    @inlinable package static func splice(from source: Int32, to destination: Int32, length: Int) -> Int {
        cl_splice(source, destination, length)
    }
}

/// Names the calling thread (at most 15 bytes are kept), for `top -H` and gdb.
package func setCurrentThreadName(_ name: String) {
    name.withCString { cl_set_thread_name($0) }
}

/// The `nth` (from 0, wrapping around) of the CPUs the calling thread may run on: where
/// `--cpu-affinity auto` puts worker `nth`. Nil when the mask cannot be read.
package func allowedCPU(_ nth: Int) -> Int? {
    let cpu = cl_allowed_cpu(Int32(truncatingIfNeeded: nth))
    return cpu < 0 ? nil : Int(cpu)
}

/// Pins the calling thread to `cpu`.
package func pinCurrentThread(to cpu: Int) throws(SyscallError) {
    guard cl_pin_current_thread(Int32(truncatingIfNeeded: cpu)) == 0 else {
        throw SyscallError(errno: errno, function: "sched_setaffinity(CPU \(cpu))")
    }
}
