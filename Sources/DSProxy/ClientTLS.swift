import DSReactor
import DSSystem
import DSTLS

/// The TLS side of a client connection whose handshake is done: its reads and writes as the
/// socket's would report them, so the connection's machine and the exchange run unchanged over
/// it. Loop thread only.
///
/// A TLS read can need the socket to be writable (and a write readable): such a call reports
/// `wouldBlock`, and the event it waits for re-opens the *other* direction (`wake`).
final class ClientTLS {
    let session: TLSSession
    /// Plain bytes may be spliced to and from the socket: only when the kernel does the record
    /// layer (kTLS). Otherwise bodies go through SSL_read/SSL_write and the buffers.
    let canSplice: Bool
    private var readWantsWritable = false
    private var writeWantsReadable = false

    init(session: TLSSession) {
        self.session = session
        canSplice = session.kernelTLS
    }

    /// Called with each event before the connection runs: a read that waited for the socket
    /// to be writable, or a write that waited for it to be readable, may go on.
    @inline(__always)
    func wake(_ events: IOEvents, mayRead: inout Bool, mayWrite: inout Bool) {
        if readWantsWritable && events.contains(.writable) {
            readWantsWritable = false
            mayRead = true
        }
        if writeWantsReadable && (events.contains(.readable) || events.contains(.readHangup)) {
            writeWantsReadable = false
            mayWrite = true
        }
    }

    /// Decrypts into `buffer`'s free space. `.done(0)` is the end of the client's stream.
    /// Unlike a socket read, a short read does not mean the socket is empty (OpenSSL reads one
    /// record at a time): the caller reads on until `wouldBlock`.
    func read(into buffer: ByteBuffer, chunk: Int = 16 * 1024) throws -> IOResult<Int> {
        let space = buffer.reserve(chunk)
        switch session.read(into: space) {
        case .done(let n):
            buffer.commit(n)
            return .done(n)
        case .wantRead:
            return .wouldBlock
        case .wantWrite:
            readWantsWritable = true
            return .wouldBlock
        case .closed:
            return .done(0)
        case .failed(let reason):
            throw TLSStreamError(reason: reason)
        }
    }

    /// After a read that brought bytes: whether the socket is known to be empty, so the next
    /// read would only report `wouldBlock` (new bytes raise a new readable edge).
    var drainedSocket: Bool { session.drainedSocket }

    /// Encrypts and sends the front of `bytes`. After `wouldBlock` the same bytes must come
    /// first in the next call (the connection's buffers only consume what was written).
    func write(_ bytes: UnsafeRawBufferPointer) throws -> IOResult<Int> {
        switch session.write(bytes) {
        case .done(let n):
            return .done(n)
        case .wantWrite:
            return .wouldBlock
        case .wantRead:
            writeWantsReadable = true
            return .wouldBlock
        case .closed:
            throw TLSStreamError(reason: "the client closed the TLS stream")
        case .failed(let reason):
            throw TLSStreamError(reason: reason)
        }
    }

    /// Writes `buffer`'s unread bytes, consuming what went.
    func write(from buffer: ByteBuffer) throws -> IOResult<Int> {
        let result = try write(buffer.readable)
        if case .done(let n) = result { buffer.consume(n) }
        return result
    }
}

/// A TLS read or write that failed: the connection ends, as on a socket error.
struct TLSStreamError: Error, CustomStringConvertible {
    let reason: String
    var description: String { "TLS: \(reason)" }
}
