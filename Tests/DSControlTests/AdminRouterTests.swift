import DSBalancer
import DSHTTP1
import DSProxy
import DSReactor
import DSSystem
import DSTestSupport
import Foundation
import Logging
import XCTest

@testable import DSControl

/// The admin router answers reads from the view the control loop published and refuses bad
/// requests itself: neither waits for the control loop (which may be busy with a slow `/add`).
final class AdminRouterTests: XCTestCase {
    /// Two static replicas, bootstrapped, for `workers` workers; the control loop is not running.
    /// Nothing listens at their addresses, so their checks fail from the start; `fall` keeps
    /// them UP regardless, or they would go DOWN (a snapshot published each) a fast interval
    /// into the test.
    private func twoReplicas(
        workers: Int = 0, logger: Logger = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
    ) throws -> (EventLoop, Supervisor) {
        let loop = try EventLoop()
        let driver = StaticDriver(backends: [DSBalancerBackend.make("server-1", 1), DSBalancerBackend.make("server-2", 2)])
        var config = SupervisorConfig()
        config.fall = 1_000
        let supervisor = Supervisor(
            loop: loop, driver: driver, algorithm: .ring, config: config, workers: workers, logger: logger)
        try supervisor.bootstrap(replicas: 0) {}
        return (loop, supervisor)
    }

    /// Submits `request` and returns the answer given before `submit` returned (nil if none was).
    private func answerAtOnce(
        _ router: AdminRouter, _ method: String, _ path: String, query: String? = nil,
        body: String = ""
    ) -> AdminResponse? {
        let answer = Locked<AdminResponse?>(nil)
        router.submit(AdminRequest(method: method, path: path, query: query, body: Array(body.utf8))) { response in
            answer.withLock { $0 = response }
        }
        return answer.withLock { $0 }
    }

    func testReadsAreAnsweredFromThePublishedViewWithoutTheControlLoop() throws {
        let (_, supervisor) = try twoReplicas()
        let router = supervisor.admin

        let rep = try XCTUnwrap(answerAtOnce(router, "GET", "/rep"), "/rep waited for the control loop")
        XCTAssertEqual(rep.status, .ok)
        XCTAssertEqual(rep.body, #"{"message": {"N": 2, "replicas": ["server-1", "server-2"]}, "status": "successful"}"#)

        let status = try XCTUnwrap(answerAtOnce(router, "GET", "/status"), "/status waited for the control loop")
        XCTAssertEqual(status.status, .ok)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(status.body.utf8)) as? [String: Any])
        let message = try XCTUnwrap(json["message"] as? [String: Any])
        XCTAssertEqual(message["generation"] as? Int, Int(supervisor.publisher.latest().generation))
        XCTAssertEqual(message["driver"] as? String, "static")
        XCTAssertEqual(message["N"] as? Int, 2)
        let replicas = try XCTUnwrap(message["replicas"] as? [[String: Any]])
        XCTAssertEqual(replicas.map { $0["name"] as? String }, ["server-1", "server-2"])
        XCTAssertEqual(replicas.map { $0["address"] as? String }, ["127.0.0.1:20001", "127.0.0.1:20002"])
        XCTAssertEqual(replicas.map { $0["state"] as? String }, ["UP", "UP"])

        let metrics = try XCTUnwrap(answerAtOnce(router, "GET", "/metrics"), "/metrics waited for the control loop")
        XCTAssertEqual(metrics.status, .ok)
        XCTAssertTrue(metrics.contentType.hasPrefix("text/plain"))
        XCTAssertTrue(metrics.body.contains("dslb_pool_replicas 2"), metrics.body)
    }

    func testBadRequestsAreRefusedWithoutTheControlLoop() throws {
        let (_, supervisor) = try twoReplicas()
        let router = supervisor.admin
        let cases: [(String, String, String?, String, HTTPStatus, String, String)] = [
            ("POST", "/add", nil, "{", .badRequest, "<Error> Request body is not valid JSON", ""),
            ("POST", "/add", nil, #"{"n": "2"}"#, .badRequest, "<Error> 'n' must be a positive integer", ""),
            ("DELETE", "/rm", "id=x", "", .badRequest, "<Error> 'id' must be a positive integer, got 'x'", ""),
            ("DELETE", "/rm", "id=%G1", "", .badRequest, "<Error> Query parameter 'id' has a malformed percent-escape", ""),
            ("DELETE", "/rm", "id=%3", "", .badRequest, "<Error> Query parameter 'id' has a malformed percent-escape", ""),
            ("DELETE", "/rm", "i%d=1", "", .badRequest, "<Error> Query parameter 'i%d' has a malformed percent-escape", ""),
            // Names are decoded too: "%69d" is "id".
            ("DELETE", "/rm", "%69d=x", "", .badRequest, "<Error> 'id' must be a positive integer, got 'x'", ""),
            // A plus is a plus (not a space), as in the data plane's keys.
            ("DELETE", "/rm", "id=1+1", "", .badRequest, "<Error> 'id' must be a positive integer, got '1+1'", ""),
            ("DELETE", "/rm", "id=%20", "", .badRequest, "<Error> 'id' must be a positive integer, got ' '", ""),
            // Given twice, even with the same value or once under another spelling: which to remove?
            ("DELETE", "/rm", "id=1&id=2", "", .badRequest, "<Error> Query parameter 'id' is given more than once", ""),
            ("DELETE", "/rm", "id=1&%69d=1", "", .badRequest, "<Error> Query parameter 'id' is given more than once", ""),
            ("DELETE", "/rm", "id&id=2", "", .badRequest, "<Error> Query parameter 'id' is given more than once", ""),
            // A malformed name after the id may name it too.
            ("DELETE", "/rm", "id=1&i%d=2", "", .badRequest, "<Error> Query parameter 'i%d' has a malformed percent-escape", ""),
            (
                "DELETE", "/rm", "id=1", #"{"n": 1}"#, .badRequest,
                "<Error> Name the replica either as ?id= or in the body, not both", ""
            ),
            (
                "DELETE", "/rm", nil, #"{"m": 1}"#, .badRequest,
                "<Error> Unknown key 'm': the body takes only 'n', 'hostnames' and 'weight'", ""
            ),
            ("PUT", "/rep", nil, "", .methodNotAllowed, "<Error> Method PUT not allowed on /rep; use GET", "Allow: GET\r\n"),
            ("GET", "/add", nil, "", .methodNotAllowed, "<Error> Method GET not allowed on /add; use POST", "Allow: POST\r\n"),
            (
                "POST", "/rm", nil, "", .methodNotAllowed, "<Error> Method POST not allowed on /rm; use DELETE",
                "Allow: DELETE\r\n"
            ),
            ("GET", "/home", nil, "", .notFound, "<Error> '/home' is not an admin endpoint", ""),
        ]
        for (method, path, query, body, status, message, headers) in cases {
            let response = try XCTUnwrap(
                answerAtOnce(router, method, path, query: query, body: body), "\(method) \(path) \(body)")
            XCTAssertEqual(response.status, status, "\(method) \(path) \(body)")
            XCTAssertEqual(
                response.body, JSON.object(["message": .string(message), "status": .string("failure")]),
                "\(method) \(path) \(body)")
            XCTAssertEqual(response.extraHeaders, headers, "\(method) \(path) \(body)")
        }
    }

    /// A command is answered once the view shows what it did: a `/rep` sent right after the
    /// answer lists the pool the command made.
    func testTheViewShowsACommandWhenItIsAnswered() throws {
        let (loop, supervisor) = try twoReplicas()
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }
        let router = supervisor.admin

        let answered = expectation(description: "answer")
        let response = Locked<AdminResponse?>(nil)
        // Percent-decoded: "%31" is "1".
        router.submit(AdminRequest(method: "DELETE", path: "/rm", query: "id=%31", body: [])) { answer in
            response.withLock { $0 = answer }
            answered.fulfill()
        }
        wait(for: [answered], timeout: 10)
        let removed = try XCTUnwrap(response.withLock { $0 })
        XCTAssertEqual(removed.status, .ok, removed.body)
        XCTAssertEqual(removed.body, #"{"message": {"N": 1, "replicas": ["server-2"]}, "status": "successful"}"#)
        XCTAssertEqual(answerAtOnce(router, "GET", "/rep")?.body, removed.body)
        XCTAssertEqual(supervisor.view.latest().poolNames, ["server-2"])
    }

    /// Submits `request` and waits for its answer (the control loop must be running).
    private func answer(_ router: AdminRouter, _ method: String, _ path: String, body: String) throws -> AdminResponse {
        let answered = expectation(description: "\(method) \(path) \(body)")
        let response = Locked<AdminResponse?>(nil)
        router.submit(AdminRequest(method: method, path: path, query: nil, body: Array(body.utf8))) { answer in
            response.withLock { $0 = answer }
            answered.fulfill()
        }
        wait(for: [answered], timeout: 10)
        return try XCTUnwrap(response.withLock { $0 })
    }

    /// `PATCH /weight` publishes a snapshot whose table has the new weight, `/status` shows it,
    /// `/rep` does not change; bad weights and unknown names change nothing.
    func testWeightChangesPublishANewSnapshot() throws {
        let (loop, supervisor) = try twoReplicas()
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }
        let router = supervisor.admin
        let rep = answerAtOnce(router, "GET", "/rep")?.body
        let before = supervisor.publisher.latest().generation

        let changed = try answer(router, "PATCH", "/weight", body: #"{"hostnames": ["server-2"], "weight": 3}"#)
        XCTAssertEqual(changed.status, .ok, changed.body)
        let snapshot = supervisor.publisher.latest()
        XCTAssertGreaterThan(snapshot.generation, before)
        XCTAssertEqual(snapshot.table.members.map(\.weight), [1, 3])
        XCTAssertEqual(answerAtOnce(router, "GET", "/rep")?.body, rep, "/rep shows names only")
        let status = try XCTUnwrap(answerAtOnce(router, "GET", "/status")?.body)
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(status.utf8)) as? [String: Any])
        let replicas = try XCTUnwrap((json["message"] as? [String: Any])?["replicas"] as? [[String: Any]])
        XCTAssertEqual(replicas.map { $0["weight"] as? Int }, [1, 3], status)

        let posted = try answer(router, "POST", "/weight", body: #"{"hostnames": ["server-1"], "weight": 0}"#)
        XCTAssertEqual(posted.status, .ok, posted.body)
        XCTAssertEqual(supervisor.publisher.latest().table.members.map(\.weight), [0, 3])

        let generation = supervisor.publisher.latest().generation
        let refused: [(String, HTTPStatus, String)] = [
            (
                #"{"hostnames": ["server-1"], "weight": -1}"#, .badRequest,
                "<Error> 'weight' must be an integer from 0 to 256, got -1"
            ),
            (
                #"{"hostnames": ["server-1"], "weight": 257}"#, .badRequest,
                "<Error> 'weight' must be an integer from 0 to 256, got 257"
            ),
            (#"{"hostnames": ["server-1"], "weight": "x"}"#, .badRequest, "<Error> 'weight' must be an integer from 0 to 256"),
            (#"{"hostnames": ["server-1"], "weight": null}"#, .badRequest, "<Error> 'weight' must be an integer from 0 to 256"),
            (#"{"hostnames": ["nope"], "weight": 2}"#, .notFound, "<Error> Hostname 'nope' is not in the pool"),
        ]
        for (body, status, message) in refused {
            let response = try answer(router, "PATCH", "/weight", body: body)
            XCTAssertEqual(response.status, status, body)
            XCTAssertEqual(response.body, JSON.object(["message": .string(message), "status": .string("failure")]), body)
        }
        XCTAssertEqual(supervisor.publisher.latest().generation, generation, "a refused change publishes nothing")
        XCTAssertEqual(supervisor.publisher.latest().table.members.map(\.weight), [0, 3])
        let wrongMethod = try XCTUnwrap(answerAtOnce(router, "GET", "/weight"))
        XCTAssertEqual(wrongMethod.status, .methodNotAllowed)
        XCTAssertEqual(wrongMethod.extraHeaders, "Allow: PATCH, POST\r\n")
    }

    /// Sends `PATCH /weight` for server-2; the answer lands in the returned box.
    private func submitWeight(_ weight: Int, to supervisor: Supervisor) -> Locked<AdminResponse?> {
        let answer = Locked<AdminResponse?>(nil)
        let body = #"{"hostnames": ["server-2"], "weight": \#(weight)}"#
        supervisor.admin.submit(AdminRequest(method: "PATCH", path: "/weight", query: nil, body: Array(body.utf8))) {
            response in answer.withLock { $0 = response }
        }
        return answer
    }

    /// The answer in `answer` once there is one, or nil after `seconds`.
    private func waitFor(_ answer: Locked<AdminResponse?>, seconds: Double) -> AdminResponse? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let response = answer.withLock({ $0 }) { return response }
            usleep(1_000)
        }
        return nil
    }

    /// A command answers once every worker runs the snapshot it published (a request sent after
    /// the answer is routed by the new pool); a worker that never switches holds the answer up
    /// only for the cap, after which it comes with a warning.
    func testACommandAnswersOnceEveryWorkerTookItsSnapshot() throws {
        let log = CapturedLog()
        let (loop, supervisor) = try twoReplicas(workers: 2, logger: log.logger)
        var workers = (0..<2).map { SnapshotPublisher.Reader(publisher: supervisor.publisher, worker: $0) }
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }

        let before = supervisor.publisher.currentGeneration
        let first = submitWeight(3, to: supervisor)
        let deadline = Date().addingTimeInterval(10)
        while supervisor.publisher.currentGeneration == before && Date() < deadline { usleep(1_000) }
        XCTAssertGreaterThan(supervisor.publisher.currentGeneration, before, "PATCH /weight published nothing")
        workers[0].refresh()
        XCTAssertNil(waitFor(first, seconds: 0.1), "answered while worker 1 still ran the old snapshot")
        workers[1].refresh()
        XCTAssertEqual(waitFor(first, seconds: 10)?.status, .ok, "no answer once both workers switched")
        XCTAssertFalse(log.messages.contains { $0.contains("Not every worker") }, "\(log.messages)")

        // Worker 1 never switches again: the answer still comes, after the cap, and says so.
        let second = submitWeight(2, to: supervisor)
        XCTAssertEqual(waitFor(second, seconds: 60)?.status, .ok, "no answer after the cap")
        XCTAssertTrue(log.waitFor("Not every worker switched"), "\(log.messages)")
    }

    /// A worker whose loop has ended routes nothing: a command answers once the live workers
    /// took its snapshot, without waiting out the cap (and warning) for the one that is gone.
    func testACommandDoesNotWaitForAWorkerWhoseLoopEnded() throws {
        let log = CapturedLog()
        let (loop, supervisor) = try twoReplicas(workers: 2, logger: log.logger)
        let stopLoop = startControlLoop(loop, keeping: supervisor)
        defer { stopLoop() }

        let exited = DispatchSemaphore(value: 0)
        func startWorker(_ index: Int) throws -> EventLoop {
            try Worker.start(
                index: index, listenFD: nil, publisher: supervisor.publisher,
                config: ProxyConfig(adminAllow: ProxyConfig.defaultAdminAllow()), admin: nil, metrics: supervisor.metrics,
                onUnreachable: { _ in }, onExit: { exited.signal() })
        }
        let live = try startWorker(0)
        defer {
            live.stop()
            XCTAssertEqual(exited.wait(timeout: .now() + 20), .success, "worker 0's loop did not end")
        }
        let ended = try startWorker(1)
        ended.stop()
        XCTAssertEqual(exited.wait(timeout: .now() + 20), .success, "worker 1's loop did not end")

        let answer = submitWeight(3, to: supervisor)
        // Waits well past the cap: what tells a wait for the ended worker is the warning, not the time.
        XCTAssertEqual(waitFor(answer, seconds: 60)?.status, .ok, "no answer")
        XCTAssertFalse(log.messages.contains { $0.contains("Not every worker") }, "waited for the ended worker: \(log.messages)")
        XCTAssertEqual(supervisor.publisher.latest().table.members.map(\.weight), [1, 3])
    }
}
