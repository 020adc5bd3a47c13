import XCTest

@testable import DSProxy

/// The tunnel's byte flow (`TunnelFlow`) without sockets: a simulated client and replica whose
/// sockets hold bytes to read, an end of stream, and room for bytes written, run by the same
/// loop `Tunnel.step` runs (ask for the next move, perform it, report what the socket did).
final class TunnelFlowTests: XCTestCase {
    /// One simulated peer socket.
    struct Peer {
        /// Bytes the peer has sent that a read takes, at most `readSize` at a time.
        var unread: [UInt8] = []
        /// The peer has closed its side: a read with nothing unread returns the end.
        var ended = false
        /// Bytes written to the peer.
        var received: [UInt8] = []
        /// How many more bytes the peer's socket takes before a write would block.
        var room = Int.max
    }

    struct Simulation {
        var flow = TunnelFlow()
        var sides = TunnelFlow.Sides()
        var client = Peer()
        var replica = Peer()
        /// The client connection's input (client bytes read, not yet written to the replica).
        var clientBuffer: [UInt8] = []
        /// Our own bytes for the client (the relayed 101 head).
        var own: [UInt8] = []
        /// The replica connection's input.
        var replicaBuffer: [UInt8] = []
        let readSize = 4
        var moves: [TunnelFlow.Move] = []

        /// Runs moves until the flow waits or closes; returns the last move.
        @discardableResult
        mutating func run() -> TunnelFlow.Move {
            for _ in 0..<10_000 {
                sides.clientBuffered = !clientBuffer.isEmpty
                sides.ownQueued = !own.isEmpty
                sides.replicaBuffered = !replicaBuffer.isEmpty
                let move = flow.next(sides)
                moves.append(move)
                switch move {
                case .readClient:
                    switch read(&client, into: &clientBuffer) {
                    case .bytes: break
                    case .end: flow.clientEOF()
                    case .wouldBlock: sides.clientReadable = false
                    }
                case .readReplica:
                    switch read(&replica, into: &replicaBuffer) {
                    case .bytes: break
                    case .end: flow.replicaEOF()
                    case .wouldBlock: sides.replicaReadable = false
                    }
                case .writeToReplica:
                    if !write(&clientBuffer, to: &replica) { sides.replicaWritable = false }
                case .flushOwn:
                    if !write(&own, to: &client) { sides.clientWritable = false }
                case .writeToClient:
                    if !write(&replicaBuffer, to: &client) { sides.clientWritable = false }
                case .wait, .close:
                    return move
                }
            }
            XCTFail("the flow never waited or closed: \(moves.suffix(10))")
            return .wait
        }

        enum Read { case bytes, end, wouldBlock }

        /// One read of at most `readSize` bytes from `peer` into `buffer`.
        private func read(_ peer: inout Peer, into buffer: inout [UInt8]) -> Read {
            guard !peer.unread.isEmpty else { return peer.ended ? .end : .wouldBlock }
            let bytes = peer.unread.prefix(readSize)
            buffer += bytes
            peer.unread.removeFirst(bytes.count)
            return .bytes
        }

        /// False when the peer takes nothing (the write would block).
        private func write(_ buffer: inout [UInt8], to peer: inout Peer) -> Bool {
            let n = min(buffer.count, peer.room)
            guard n > 0 else { return false }
            peer.received += buffer.prefix(n)
            buffer.removeFirst(n)
            peer.room -= n
            return true
        }

        /// A writable edge: the client takes everything from now on.
        mutating func clientReadsAgain() {
            client.room = .max
            sides.clientWritable = true
        }

        mutating func replicaReadsAgain() {
            replica.room = .max
            sides.replicaWritable = true
        }

        /// A readiness edge: the client's socket has bytes (or its end) to read.
        mutating func clientSends(_ text: String, end: Bool = false) {
            client.unread += Array(text.utf8)
            client.ended = client.ended || end
            sides.clientReadable = true
        }

        mutating func replicaSends(_ text: String, end: Bool = false) {
            replica.unread += Array(text.utf8)
            replica.ended = replica.ended || end
            sides.replicaReadable = true
        }
    }

    func testBytesGoBothWaysUnchangedAndTheTunnelWaits() {
        var sim = Simulation()
        sim.clientSends("hello, replica")
        sim.replicaSends("hello, client")
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(String(decoding: sim.replica.received, as: UTF8.self), "hello, replica")
        XCTAssertEqual(String(decoding: sim.client.received, as: UTF8.self), "hello, client")
        // More later, each way: the next edge moves it.
        sim.clientSends("again")
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(String(decoding: sim.replica.received, as: UTF8.self), "hello, replicaagain")
    }

    func testTheRelayed101HeadGoesBeforeAnyReplicaByte() {
        var sim = Simulation()
        sim.own = Array("HTTP/1.1 101 Switching Protocols\r\n\r\n".utf8)
        sim.replicaSends("frame")
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(
            String(decoding: sim.client.received, as: UTF8.self), "HTTP/1.1 101 Switching Protocols\r\n\r\nframe")
    }

    func testTheClientsEndClosesTheTunnelOnceItsBytesWentOn() {
        var sim = Simulation()
        sim.replica.room = 3
        sim.clientSends("goodbye", end: true)
        XCTAssertEqual(sim.run(), .wait, "the replica takes 3 bytes: the rest waits, and so does the end")
        XCTAssertEqual(sim.replica.received, Array("goo".utf8))
        XCTAssertFalse(sim.flow.clientEnded, "the client's end is not read while its bytes wait")
        sim.replicaReadsAgain()
        XCTAssertEqual(sim.run(), .close)
        XCTAssertEqual(String(decoding: sim.replica.received, as: UTF8.self), "goodbye")
        XCTAssertTrue(sim.flow.clientEnded)
    }

    func testTheReplicasEndClosesTheTunnelOnceItsBytesReachedTheClient() {
        var sim = Simulation()
        sim.replicaSends("last words", end: true)
        sim.client.room = 4
        XCTAssertEqual(sim.run(), .wait, "the client has not taken everything yet")
        XCTAssertEqual(sim.client.received, Array("last".utf8))
        sim.clientReadsAgain()
        XCTAssertEqual(sim.run(), .close)
        XCTAssertEqual(String(decoding: sim.client.received, as: UTF8.self), "last words")
        XCTAssertTrue(sim.flow.replicaEnded)
    }

    func testOurOwnBytesStillGoOutBeforeTheReplicasEndClosesTheTunnel() {
        var sim = Simulation()
        sim.own = Array("HTTP/1.1 101 Switching Protocols\r\n\r\n".utf8)
        sim.replicaSends("", end: true)
        sim.client.room = 0
        sim.sides.clientWritable = true
        XCTAssertEqual(sim.run(), .wait, "our bytes wait for the client, and so does the replica's end")
        XCTAssertFalse(sim.flow.replicaEnded)
        sim.clientReadsAgain()
        XCTAssertEqual(sim.run(), .close)
        XCTAssertEqual(String(decoding: sim.client.received, as: UTF8.self), "HTTP/1.1 101 Switching Protocols\r\n\r\n")
    }

    func testAHalfClosedClientStillGetsTheReplicasBytesUntilItsOwnHaveGone() {
        // The client's end arrives with its last bytes: the tunnel closes once those reached
        // the replica, not before; replica bytes that came meanwhile are relayed first.
        var sim = Simulation()
        sim.replicaSends("reply")
        sim.clientSends("req", end: true)
        XCTAssertEqual(sim.run(), .close)
        XCTAssertEqual(String(decoding: sim.replica.received, as: UTF8.self), "req")
        XCTAssertEqual(String(decoding: sim.client.received, as: UTF8.self), "reply")
    }

    func testAClientThatDoesNotReadHoldsAtMostOneReadOfTheReplicasBytes() {
        var sim = Simulation()
        sim.client.room = 0
        sim.replicaSends(String(repeating: "x", count: 100))
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(sim.replicaBuffer.count, sim.readSize, "one read's worth is buffered, no more")
        XCTAssertEqual(sim.replica.unread.count, 100 - sim.readSize, "the rest stays in the replica's socket")
        XCTAssertEqual(sim.moves.filter { $0 == .readReplica }.count, 1)
        // The client reads again: everything flows.
        sim.clientReadsAgain()
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(sim.client.received.count, 100)
    }

    func testAReplicaThatDoesNotReadHoldsAtMostOneReadOfTheClientsBytes() {
        var sim = Simulation()
        sim.replica.room = 0
        sim.clientSends(String(repeating: "y", count: 50))
        sim.replicaSends("still talking")
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(sim.clientBuffer.count, sim.readSize)
        XCTAssertEqual(sim.client.unread.count, 50 - sim.readSize)
        XCTAssertEqual(
            String(decoding: sim.client.received, as: UTF8.self), "still talking",
            "the other direction goes on while this one is blocked")
        sim.replicaReadsAgain()
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(sim.replica.received.count, 50)
    }

    func testNothingToMoveWaitsWithoutReading() {
        var sim = Simulation()
        sim.sides.clientReadable = false
        sim.sides.replicaReadable = false
        XCTAssertEqual(sim.run(), .wait)
        XCTAssertEqual(sim.moves, [.wait])
    }
}
