import XCTest

@testable import DSProxy

/// Per-worker counters summed when read: the handle the supervisor reads and `/metrics` must see
/// every worker's counts, exactly, and a forgotten replica's series must go.
final class ProxyMetricsTests: XCTestCase {
    /// `/metrics` as series → value.
    private func series(_ metrics: ProxyMetrics) -> [String: Double] {
        var series: [String: Double] = [:]
        for line in metrics.render().split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            series[String(line[..<space])] = value
        }
        return series
    }

    func testCountsOfEveryWorkerAreSummedExactly() {
        let metrics = ProxyMetrics()
        let replica = metrics.replica("server-1")
        // Two workers, each writing its own shard from its own thread.
        let shards = [replica.makeShard(), replica.makeShard()]
        let counters = [metrics.makeWorkerCounters(), metrics.makeWorkerCounters()]
        let perWorker = 25_000
        DispatchQueue.concurrentPerform(iterations: 2) { worker in
            for request in 0..<perWorker {
                shards[worker].begin()
                // One in five fails; the rest take 0.5 ms (worker 0) or 3 ms (worker 1).
                if request % 5 == 0 {
                    shards[worker].countFailure()
                    shards[worker].end(answered: false, nanoseconds: 0)
                    counters[worker].count(.connect)
                } else {
                    shards[worker].end(answered: true, nanoseconds: worker == 0 ? 500_000 : 3_000_000)
                }
            }
            counters[worker].countSpliced(request: worker == 0, bytes: 1000)
        }
        // Both still in flight on worker 1.
        shards[1].begin()
        shards[1].begin()

        let answered = 2 * perWorker * 4 / 5
        XCTAssertEqual(replica.served, answered)
        XCTAssertEqual(replica.failures, 2 * perWorker / 5)
        XCTAssertEqual(replica.inFlight, 2)
        XCTAssertIdentical(metrics.replica("server-1"), replica, "one handle per name")

        let s = series(metrics)
        XCTAssertEqual(s["dslb_replica_requests_total{replica=\"server-1\"}"], Double(answered))
        XCTAssertEqual(s["dslb_replica_in_flight_requests{replica=\"server-1\"}"], 2)
        XCTAssertEqual(s["dslb_replica_response_seconds_bucket{replica=\"server-1\",le=\"0.001\"}"], Double(answered / 2))
        XCTAssertEqual(s["dslb_replica_response_seconds_bucket{replica=\"server-1\",le=\"0.002\"}"], Double(answered / 2))
        XCTAssertEqual(s["dslb_replica_response_seconds_bucket{replica=\"server-1\",le=\"0.005\"}"], Double(answered))
        XCTAssertEqual(s["dslb_replica_response_seconds_bucket{replica=\"server-1\",le=\"+Inf\"}"], Double(answered))
        XCTAssertEqual(s["dslb_replica_response_seconds_count{replica=\"server-1\"}"], Double(answered))
        let sum = try? XCTUnwrap(s["dslb_replica_response_seconds_sum{replica=\"server-1\"}"])
        XCTAssertEqual(sum ?? 0, Double(answered / 2) * 0.0035, accuracy: 1e-6)
        XCTAssertEqual(s["dslb_errors_total{kind=\"connect\"}"], Double(2 * perWorker / 5))
        XCTAssertEqual(s["dslb_errors_total{kind=\"timeout\"}"], 0)
        XCTAssertEqual(s["dslb_spliced_body_bytes_total{direction=\"request\"}"], 1000)
        XCTAssertEqual(s["dslb_spliced_body_bytes_total{direction=\"response\"}"], 1000)
        XCTAssertEqual(s["dslb_bounded_load_moved_total"], 0)
        let text = metrics.render()
        XCTAssertTrue(text.contains("# TYPE dslb_replica_response_seconds histogram\n"), text)
        XCTAssertTrue(text.contains("# TYPE dslb_replica_requests_total counter\n"), text)
    }

    func testAResponseOnABucketBoundCountsInThatBucket() {
        let metrics = ProxyMetrics()
        let shard = metrics.replica("r").makeShard()
        shard.begin()
        shard.end(answered: true, nanoseconds: 1_000_000)
        shard.begin()
        shard.end(answered: true, nanoseconds: 20_000_000_000)
        let s = series(metrics)
        XCTAssertEqual(s["dslb_replica_response_seconds_bucket{replica=\"r\",le=\"0.001\"}"], 1)
        XCTAssertEqual(s["dslb_replica_response_seconds_bucket{replica=\"r\",le=\"10.0\"}"], 1)
        XCTAssertEqual(s["dslb_replica_response_seconds_bucket{replica=\"r\",le=\"+Inf\"}"], 2)
    }

    func testForgetTakesTheSeriesOffAndANewHandleCountsFromZero() {
        let metrics = ProxyMetrics()
        let old = metrics.replica("S5")
        let shard = old.makeShard()
        shard.begin()
        shard.end(answered: true, nanoseconds: 1000)
        _ = metrics.replica("server-1")
        metrics.forget("S5")
        XCTAssertTrue(old.isRetired)
        XCTAssertEqual(series(metrics).filter { $0.key.contains("replica=\"S5\"") }, [:])
        XCTAssertEqual(series(metrics)["dslb_replica_requests_total{replica=\"server-1\"}"], 0, "the others keep theirs")
        // A late request on the old handle still counts there, not on the new one.
        shard.begin()
        shard.end(answered: true, nanoseconds: 1000)
        XCTAssertEqual(old.served, 2)
        let again = metrics.replica("S5")
        XCTAssertNotIdentical(again, old)
        XCTAssertFalse(again.isRetired)
        XCTAssertEqual(again.served, 0)
        XCTAssertEqual(series(metrics)["dslb_replica_requests_total{replica=\"S5\"}"], 0)
    }

    func testLabelValuesAreEscaped() {
        XCTAssertEqual(ProxyMetrics.escaped("server-1"), "server-1")
        XCTAssertEqual(ProxyMetrics.escaped("a\"b\\c\nd"), "a\\\"b\\\\c\\nd")
    }
}
