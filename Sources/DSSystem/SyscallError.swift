#if canImport(Glibc)
import Glibc
#endif

/// A failed system call: the errno and the name of the call, so a log line says what failed.
package struct SyscallError: Error, CustomStringConvertible, Sendable {
    package let errno: Int32
    package let function: String

    package init(errno: Int32, function: String) {
        self.errno = errno
        self.function = function
    }

    package var description: String {
        "\(function): \(String(cString: strerror(errno))) (errno \(errno))"
    }

    /// This process (or the system) ran out of descriptors or memory: a local condition, not
    /// something the peer did. Callers must not blame the other end for it.
    package var isLocalResourceExhaustion: Bool {
        errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM
    }
}

/// The outcome of a non-blocking call: a value, or "try again when the fd is ready". Usable
/// from inline because `ByteBuffer`'s read and write, whose default arguments callers inline,
/// return it.
@usableFromInline package enum IOResult<T> {
    case done(T)
    case wouldBlock
}

/// Runs a call that reports failure as -1 + errno: retries EINTR, throws `SyscallError` otherwise.
/// EBADF and EFAULT mean we handed the kernel a closed descriptor or a bad pointer: a bug in the
/// caller, so it crashes instead of turning into an error someone could swallow. Usable from
/// inline because the inlinable `Splice.makePipe` calls it.
@inline(__always)
@usableFromInline package func syscall<T: FixedWidthInteger>(_ function: @autoclosure () -> String, _ body: () -> T) throws -> T {
    while true {
        let result = body()
        if result != -1 { return result }
        let err = Glibc.errno
        if err == EINTR { continue }
        checkNotBug(err, function())
        throw SyscallError(errno: err, function: function())
    }
}

/// Like `syscall`, but maps EAGAIN/EWOULDBLOCK to `.wouldBlock` for non-blocking descriptors.
@inline(__always)
package func nonBlockingSyscall<T: FixedWidthInteger>(
    _ function: @autoclosure () -> String, _ body: () -> T
) throws -> IOResult<T> {
    while true {
        let result = body()
        if result != -1 { return .done(result) }
        let err = Glibc.errno
        if err == EINTR { continue }
        if err == EAGAIN || err == EWOULDBLOCK { return .wouldBlock }
        checkNotBug(err, function())
        throw SyscallError(errno: err, function: function())
    }
}

@inline(__always)
func checkNotBug(_ err: Int32, _ function: String) {
    if err == EBADF || err == EFAULT {
        fatalError("\(function) failed with \(err == EBADF ? "EBADF" : "EFAULT"): a descriptor or pointer bug")
    }
}
