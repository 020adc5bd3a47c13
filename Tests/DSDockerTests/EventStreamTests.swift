import DSDockerTestSupport
import DSSystem
import XCTest

@testable import DSDocker

final class EventStreamTests: XCTestCase {
    static let die =
        #"{"status":"die","id":"abc","from":"ds-server:latest","Type":"container","Action":"die","Actor":{"ID":"abc","Attributes":{"exitCode":"137","name":"server-2"}},"scope":"local","time":1}"#

    func testContainerEventsParse() {
        XCTAssertEqual(ContainerEvent.parse(Array(Self.die.utf8)), ContainerEvent(action: "die", id: "abc", name: "server-2"))
        XCTAssertNil(ContainerEvent.parse(Array(#"{"Type":"network","Action":"connect"}"#.utf8)))
        XCTAssertNil(ContainerEvent.parse(Array("not json".utf8)))
    }

    /// API 1.52 dropped the top-level `status`, `id` and `from`: the actor carries what we read.
    func testEventsWithoutTheOldTopLevelFieldsParse() {
        let line =
            #"{"Type":"container","Action":"kill","Actor":{"ID":"def","Attributes":{"name":"server-3","signal":"9"}},"scope":"local","time":1,"timeNano":1}"#
        XCTAssertEqual(ContainerEvent.parse(Array(line.utf8)), ContainerEvent(action: "kill", id: "def", name: "server-3"))
    }

    func testEventsStreamFromTheEngineLineByLineUntilItEnds() throws {
        let engine = try FakeEngine { request in
            if request.line.hasPrefix("GET /version ") { return FakeEngine.json("200 OK", #"{"ApiVersion":"1.41"}"#) }
            let event = Self.die + "\n"
            let half = event.utf8.count / 2
            // One event split over two chunks, a second line, then the stream ends.
            return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "\(String(half, radix: 16))\r\n\(String(event.prefix(half)))\r\n"
                + "\(String(event.utf8.count - half, radix: 16))\r\n\(String(event.dropFirst(half)))\r\n"
                + "b\r\n{\"x\":1234}\n\r\n"
        }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline)
        let events = Locked<[ContainerEvent]>([])
        let ended = expectation(description: "the stream ends")
        let reason = Locked<DockerError?>(nil)
        client.followContainerEvents(
            labels: ["ds-lb.pool=p"], onEvent: { event in events.withLock { $0.append(event) } },
            onEnd: { error in
                reason.withLock { $0 = error }; ended.fulfill()
            })
        wait(for: [ended], timeout: 60)
        XCTAssertEqual(events.withLock { $0 }, [ContainerEvent(action: "die", id: "abc", name: "server-2")])
        guard case .unreachable = reason.withLock({ $0 }) else {
            return XCTFail("ended with \(String(describing: reason.withLock { $0 }))")
        }
        XCTAssertEqual(
            engine.requestLines.last,
            "GET /v1.41/events?filters=%7B%22label%22%3A%5B%22ds-lb.pool%3Dp%22%5D%2C%22type%22%3A%5B%22container%22%5D%7D HTTP/1.1"
        )
    }

    func testAnEventsRequestTheEngineRefusesEndsWithItsMessage() throws {
        let engine = try FakeEngine { request in
            if request.line.hasPrefix("GET /version ") { return FakeEngine.json("200 OK", #"{"ApiVersion":"1.41"}"#) }
            return FakeEngine.json("400 Bad Request", #"{"message":"invalid filter 'label'"}"#)
        }
        defer { engine.stop() }
        let client = try DockerClient.connect(socketPath: engine.path, timeout: FakeEngine.answerDeadline)
        let ended = expectation(description: "the stream ends")
        let reason = Locked<DockerError?>(nil)
        client.followContainerEvents(
            labels: ["x"], onEvent: { _ in XCTFail("no events") },
            onEnd: { error in
                reason.withLock { $0 = error }; ended.fulfill()
            })
        wait(for: [ended], timeout: 60)
        XCTAssertEqual(reason.withLock { $0 }, .engine(status: 400, message: "invalid filter 'label'"))
    }
}
