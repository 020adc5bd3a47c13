import XCTest
@testable import DSDocker

final class EventStreamTests: XCTestCase {
    static let die = #"{"status":"die","id":"abc","from":"ds-server:latest","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"137","name":"server-2"}},"scope":"local","time":1}"#

    func testLinesComeOutWhateverTheChunkAndReadBoundaries() throws {
        let body = Self.die + "\n" + #"{"Type":"network","Action":"connect"}"# + "\n"
        let bytes = Array(body.utf8)
        // Two chunks, split mid-line, fed one byte at a time.
        let cut = 40
        let wire = Array("\(String(cut, radix: 16))\r\n".utf8) + bytes[..<cut] + Array("\r\n\(String(bytes.count - cut, radix: 16))\r\n".utf8)
            + bytes[cut...] + Array("\r\n".utf8)
        var stream = ChunkedLineStream()
        var lines: [[UInt8]] = []
        for byte in wire { lines += try stream.feed([byte]) }
        XCTAssertEqual(lines.map { String(decoding: $0, as: UTF8.self) }, [Self.die, #"{"Type":"network","Action":"connect"}"#])
        XCTAssertFalse(stream.finished)
        _ = try stream.feed(Array("0\r\n\r\n".utf8))
        XCTAssertTrue(stream.finished)
    }

    func testContainerEventsParse() {
        XCTAssertEqual(ContainerEvent.parse(Array(Self.die.utf8)), ContainerEvent(action: "die", id: "abc", name: "server-2"))
        XCTAssertNil(ContainerEvent.parse(Array(#"{"Type":"network","Action":"connect"}"#.utf8)))
        XCTAssertNil(ContainerEvent.parse(Array("not json".utf8)))
    }

    func testBadChunkSizeIsAnError() {
        var stream = ChunkedLineStream()
        XCTAssertThrowsError(try stream.feed(Array("zz\r\n".utf8)))
    }

    func testEventsStreamFromTheEngine() throws {
        let engine = try FakeEngine { line in
            if line.hasPrefix("GET /version ") { return FakeEngineTests.json("200 OK", #"{"ApiVersion":"1.41"}"#) }
            let event = Self.die + "\n"
            return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "\(String(event.utf8.count, radix: 16))\r\n\(event)\r\n"
        }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: 2)
        var events: [ContainerEvent] = []
        XCTAssertThrowsError(try client.streamContainerEvents(labels: ["ds-lb.pool=p"]) { events.append($0) })
        XCTAssertEqual(events, [ContainerEvent(action: "die", id: "abc", name: "server-2")])
        XCTAssertEqual(engine.requestLines.last,
                       "GET /v1.41/events?filters=%7B%22label%22%3A%5B%22ds-lb.pool%3Dp%22%5D%2C%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1")
    }
}
