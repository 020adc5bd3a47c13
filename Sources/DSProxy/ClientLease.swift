import DSHTTP1
import DSReactor
import DSSystem

/// What a client connection lends its exchange or its tunnel for one call it makes to them:
/// the request bytes it has read (`input`), the buffer for bytes of ours to the client
/// (`output`: a 100 Continue, a relayed response head) and its socket's write entry points.
/// The borrower reads and consumes the buffers and writes through the lease; it never reads the
/// client's socket, changes the connection's state or closes it: what it needs of those, it
/// returns (`ExchangeStep`, `TunnelStep`) and the connection performs.
///
/// The lease holds the connection strongly and is passed borrowed: a use of the connection's
/// buffers (its `let` references) inside the call is then a use of borrowed values, and only
/// making the lease retains (and releases) the connection. (`unowned(unsafe)` references had
/// to be made strong again, with a retain and a release, at each use that spans a call.)
struct ClientLease {
    private let connection: ClientConnection

    @inline(__always)
    init(_ connection: ClientConnection) {
        self.connection = connection
    }

    var input: ByteBuffer {
        @inline(__always) get { connection.input }
    }

    var output: ByteBuffer {
        @inline(__always) get { connection.output }
    }

    /// The connection has closed during the call (a write to its socket failed).
    var closed: Bool { connection.closed }

    /// The client's socket may have bytes to read (no read has blocked since its last edge).
    var mayRead: Bool { connection.mayRead }

    /// The client's socket takes bytes (no write has blocked since its last edge).
    var mayWrite: Bool { connection.mayWrite }

    /// One write to the client's socket (`ClientConnection.writeToClient`).
    @inline(__always)
    func writeToClient(_ write: (Int32) throws -> IOResult<Int>) -> ClientConnection.WriteOutcome {
        connection.writeToClient(write)
    }

    /// One write of `bytes` to the client, through its TLS session if it has one
    /// (`ClientConnection.writeBytesToClient`).
    @inline(__always)
    func writeBytesToClient(_ bytes: UnsafeRawBufferPointer) -> ClientConnection.WriteOutcome {
        connection.writeBytesToClient(bytes)
    }

    /// Whether the client's socket carries plain bytes a splice may write (not TLS records
    /// encrypted in user space).
    var canSplice: Bool { connection.canSplice }

    /// Writes `output` (`ClientConnection.flushOutput`). True when nothing is left to write.
    @inline(__always)
    func flushOutput() -> Bool { connection.flushOutput() }

    /// The fields the proxy adds to the request's head (`ClientConnection.forwardedFields`).
    func forwardedFields(upgrading: Bool, http10: Bool, proto: Bool) -> [UInt8] {
        connection.forwardedFields(upgrading: upgrading, http10: http10, proto: proto)
    }

    /// Whether the client's own forwarded fields go on (`ClientConnection.trustsForwardedFields`).
    func trustsForwardedFields(of head: RequestHeadInfo) -> Bool {
        connection.trustsForwardedFields(of: head)
    }
}

/// The client connection as its exchange sees it between the connection's calls: the replica
/// socket's events go to it (`UpstreamOwner`), and a deadline of the exchange that passed is
/// reported to it with what it means (the connection acts on it and goes on).
protocol ExchangeOwner: UpstreamOwner {
    func exchangeDeadlinePassed(_ outcome: ExchangeOutcome)
}

/// How a call to an exchange left it, for its client connection to act on.
enum ExchangeOutcome {
    /// The exchange goes on (or nothing happened that the connection must act on).
    case goingOn
    /// The replica's response went to the client in full; `closeClient`: the connection ends
    /// after it.
    case ended(closeClient: Bool)
    /// The exchange ended with our own error answer; `unreadHead` bytes of the request head are
    /// still at the front of the client's input (to be dropped before the answer).
    case failed(ProxyError, closeClient: Bool, unreadHead: Int)
    /// The replica switched protocols: the relayed 101 head is in the client's output, and the
    /// connection becomes a tunnel to `upstream`.
    case upgraded(UpstreamConnection)
    /// The response cannot be completed (the replica or the client failed mid-body): the client
    /// connection is cut. The exchange has already let its replica connection go.
    case closeClient
}

/// What one `UpstreamExchange.step` did and needs.
struct ExchangeStep {
    /// What the exchange needs from the client's socket to go on with the request body.
    enum BodyWant {
        /// Bytes into the client's input.
        case read
        /// Bytes straight into `pipe`, at most `limit` (a body being spliced); the connection
        /// tells the exchange how many came (`requestBodySpliced`).
        case splice(SplicePipe, limit: Int)
    }

    /// Bytes moved or something changed (a connection attached): step again.
    var progressed: Bool
    /// Set when the body waits for client bytes the connection is to read.
    var wants: BodyWant?
    var outcome: ExchangeOutcome
}
