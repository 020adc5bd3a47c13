import DSBalancer
import DSEtcd
import DSReactor
import Foundation

/// The pool in etcd, under `/ds-lb/<pool>/`: one key, `/ds-lb/<pool>/pool`, holding the document
/// a state file holds (`StateStore`'s format). One key, because a `PoolStore` write is the whole
/// pool: one comparison of that key's mod_revision guards it, a read gets the pool whole, and a
/// watcher sees one event per write (a pool of hundreds of replicas is tens of kB, far below
/// etcd's request limit). The store's revision is etcd's mod_revision of the key; the document's
/// own `revision` field counts the writes (the key's etcd version), for a person reading it with
/// etcdctl, and is never compared.
///
/// Control thread only: `write`'s and `watch`'s callbacks run on `loop`, the control loop.
/// `load` runs before that loop does, so it talks to etcd from a thread of its own.
package final class EtcdStore: PoolStore {
    package let endpoints: [EtcdEndpoint]
    package let pool: String
    package let driver: String
    package let timeout: Duration
    private let key: [UInt8]
    private let client: EtcdClient
    private var handler: ((PoolStoreEvent) -> Void)?
    private var watcher: EtcdWatch?
    /// The first etcd revision the watch must report: the one after the last read.
    private var watchFrom: Int64 = 1
    /// The pool's revision last read, written or reported, and the key's etcd version then.
    private var seen: (revision: UInt64, version: Int64) = (0, 0)
    /// The revision at which the key was last seen deleted (by hand: ds-lb never deletes it).
    /// That pool is empty and written as "the key is absent", etcd's mod_revision 0.
    private var deletedAt: UInt64 = 0

    /// `pool`: letters, digits, '.', '_' and '-', so the key needs no escaping.
    package init(
        loop: EventLoop, endpoints: [EtcdEndpoint], pool: String, driver: String, timeout: Duration = .seconds(5)
    )
        throws(PoolStoreError)
    {
        guard Self.isValidName(pool) else {
            throw .failed("invalid pool name '\(pool)': use 1 to 64 letters, digits, '.', '_' or '-'")
        }
        self.endpoints = endpoints
        self.pool = pool
        self.driver = driver
        self.timeout = timeout
        key = Array(Self.key(pool: pool).utf8)
        client = EtcdClient(loop: loop, endpoints: endpoints, timeout: timeout)
    }

    deinit { watcher?.cancel() }

    /// Whether `name` can be one segment of an etcd key as it is (a pool's, a node's): 1 to 64
    /// letters, digits, '.', '_' or '-', so it needs no escaping and never reads as a path.
    package static func isValidName(_ name: String) -> Bool {
        let allowed = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        return !name.isEmpty && name.count <= 64 && name.allSatisfy(allowed.contains) && name != "." && name != ".."
    }

    /// The etcd key of `pool`'s document.
    package static func key(pool: String) -> String { "/ds-lb/\(pool)/pool" }

    package var location: String {
        "etcd key \(Self.key(pool: pool)) at \(endpoints.map(\.description).joined(separator: ","))"
    }

    package func load() throws(PoolStoreError) -> StoredPool {
        let answer: (kvs: [EtcdKeyValue], revision: Int64)
        do {
            let blocking = try BlockingEtcdClient(endpoints: endpoints, timeout: timeout, threadName: "ds-lb-etcd-load")
            answer = try blocking.range(key)
        } catch let error as EtcdError {
            throw Self.storeError(error)
        } catch {
            throw .failed("cannot start the etcd client: \(error)")
        }
        let pool = try stored(answer.kvs.first)
        watchFrom = answer.revision + 1
        return pool
    }

    package func write(_ replicas: [Backend], ifRevision: UInt64, completion: @escaping (Result<UInt64, PoolStoreError>) -> Void)
    {
        let version = ifRevision == seen.revision ? seen.version + 1 : 1
        let document: [UInt8]
        do { document = Array(try StateStore.encode(replicas, driver: driver, revision: UInt64(version))) } catch {
            return completion(.failure(.failed("cannot encode the pool: \(error)")))
        }
        let compared = ifRevision == deletedAt ? 0 : Int64(clamping: ifRevision)
        client.txn(
            compare: [.modRevision(key: key, equals: compared)], success: [.put(key: key, value: document)],
            failure: [.range(key: key)]
        ) { [weak self] result in
            switch result {
            case .failure(let error):
                completion(.failure(Self.storeError(error)))
            case .success(let txn) where txn.succeeded:
                let revision = UInt64(txn.revision)
                self?.note(revision: revision, version: version)
                completion(.success(revision))
            case .success(let txn):
                let current = txn.ranges.first?.first.map { UInt64($0.modRevision) } ?? self?.deletedAt ?? 0
                completion(.failure(.conflict(expected: ifRevision, current: current)))
            }
        }
    }

    package func read(completion: @escaping (Result<StoredPool, PoolStoreError>) -> Void) {
        client.range(key) { [weak self] result in
            guard let self else { return completion(.failure(.unreachable("ds-lb is stopping"))) }
            switch result {
            case .success(let answer): completion(Result { () throws(PoolStoreError) in try self.stored(answer.kvs.first) })
            case .failure(let error): completion(.failure(Self.storeError(error)))
            }
        }
    }

    package func watch(_ handler: @escaping (PoolStoreEvent) -> Void) {
        self.handler = handler
        startWatch()
    }

    private func startWatch() {
        watcher?.cancel()
        watcher = client.watch(
            key, startRevision: watchFrom,
            onEvents: { [weak self] events, _ in
                guard let self else { return }
                for event in events { self.report(event) }
            },
            onEnd: { [weak self] _ in self?.resync() })
    }

    private func report(_ event: EtcdWatchEvent) {
        let pool: StoredPool
        switch event {
        case .put(let kv):
            // A document ds-lb cannot read (written by hand) changes nothing here: the next
            // write compares the revision and finds out.
            guard let read = try? stored(kv) else { return }
            pool = read
        case .delete(let kv):
            deletedAt = UInt64(kv.modRevision)
            note(revision: deletedAt, version: 0)
            pool = StoredPool(replicas: [], revision: deletedAt)
        }
        watchFrom = Int64(pool.revision) + 1
        handler?(.changed(pool))
    }

    /// etcd compacted the history the watch needed: read the pool now, report it, watch on.
    private func resync() {
        client.range(key) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let answer):
                self.watchFrom = answer.revision + 1
                if let pool = try? self.stored(answer.kvs.first) { self.handler?(.changed(pool)) }
                self.startWatch()
            case .failure:
                _ = self.client.loop.schedule(after: .seconds(1)) { [weak self] in self?.resync() }
            }
        }
    }

    /// The pool in `kv` (nil: the key is absent), noting its revision and version.
    private func stored(_ kv: EtcdKeyValue?) throws(PoolStoreError) -> StoredPool {
        guard let kv else { return StoredPool(replicas: [], revision: 0) }
        let replicas: [Backend]
        do {
            replicas = try StateStore.decode(kv.value, driver: driver, source: "etcd key \(Self.key(pool: pool))").replicas
        } catch {
            throw .failed("\(error)")
        }
        note(revision: UInt64(kv.modRevision), version: kv.version)
        return StoredPool(replicas: replicas, revision: UInt64(kv.modRevision))
    }

    private func note(revision: UInt64, version: Int64) {
        if revision >= seen.revision { seen = (revision, version) }
    }

    private static func storeError(_ error: EtcdError) -> PoolStoreError {
        switch error {
        case .unreachable: .unreachable("\(error)")
        default: .failed("\(error)")
        }
    }
}
