import DSBalancer
import DSHashing
import Foundation
import Synchronization
import XCTest

final class SnapshotPublisherTests: XCTestCase {
    private func snapshot(_ generation: UInt64, _ numbers: [Int], algorithm: HashAlgorithm = .default) -> Snapshot {
        Snapshot(generation: generation, backends: numbers.map { backend($0) }, algorithm: algorithm)
    }

    func testReaderSeesNewGenerationAfterPublishAndRefresh() {
        let first = snapshot(1, [1, 2, 3])
        let publisher = SnapshotPublisher(initial: first, workers: 2)
        var reader = SnapshotPublisher.Reader(publisher: publisher, worker: 0)
        XCTAssertTrue(reader.snapshot === first)
        XCTAssertEqual(reader.worker, 0)
        XCTAssertEqual(publisher.currentGeneration, 1)

        reader.refresh()
        XCTAssertTrue(reader.snapshot === first, "no publish: the same reference")

        let second = snapshot(2, [1, 2, 3, 4])
        publisher.publish(second)
        XCTAssertEqual(publisher.currentGeneration, 2)
        XCTAssertTrue(publisher.latest() === second)
        XCTAssertTrue(reader.snapshot === first, "a reader keeps its snapshot until it refreshes")
        reader.refresh()
        XCTAssertTrue(reader.snapshot === second)
        XCTAssertEqual(reader.snapshot.backends.count, 4)

        // Several publishes between refreshes: the reader jumps to the latest.
        publisher.publish(snapshot(3, [1]))
        let fifth = snapshot(5, [2, 5])
        publisher.publish(fifth)
        reader.refresh()
        XCTAssertTrue(reader.snapshot === fifth)
    }

    func testAllWorkersReached() {
        let publisher = SnapshotPublisher(initial: snapshot(1, [1]), workers: 3)
        XCTAssertTrue(publisher.allWorkersReached(1))
        XCTAssertFalse(publisher.allWorkersReached(2))
        var r0 = SnapshotPublisher.Reader(publisher: publisher, worker: 0)
        var r1 = SnapshotPublisher.Reader(publisher: publisher, worker: 1)
        publisher.publish(snapshot(2, [1, 2]))
        XCTAssertFalse(publisher.allWorkersReached(2), "nobody refreshed yet")
        r0.refresh()
        r1.refresh()
        XCTAssertFalse(publisher.allWorkersReached(2), "worker 2 has not switched")
        var r2 = SnapshotPublisher.Reader(publisher: publisher, worker: 2) // created after the publish
        XCTAssertEqual(r2.snapshot.generation, 2)
        XCTAssertTrue(publisher.allWorkersReached(2))
        XCTAssertTrue(publisher.allWorkersReached(1))
        XCTAssertFalse(publisher.allWorkersReached(3))
        publisher.publish(snapshot(3, [2]))
        r2.refresh()
        r0.refresh()
        XCTAssertFalse(publisher.allWorkersReached(3))
        r1.refresh()
        XCTAssertTrue(publisher.allWorkersReached(3))
    }

    /// A worker whose loop ended is not waited for; one started again for the same index is.
    func testAWorkerThatLeftIsNotWaitedFor() {
        let publisher = SnapshotPublisher(initial: snapshot(1, [1]), workers: 2)
        var live = SnapshotPublisher.Reader(publisher: publisher, worker: 0)
        let gone = SnapshotPublisher.Reader(publisher: publisher, worker: 1)
        publisher.publish(snapshot(2, [1, 2]))
        live.refresh()
        XCTAssertFalse(publisher.allWorkersReached(2), "worker 1 has not switched and has not left")
        gone.leave()
        XCTAssertTrue(publisher.allWorkersReached(2))
        publisher.publish(snapshot(3, [2]))
        XCTAssertFalse(publisher.allWorkersReached(3), "worker 0 has not switched")
        live.refresh()
        XCTAssertTrue(publisher.allWorkersReached(3))
        _ = SnapshotPublisher.Reader(publisher: publisher, worker: 1)
        publisher.publish(snapshot(4, [1]))
        XCTAssertFalse(publisher.allWorkersReached(4), "a reader made again counts again")
    }

    func testReaderWithOutOfRangeWorkerIsIgnoredByAcknowledgements() {
        let publisher = SnapshotPublisher(initial: snapshot(1, [1]), workers: 1)
        var stray = SnapshotPublisher.Reader(publisher: publisher, worker: 5)
        publisher.publish(snapshot(2, [1]))
        stray.refresh()
        XCTAssertEqual(stray.snapshot.generation, 2)
        XCTAssertFalse(publisher.allWorkersReached(2), "worker 0 has not switched")
    }

    func testWakersRunOnEveryPublish() {
        let publisher = SnapshotPublisher(initial: snapshot(1, [1]), workers: 1)
        let calls = Shared([0, 0])
        publisher.addWaker { calls.withLock { $0[0] += 1 } }
        publisher.addWaker { calls.withLock { $0[1] += 1 } }
        publisher.publish(snapshot(2, [1, 2]))
        publisher.publish(snapshot(3, [2]))
        XCTAssertEqual(calls.value, [2, 2])
    }

    /// One publisher thread alternating memberships a few thousand times a second for about a
    /// second, two reader threads doing refresh() + select() as fast as they can. Every selected
    /// backend is a healthy member of the snapshot it came from, every snapshot has the
    /// membership its generation was published with, generations only go forward, and a refresh
    /// never returns a snapshot older than the generation visible before it.
    func testConcurrentPublishAndRead() throws {
        let algorithm = HashAlgorithm.assignment // cheapest table to build, so publishes are frequent
        @Sendable func membership(_ generation: UInt64) -> [Int] {
            switch generation % 3 {
            case 0: return [1, 2, 3]
            case 1: return [2, 4, 5, 6]
            default: return [7, 3]
            }
        }
        @Sendable func build(_ generation: UInt64) -> Snapshot {
            let numbers = membership(generation)
            // Every fourth snapshot has its first member down.
            let healthy = generation % 4 == 0 ? ["server-\(numbers[0])": false] : [:]
            return Snapshot(
                generation: generation, backends: numbers.map { backend($0) }, healthy: healthy,
                algorithm: algorithm)
        }

        final class Flags: Sendable {
            let stop = Atomic<Bool>(false)
            let published = Atomic<UInt64>(0)
        }
        /// A reader's counts so far, for the publisher to tell when there was enough overlap.
        final class Progress: Sendable {
            let iterations = Atomic<Int>(0)
            let switches = Atomic<Int>(0)
        }
        struct ReaderReport: Sendable {
            var iterations = 0
            var selections = 0
            var switches = 0
            var problems: [String] = []
        }

        let publisher = SnapshotPublisher(initial: build(1), workers: 2)
        let flags = Flags()
        let progress = [Progress(), Progress()]
        let reports = Shared([ReaderReport(), ReaderReport()])
        let finished = DispatchSemaphore(value: 0)
        let hardDeadline = Date().addingTimeInterval(40) // no thread outlives this, whatever happens

        for worker in 0..<2 {
            let thread = Thread {
                var reader = SnapshotPublisher.Reader(publisher: publisher, worker: worker)
                var report = ReaderReport()
                var lastGeneration = reader.snapshot.generation
                var key = UInt64(worker) * 1_000_003
                func problem(_ text: String) { if report.problems.count < 20 { report.problems.append(text) } }
                while !flags.stop.load(ordering: .acquiring) && Date() < hardDeadline {
                    let visible = publisher.currentGeneration
                    reader.refresh()
                    let snap = reader.snapshot
                    report.iterations += 1
                    if snap.generation < lastGeneration {
                        problem("generation went back \(lastGeneration) -> \(snap.generation)")
                    }
                    if snap.generation < visible { problem("refresh returned \(snap.generation) after seeing \(visible)") }
                    if snap.generation != lastGeneration { report.switches += 1 }
                    progress[worker].iterations.store(report.iterations, ordering: .relaxed)
                    progress[worker].switches.store(report.switches, ordering: .relaxed)
                    lastGeneration = snap.generation
                    let expected = membership(snap.generation).map { "server-\($0)" }.sorted()
                    if snap.backends.map(\.name) != expected {
                        problem("generation \(snap.generation) has \(snap.backends.map(\.name)), expected \(expected)")
                    }
                    for _ in 0..<8 {
                        key = key &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                        var text = String(key >> 40)
                        let chosen = text.withUTF8 { snap.select(keyBytes: UnsafeRawBufferPointer($0)) }
                        report.selections += 1
                        guard let chosen else { problem("generation \(snap.generation): no backend"); continue }
                        guard let index = snap.backends.firstIndex(of: chosen) else {
                            problem("generation \(snap.generation): \(chosen.name) is not a member")
                            continue
                        }
                        if !snap.healthy[index] { problem("generation \(snap.generation): \(chosen.name) is down") }
                    }
                }
                // After the last publish a refresh must land on it.
                reader.refresh()
                if reader.snapshot.generation != flags.published.load(ordering: .acquiring) {
                    problem(
                        "final refresh at \(reader.snapshot.generation), published \(flags.published.load(ordering: .acquiring))")
                }
                let final = report
                reports.withLock { $0[worker] = final }
                finished.signal()
            }
            thread.name = "reader-\(worker)"
            thread.start()
        }

        let publishing = Thread {
            var generation: UInt64 = 1
            flags.published.store(1, ordering: .releasing)
            // At least a second, and on until there was enough to mean anything (publishes, and
            // reads that saw new snapshots): a starved thread makes less progress per second,
            // so a time-boxed run alone would fail on a loaded machine.
            let start = Date()
            func enough() -> Bool {
                Date().timeIntervalSince(start) >= 1 && generation > 500
                    && progress.allSatisfy {
                        $0.iterations.load(ordering: .relaxed) > 200 && $0.switches.load(ordering: .relaxed) > 20
                    }
            }
            while !enough() && Date().timeIntervalSince(start) < 30 {
                generation += 1
                publisher.publish(build(generation))
                flags.published.store(generation, ordering: .releasing)
                usleep(150) // a few thousand publishes per second
            }
            // Readers stop only after the last publish is visible, so their final refresh sees it.
            flags.stop.store(true, ordering: .releasing)
            finished.signal()
        }
        publishing.name = "publisher"
        publishing.start()

        for _ in 0..<3 {
            XCTAssertEqual(finished.wait(timeout: .now() + 45), .success, "a stress thread did not finish")
        }
        let published = flags.published.load(ordering: .acquiring)
        XCTAssertGreaterThan(published, 200, "too few publishes to mean anything")
        XCTAssertTrue(publisher.allWorkersReached(published))
        XCTAssertEqual(publisher.currentGeneration, published)
        for (worker, report) in reports.value.enumerated() {
            XCTAssertEqual(report.problems, [], "reader \(worker)")
            XCTAssertGreaterThan(report.iterations, 100, "reader \(worker)")
            XCTAssertGreaterThan(report.switches, 10, "reader \(worker) hardly ever saw a new snapshot")
            XCTAssertEqual(report.selections, report.iterations * 8)
        }
    }
}
