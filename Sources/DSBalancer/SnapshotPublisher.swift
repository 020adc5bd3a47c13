import DSSystem
import Synchronization

/// Publishes snapshots to workers (docs/ARCHITECTURE.md §4): the supervisor stores a new one
/// under a lock and bumps an atomic generation with release ordering; each worker does one
/// acquiring load when its wait returns and one after the events it returned, and takes the lock
/// only when the generation moved. The hot path is one load.
package final class SnapshotPublisher: Sendable {
    private let current: Locked<Snapshot>
    private let generation: Atomic<UInt64>
    /// The generation each worker last switched to, so the supervisor can wait for all of them
    /// before stopping a replica it removed (`.max` once the worker left: it routes nothing, so
    /// there is nothing to wait for). Written only on a switch (rare), hence a Mutex.
    private let workerGenerations: Locked<[UInt64]>
    /// Wakes each worker's loop after a publish: an idle worker sleeps in epoll_wait and would
    /// otherwise not look at the generation until its next event.
    private let wakers: Locked<[@Sendable () -> Void]>

    package init(initial: Snapshot, workers: Int) {
        current = Locked(initial)
        generation = Atomic(initial.generation)
        workerGenerations = Locked([UInt64](repeating: initial.generation, count: workers))
        wakers = Locked([])
    }

    /// Any thread. Registers a closure that makes one worker look at the generation soon.
    package func addWaker(_ wake: @escaping @Sendable () -> Void) {
        wakers.withLock { $0.append(wake) }
    }

    /// Supervisor thread. Publishes `snapshot` (its generation must be newer than the current).
    package func publish(_ snapshot: Snapshot) {
        current.withLock { $0 = snapshot }
        generation.store(snapshot.generation, ordering: .releasing)
        for wake in wakers.withLock({ $0 }) { wake() }
    }

    /// Any thread. The latest snapshot (takes the Mutex: not for the hot path; use a Reader).
    package func latest() -> Snapshot {
        current.withLock { $0 }
    }

    package var currentGeneration: UInt64 { generation.load(ordering: .acquiring) }

    /// Any thread. Whether every worker has switched to `target` or later.
    package func allWorkersReached(_ target: UInt64) -> Bool {
        workerGenerations.withLock { $0.allSatisfy { $0 >= target } }
    }

    fileprivate func acknowledge(worker: Int, generation: UInt64) {
        workerGenerations.withLock { if worker < $0.count { $0[worker] = generation } }
    }

    /// One worker's view: its own strong reference and the generation it saw.
    package struct Reader {
        package let publisher: SnapshotPublisher
        package let worker: Int
        package private(set) var snapshot: Snapshot

        package init(publisher: SnapshotPublisher, worker: Int) {
            self.publisher = publisher
            self.worker = worker
            self.snapshot = publisher.latest()
            publisher.acknowledge(worker: worker, generation: snapshot.generation)
        }

        /// Loop thread only, before and after each batch of events: one acquiring load;
        /// re-copies the reference only when the generation changed.
        package mutating func refresh() {
            let seen = publisher.generation.load(ordering: .acquiring)
            if seen != snapshot.generation {
                snapshot = publisher.latest()
                publisher.acknowledge(worker: worker, generation: snapshot.generation)
            }
        }

        /// The worker's loop has ended: it routes nothing any more, so waiting for it to switch
        /// (an admin command's answer, a removed replica's stop) would only run into the cap.
        /// A reader made again for the same worker counts it again.
        package func leave() {
            publisher.acknowledge(worker: worker, generation: .max)
        }
    }
}
