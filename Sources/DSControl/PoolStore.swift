import DSBalancer

/// The desired pool as a store holds it: the replicas (name, id, address) and the revision
/// that wrote them. Revision 0 is "nothing saved yet"; every successful write makes a higher one.
package struct StoredPool: Sendable, Equatable {
    package var replicas: [Backend]
    package var revision: UInt64

    package init(replicas: [Backend], revision: UInt64) {
        self.replicas = replicas
        self.revision = revision
    }
}

/// Why a store did not read or write the pool.
package enum PoolStoreError: Error, CustomStringConvertible, Sendable, Equatable {
    /// Compare-and-swap lost: another writer changed the pool since revision `expected`; it is
    /// at `current` now. Nothing was written.
    case conflict(expected: UInt64, current: UInt64)
    /// The store has no room (a full disk or quota): the admin API answers 507.
    case outOfSpace(String)
    /// The store could not be read or written (I/O error, corrupt content, refused).
    case failed(String)
    /// The store did not answer (a remote store down or too slow); the write may or may not
    /// have happened, and the next read tells.
    case unreachable(String)

    package var isConflict: Bool {
        if case .conflict = self { return true }
        return false
    }

    package var description: String {
        switch self {
        case .conflict(let expected, let current):
            "the pool was changed by another writer (now at revision \(current), this ds-lb had revision \(expected))"
        case .outOfSpace(let text), .failed(let text), .unreachable(let text): text
        }
    }
}

/// What a store tells the control loop without being asked.
package enum PoolStoreEvent: Sendable, Equatable {
    /// A write committed `pool` (this ds-lb's own writes included: the loop skips revisions it
    /// already knows).
    case changed(StoredPool)
}

/// Where the desired pool is kept: a file (`FileStore`) or etcd (`EtcdStore`). The
/// interface is the remote one — every write may be slow, may fail, and may lose to another
/// writer — so the supervisor is written for that, and a local store just answers at once.
///
/// Control thread only.
package protocol PoolStore: AnyObject {
    /// Where the pool is kept, for log lines ("Restoring 3 replicas from …").
    var location: String { get }
    /// Before the control loop runs (it blocks until the store answers or gives up): the saved
    /// pool, or revision 0 with no replicas when none was ever saved.
    func load() throws(PoolStoreError) -> StoredPool
    /// Writes `replicas` if the pool is still at `ifRevision` (compare-and-swap). `completion`
    /// runs on the control loop with the new revision or why not; a local store runs it before
    /// `write` returns, a remote one later.
    func write(_ replicas: [Backend], ifRevision: UInt64, completion: @escaping (Result<UInt64, PoolStoreError>) -> Void)
    /// On the control loop: the pool as the store holds it now (a cluster's admin write plans
    /// against it). `completion` runs on the control loop, at once for a local store.
    func read(completion: @escaping (Result<StoredPool, PoolStoreError>) -> Void)
    /// Control thread, once: every change committed from now on reaches `handler` on the
    /// control loop.
    func watch(_ handler: @escaping (PoolStoreEvent) -> Void)
}

extension PoolStore {
    /// A local store answers at once.
    package func read(completion: @escaping (Result<StoredPool, PoolStoreError>) -> Void) {
        completion(Result { () throws(PoolStoreError) in try load() })
    }
}

/// The pool in `state.json` (`StateStore` does the file's I/O). The revision is the file's:
/// a write compares it with what is on disk, so a second ds-lb writing the same directory is
/// seen as another writer rather than silently overwritten (short of two writes racing between
/// the read and the rename, which one directory per ds-lb avoids).
package final class FileStore: PoolStore {
    package let file: StateStore
    /// The driver the pool is for: a pool saved by another driver is refused at load.
    package let driver: String
    private var handler: ((PoolStoreEvent) -> Void)?

    package init(file: StateStore, driver: String) {
        self.file = file
        self.driver = driver
    }

    package var location: String { file.path }

    package func load() throws(PoolStoreError) -> StoredPool {
        do {
            guard let saved = try file.loadWithRevision(driver: driver) else { return StoredPool(replicas: [], revision: 0) }
            return StoredPool(replicas: saved.replicas, revision: saved.revision)
        } catch {
            throw Self.storeError(error)
        }
    }

    package func write(_ replicas: [Backend], ifRevision: UInt64, completion: @escaping (Result<UInt64, PoolStoreError>) -> Void)
    {
        let revision: UInt64
        do {
            let current = try load().revision
            guard current == ifRevision else { return completion(.failure(.conflict(expected: ifRevision, current: current))) }
            revision = current + 1
            try file.save(replicas, driver: driver, revision: revision)
        } catch let error as PoolStoreError {
            return completion(.failure(error))
        } catch {
            return completion(.failure(Self.storeError(error)))
        }
        completion(.success(revision))
        handler?(.changed(StoredPool(replicas: replicas, revision: revision)))
    }

    package func watch(_ handler: @escaping (PoolStoreEvent) -> Void) {
        self.handler = handler
    }

    private static func storeError(_ error: any Error) -> PoolStoreError {
        guard let failure = error as? StateStore.Failure else { return .failed("\(error)") }
        return failure.isOutOfSpace ? .outOfSpace(failure.description) : .failed(failure.description)
    }
}
