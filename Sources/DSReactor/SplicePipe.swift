import DSSystem

#if canImport(Glibc)
import Glibc
#endif

/// A pipe that moves body bytes from one socket to another with splice(2), so they never enter
/// user space (docs/ARCHITECTURE.md §3: bodies above a size threshold move through a pipe).
/// One per direction per connection, made on first use. Loop thread only.
///
/// The pipe is filled only when empty: a splice into an empty pipe that would block can only
/// mean the source socket has nothing to read, which is what edge-triggered readiness needs to
/// know (a partly full pipe could refuse for lack of slots while the socket still has data, and
/// the loop would then wait for an EPOLLIN that never comes).
package final class SplicePipe {
    private let readEnd: FileDescriptor
    private let writeEnd: FileDescriptor
    /// Bytes in the pipe, not yet spliced to the destination.
    package private(set) var buffered = 0

    package init() throws {
        let (readFD, writeFD) = try Splice.makePipe()
        readEnd = FileDescriptor(adopting: readFD)
        writeEnd = FileDescriptor(adopting: writeFD)
        // A larger pipe moves more per splice pair (the default is 64 KiB); 1 MiB is the usual
        // unprivileged maximum (/proc/sys/fs/pipe-max-size); failure just leaves the default size.
        _ = Splice.setPipeSize(writeEnd.rawValue, Int32(Self.preferredSize))
    }

    static let preferredSize = 1 << 20

    /// Moves up to `limit` bytes from socket `source` into the (empty) pipe. `.done(0)` is EOF;
    /// `.wouldBlock` means the source has nothing to read now.
    package func fill(from source: Int32, limit: Int) throws -> IOResult<Int> {
        precondition(buffered == 0, "fill only an empty pipe")
        let result = try nonBlockingSyscall("splice(socket→pipe)") {
            Splice.splice(from: source, to: writeEnd.rawValue, length: limit)
        }
        switch result {
        case .wouldBlock: return .wouldBlock
        case .done(let n):
            buffered += n
            return .done(n)
        }
    }

    /// Moves buffered bytes to socket `destination`. `.wouldBlock`: it cannot take more now.
    package func drain(to destination: Int32) throws -> IOResult<Int> {
        guard buffered > 0 else { return .done(0) }
        let result = try nonBlockingSyscall("splice(pipe→socket)") {
            Splice.splice(from: readEnd.rawValue, to: destination, length: buffered)
        }
        switch result {
        case .wouldBlock: return .wouldBlock
        case .done(let n):
            buffered -= n
            return .done(n)
        }
    }
}
