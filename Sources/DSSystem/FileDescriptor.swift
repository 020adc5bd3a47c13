#if canImport(Glibc)
import Glibc
#endif

/// An open descriptor with one owner, closed exactly once: by `close()` or, failing that, when
/// its owner lets it go. Noncopyable, so the number cannot outlive its ownership by being copied
/// into a second owner that closes it again (after the kernel reused it for someone else's
/// socket). A struct and not a class: it costs no allocation, which the data plane needs per
/// accepted and per upstream connection.
///
/// Descriptors that cannot have a single owner stay raw `Int32`, each with a comment saying why
/// (a listening socket shared by several loops, one systemd passed, one handed to a child).
package struct FileDescriptor: ~Copyable, Sendable {
    @usableFromInline let raw: Int32

    /// Takes over `raw`, a descriptor nobody else closes.
    @inlinable package init(adopting raw: Int32) {
        self.raw = raw
    }

    /// The number, for a system call made while this value is alive.
    @inlinable package var rawValue: Int32 { raw }

    /// Closes the descriptor now.
    @inlinable package consuming func close() {
        // The deinit, which runs as `self` is consumed, does the close.
    }

    /// Gives up ownership without closing: the caller (a registration, a child's descriptor
    /// table) takes over `rawValue` and its close.
    @inlinable package consuming func release() -> Int32 {
        let fd = raw
        discard self
        return fd
    }

    deinit {
        // close() must not be retried on EINTR on Linux: the descriptor is already released.
        _ = Glibc.close(raw)
    }
}
