import XCTest

@testable import DSDocker

final class DockerClientTests: XCTestCase {
    func testNegotiationTakesTheOlderOfOursAndTheServers() {
        let ours = APIVersion(1, 47)
        // Docker 20.10 (this machine): 1.41, minimum 1.12.
        XCTAssertEqual(
            APIVersion.negotiate(ours: ours, server: APIVersion(1, 41), serverMinimum: APIVersion(1, 12)).description, "1.41")
        // A newer engine is spoken to in our version.
        XCTAssertEqual(
            APIVersion.negotiate(ours: ours, server: APIVersion(1, 52), serverMinimum: APIVersion(1, 24)).description, "1.47")
        // Never below the server's minimum (Docker 29 refuses < 1.44).
        XCTAssertEqual(
            APIVersion.negotiate(ours: APIVersion(1, 41), server: APIVersion(1, 52), serverMinimum: APIVersion(1, 44))
                .description, "1.44")
    }

    func testVersionsCompareNumerically() {
        XCTAssertLessThan(APIVersion("1.9")!, APIVersion("1.41")!)
        XCTAssertNil(APIVersion("1"))
        XCTAssertNil(APIVersion("v1.41"))
    }

    func testContentLengthResponse() throws {
        let raw = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"Id\":\"abc\"}\n"
        let response = try DockerResponse.parse(Array(raw.utf8))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual((response.json as? [String: Any])?["Id"] as? String, "abc")
    }

    func testChunkedResponseIsDecoded() throws {
        let raw =
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\n[{\"Id\r\n8\r\n\":\"x\"}]\n\r\n0\r\nTrailer: y\r\n\r\n"
        let response = try DockerResponse.parse(Array(raw.utf8))
        XCTAssertEqual(response.text, "[{\"Id\":\"x\"}]\n")
    }

    func testTruncatedChunkedBodyIsAnError() {
        let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nshort"
        XCTAssertThrowsError(try DockerResponse.parse(Array(raw.utf8)))
    }

    /// The engine's chunked framing is held to the data plane's rules: junk after a chunk size,
    /// or a request line where a trailer would be, is a protocol error, not a body.
    func testMalformedChunkedFramingIsAProtocolError() {
        for body in ["2x\r\n[]\r\n0\r\n\r\n", "2\r\n[]\r\n0\r\nGET /x HTTP/1.1\r\n\r\n"] {
            let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
            XCTAssertThrowsError(try DockerResponse.parse(Array(raw.utf8)), body.debugDescription) { error in
                guard case .protocolError(let reason) = error as? DockerError else { return XCTFail("\(error)") }
                XCTAssertTrue(reason.hasPrefix("malformed chunked body from the engine: "), reason)
            }
        }
    }

    func testEngineMessageIsTheEnginesOwnText() throws {
        let body = "{\"message\":\"Conflict. The container name \\\"/server-9\\\" is already in use\"}"
        let raw = "HTTP/1.1 409 Conflict\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
        let response = try DockerResponse.parse(Array(raw.utf8))
        XCTAssertEqual(response.status, 409)
        XCTAssertEqual(response.engineMessage, "Conflict. The container name \"/server-9\" is already in use")
    }

    func testNoContentHasNoBody() throws {
        let response = try DockerResponse.parse(Array("HTTP/1.1 204 No Content\r\n\r\n".utf8))
        XCTAssertEqual(response.status, 204)
        XCTAssertTrue(response.body.isEmpty)
    }

    func testQueryIsPercentEncoded() {
        XCTAssertEqual(
            DockerClient.percentEncode("{\"label\":[\"ds-lb.pool=a b\"]}"),
            "%7B%22label%22%3A%5B%22ds-lb.pool%3Da%20b%22%5D%7D")
    }

    func testContainerListParses() throws {
        let json: [[String: Any]] = [
            [
                "Id": "0123456789abcdef", "Names": ["/server-1"], "State": "running", "Status": "Up 2 seconds",
                "Labels": ["ds-lb.managed": "true", "ds-lb.pool": "p"],
            ]
        ]
        let list = try ContainerSummary.parseList(json)
        XCTAssertEqual(
            list,
            [
                ContainerSummary(
                    id: "0123456789abcdef", name: "server-1", labels: ["ds-lb.managed": "true", "ds-lb.pool": "p"],
                    state: "running", status: "Up 2 seconds")
            ])
        XCTAssertEqual(list[0].shortID, "0123456789ab")
    }
}
