import DSBalancer
import DSEtcd
import DSReactor
import DSSystem
import Foundation
import Logging

/// Why a membership could not be made (a bad setting, named).
package struct ClusterMembershipError: Error, Sendable, Equatable, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// `ClusterMembership` on etcd, through `EtcdClient` on the control loop.
///
/// The node's presence is one key, `nodes/<name>`, under a lease this class keeps alive; its
/// replicas' reports live under the same lease, so a node that stops renewing (killed, frozen,
/// cut off) vanishes with everything it claimed, and the others re-place its replicas. The view
/// is one read of the whole `/ds-lb/<pool>/` prefix and then one watch from the revision after
/// it, so every change arrives in etcd's order and none is missed between the read and the watch.
///
/// A name that another live node holds is not taken over: the membership waits one TTL for
/// that node's lease to end (a previous run of this node, killed and restarted, ends there),
/// then gives up with `.refused`.
///
/// Nothing here blocks the loop: while etcd is down every call is retried with a bounded
/// backoff, and the last view stays what routing uses (static stability).
package final class EtcdClusterMembership: ClusterMembership {
    package let nodeName: String
    package let advertiseAddress: String
    package let pool: String
    /// The lease's TTL asked for, in seconds.
    package let leaseTTL: Int64
    package private(set) var view = ClusterView()
    package private(set) var storeUp = true
    /// The lease this node's keys live under now; 0 while it has none (before the first grant,
    /// after a loss until the next one, after `leave`).
    package private(set) var lease: Int64 = 0

    private let loop: EventLoop
    private let client: EtcdClient
    private let driver: String
    private let logger: Logger
    private let prefix: [UInt8]
    private let prefixEnd: [UInt8]
    private let poolKey: String
    private let nodesPrefix: String
    private let replicasPrefix: String
    private let nodeKey: [UInt8]
    private let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    private enum Phase { case idle, running, stopped }
    private var phase = Phase.idle
    private var handler: ((ClusterMembershipEvent) -> Void)?
    /// Whether `nodes/<name>` is ours under `lease`, and the revision that made it so: a view at
    /// or past that revision without it means the registration is gone.
    private var registered = false
    private var registeredRevision: Int64 = 0
    /// When this node first found its name held by another node's lease (monotonic ns).
    private var nameTakenSince: UInt64?
    private var watcher: EtcdWatch?
    private var reading = false
    private var readAgain = false
    /// Whether a view was read since `start`: the nodes in the first one did not "join".
    private var hasView = false
    /// Whether the view was read since the node last registered: until then it may still hold
    /// this node's previous registration.
    private var viewIsCurrent = false
    private var changePending = false
    /// Consecutive failed calls: how long the next retry waits.
    private var failures = 0
    private var keepAliveTimer: TimerID?
    private var retryTimer: TimerID?
    private var readTimer: TimerID?
    private var flushTimer: TimerID?
    /// The reports the supervisor gave last, and those written under `lease` with the revision
    /// that wrote each: a delete compares that revision, so it never removes the report another
    /// node wrote since for a replica that moved there.
    private var wanted: [String: ReplicaReport] = [:]
    private var written: [String: (report: ReplicaReport, revision: Int64)] = [:]
    private var writing = false
    private var flushPending = false
    /// Keys already warned about as unreadable, so a bad record is one warning, not one per read.
    private var unreadable: Set<String> = []

    /// etcd refuses a transaction of more operations than this (`--max-txn-ops`' default).
    private static let maxTxnOperations = 128

    /// `leaseTTL`: whole seconds, at least 2 (etcd's minimum; it raises shorter ones silently).
    /// `driver`: the driver the pool document must have been written by (`StateStore`'s check).
    package init(
        loop: EventLoop, endpoints: [EtcdEndpoint], pool: String, driver: String, nodeName: String, advertiseAddress: String,
        leaseTTL: Duration, timeout: Duration = .seconds(5), logger: Logger
    ) throws(ClusterMembershipError) {
        guard !endpoints.isEmpty else { throw ClusterMembershipError("no etcd endpoint given") }
        guard EtcdStore.isValidName(pool) else {
            throw ClusterMembershipError("invalid pool name '\(pool)': use 1 to 64 letters, digits, '.', '_' or '-'")
        }
        guard EtcdStore.isValidName(nodeName) else {
            throw ClusterMembershipError("invalid node name '\(nodeName)': use 1 to 64 letters, digits, '.', '_' or '-'")
        }
        guard !advertiseAddress.isEmpty else { throw ClusterMembershipError("the advertise address is empty") }
        let (seconds, attoseconds) = leaseTTL.components
        guard attoseconds == 0, seconds >= 2 else {
            throw ClusterMembershipError(
                "invalid node lease \(DurationText.format(leaseTTL)): use whole seconds, at least 2s (etcd's minimum)")
        }
        guard timeout > .zero else {
            throw ClusterMembershipError("invalid etcd timeout \(DurationText.format(timeout)): it must be positive")
        }
        self.loop = loop
        self.pool = pool
        self.driver = driver
        self.nodeName = nodeName
        self.advertiseAddress = advertiseAddress
        self.leaseTTL = seconds
        self.logger = logger
        client = EtcdClient(loop: loop, endpoints: endpoints, timeout: timeout)
        prefix = Array(ClusterKeys.prefix(pool: pool).utf8)
        prefixEnd = ClusterKeys.rangeEnd(ofPrefix: ClusterKeys.prefix(pool: pool))
        poolKey = ClusterKeys.pool(pool: pool)
        nodesPrefix = ClusterKeys.nodesPrefix(pool: pool)
        replicasPrefix = ClusterKeys.replicasPrefix(pool: pool)
        nodeKey = Array(ClusterKeys.node(nodeName, pool: pool).utf8)
    }

    deinit {
        watcher?.cancel()
        for timer in [keepAliveTimer, retryTimer, readTimer, flushTimer].compactMap({ $0 }) { loop.cancel(timer) }
    }

    // MARK: ClusterMembership

    package func start(_ handler: @escaping (ClusterMembershipEvent) -> Void) {
        loop.assertInLoop()
        precondition(phase == .idle, "a cluster membership starts once")
        phase = .running
        self.handler = handler
        acquire()
    }

    package func report(_ replicas: [ReplicaReport]) {
        loop.assertInLoop()
        wanted = Dictionary(replicas.map { ($0.name, $0) }, uniquingKeysWith: { $1 })
        scheduleFlush()
    }

    package func leave(done: @escaping () -> Void) {
        loop.assertInLoop()
        let held = lease
        let wasRunning = phase == .running
        stop()
        guard held != 0 else {
            _ = loop.schedule(after: .zero) { done() }
            return
        }
        if wasRunning { logger.info("[i] Leaving cluster pool \(pool): revoking lease \(Self.hex(held))") }
        let logger = self.logger
        client.revokeLease(held) { result in
            if case .failure(let error) = result {
                logger.warning(
                    "[!] Could not revoke lease \(Self.hex(held)) (\(error)): the other nodes see this node gone after its TTL")
            }
            done()
        }
    }

    // MARK: lease and registration

    private var renewInterval: Duration { .milliseconds(leaseTTL * 1000 / 3) }

    /// Up to a third of the TTL: retries while etcd is down never wait so long that the lease
    /// could lapse between two attempts once it answers again.
    private var backoff: Duration {
        let delay = Duration.milliseconds(200) * (1 << min(failures, 6))
        return min(delay, renewInterval)
    }

    private func acquire() {
        guard phase == .running else { return }
        client.grantLease(ttl: leaseTTL) { [weak self] result in
            guard let self else { return }
            switch result {
            case .success(let granted):
                guard phase == .running else {
                    // Left while the grant was on its way: nothing may stay under it.
                    client.revokeLease(granted.id) { _ in }
                    return
                }
                noteUp()
                lease = granted.id
                scheduleKeepAlive(after: renewInterval)
                register()
            case .failure(let error):
                guard phase == .running else { return }
                noteFailure(error, "cannot take a lease")
                retry(after: backoff) { $0.acquire() }
            }
        }
    }

    /// Creates `nodes/<name>` under `lease` only where no key is: a live node of the same name
    /// keeps its key, and this one does not join.
    private func register() {
        guard phase == .running, lease != 0 else { return }
        let held = lease
        let record: [UInt8]
        do {
            record = Array(try encoder.encode(ClusterNodeRecord(name: nodeName, address: advertiseAddress, lease: held)))
        } catch {
            preconditionFailure("a node record always encodes: \(error)")
        }
        client.txn(
            compare: [.version(key: nodeKey, equals: 0)], success: [.put(key: nodeKey, value: record, lease: held)],
            failure: [.range(key: nodeKey)]
        ) { [weak self] result in
            guard let self, phase == .running, held == lease else { return }
            switch result {
            case .success(let txn):
                noteUp()
                let holder = txn.ranges.first?.first
                if txn.succeeded {
                    joined(at: txn.revision)
                } else if let holder, holder.lease == held {
                    // An earlier attempt of ours was applied, its answer lost.
                    joined(at: holder.modRevision)
                } else {
                    nameTaken(by: holder)
                }
            case .failure(.failed(code: EtcdClient.notFound, _)):
                leaseLost(held, reason: "etcd no longer has lease \(Self.hex(held))")
            case .failure(let error):
                noteFailure(error, "cannot register node \(nodeName)")
                retry(after: backoff) { $0.register() }
            }
        }
    }

    private func joined(at revision: Int64) {
        registered = true
        registeredRevision = revision
        viewIsCurrent = false
        nameTakenSince = nil
        logger.info("[i] Joined cluster pool \(pool) as \(nodeName) (lease \(Self.hex(lease)), ttl \(leaseTTL)s)")
        // Whatever this node wrote under an earlier lease went with it.
        written = [:]
        read()
        scheduleFlush()
    }

    private func nameTaken(by holder: EtcdKeyValue?) {
        let now = monotonicNanoseconds()
        let holderText =
            holder.map { kv in
                let address = (try? JSONDecoder().decode(ClusterNodeRecord.self, from: Data(kv.value)))?.address ?? "?"
                return "lease \(Self.hex(kv.lease)), address \(address)"
            } ?? "no lease"
        guard let since = nameTakenSince else {
            nameTakenSince = now
            logger.warning(
                "[!] Node name \(nodeName) is held by another node (\(holderText)): waiting up to \(leaseTTL + 1)s for its lease to end"
            )
            return retry(after: renewInterval) { $0.register() }
        }
        guard now &- since >= UInt64(leaseTTL + 1) * 1_000_000_000 else {
            return retry(after: renewInterval) { $0.register() }
        }
        let reason = "node name \(nodeName) is taken by another live node in cluster pool \(pool) (\(holderText))"
        logger.error("[!] Not joining: \(reason); give each node its own --node-name")
        let held = lease
        stop()
        client.revokeLease(held) { _ in }
        handler?(.refused(reason: reason))
    }

    private func scheduleKeepAlive(after delay: Duration) {
        if let keepAliveTimer { loop.cancel(keepAliveTimer) }
        keepAliveTimer = loop.schedule(after: delay) { [weak self] in
            self?.keepAliveTimer = nil
            self?.keepAlive()
        }
    }

    private func keepAlive() {
        guard phase == .running, lease != 0 else { return }
        let held = lease
        client.keepAlive(lease: held) { [weak self] result in
            guard let self, phase == .running, held == lease else { return }
            switch result {
            case .success(let ttl) where ttl > 0:
                noteUp()
                scheduleKeepAlive(after: renewInterval)
            case .success:
                leaseLost(held, reason: "etcd says lease \(Self.hex(held)) expired or was revoked")
            case .failure(let error):
                noteFailure(error, "cannot renew lease \(Self.hex(held))")
                scheduleKeepAlive(after: backoff)
            }
        }
    }

    /// The lease is gone, and with it this node's keys: the other nodes may be starting its
    /// replicas already. The supervisor hears `.fenced` before anything else happens, so it
    /// stops them before this node could be given any back; no `.changed` is reported until
    /// the node is registered again and has read the view anew.
    private func leaseLost(_ lost: Int64, reason: String) {
        guard phase == .running, lost == lease, lost != 0 else { return }
        let wasRegistered = registered
        lease = 0
        registered = false
        written = [:]
        for timer in [keepAliveTimer, retryTimer].compactMap({ $0 }) { loop.cancel(timer) }
        keepAliveTimer = nil
        retryTimer = nil
        if wasRegistered {
            logger.warning("[!] Lease lost (\(reason)): stopping this node's replicas and registering again")
            handler?(.fenced(reason: reason))
        }
        acquire()
    }

    private func retry(after delay: Duration, _ action: @escaping (EtcdClusterMembership) -> Void) {
        if let retryTimer { loop.cancel(retryTimer) }
        retryTimer = loop.schedule(after: delay) { [weak self] in
            guard let self else { return }
            retryTimer = nil
            action(self)
        }
    }

    private func stop() {
        phase = .stopped
        lease = 0
        registered = false
        watcher?.cancel()
        watcher = nil
        for timer in [keepAliveTimer, retryTimer, readTimer, flushTimer].compactMap({ $0 }) { loop.cancel(timer) }
        keepAliveTimer = nil
        retryTimer = nil
        readTimer = nil
        flushTimer = nil
    }

    // MARK: store up and down

    private func noteFailure(_ error: EtcdError, _ context: String) {
        failures += 1
        if case .unreachable(let text) = error {
            guard storeUp else { return }
            storeUp = false
            logger.warning("[!] cluster store unavailable: \(text)")
            handler?(.storeDown(reason: "\(error)"))
        } else if failures == 1 {
            logger.warning("[!] Cluster store: \(context): \(error)")
        }
    }

    /// A call was answered. After an outage the view is read again: the watch resumes on its
    /// own, but a fresh read is what makes every node converge on one revision at once.
    private func noteUp(readAgain: Bool = true) {
        failures = 0
        guard !storeUp else { return }
        storeUp = true
        logger.info("[i] Cluster store available again")
        handler?(.storeUp)
        if readAgain && registered { read() }
        if registered { scheduleFlush() }
    }

    // MARK: the view

    /// Reads the whole prefix, then watches from the revision after it.
    private func read() {
        guard phase == .running else { return }
        if let readTimer {
            loop.cancel(readTimer)
            self.readTimer = nil
        }
        guard !reading else {
            readAgain = true
            return
        }
        reading = true
        client.range(prefix, rangeEnd: prefixEnd) { [weak self] result in
            guard let self else { return }
            reading = false
            guard phase == .running else { return }
            switch result {
            case .success(let answer):
                noteUp(readAgain: false)
                if readAgain {
                    readAgain = false
                    return read()
                }
                var fresh = ClusterView(revision: answer.revision)
                for kv in answer.kvs { put(kv, into: &fresh) }
                update(to: fresh)
                startWatch(from: answer.revision + 1)
                viewIsCurrent = true
                noteChanged()
            case .failure(let error):
                noteFailure(error, "cannot read cluster pool \(pool)")
                readTimer = loop.schedule(after: backoff) { [weak self] in
                    self?.readTimer = nil
                    self?.read()
                }
            }
        }
    }

    private func startWatch(from revision: Int64) {
        watcher?.cancel()
        watcher = client.watch(
            prefix, rangeEnd: prefixEnd, startRevision: revision,
            onEvents: { [weak self] events, revision in self?.apply(events, at: revision) },
            // The history the watch needed is compacted away: read the present instead.
            onEnd: { [weak self] _ in self?.read() })
    }

    private func apply(_ events: [EtcdWatchEvent], at revision: Int64) {
        guard phase == .running else { return }
        // One transaction's events share a revision: compare with where the view was before.
        let base = view.revision
        var next = view
        for event in events {
            switch event {
            case .put(let kv) where kv.modRevision > base: put(kv, into: &next)
            case .delete(let kv) where kv.modRevision > base: delete(kv, from: &next)
            default: continue
            }
        }
        next.revision = max(base, revision)
        update(to: next)
        noteChanged()
    }

    /// Replaces the view, saying which nodes came and went, and fences this node when the view
    /// has passed its registration and no longer holds it (its key was deleted or its lease
    /// ended: either way the other nodes no longer count it).
    private func update(to next: ClusterView) {
        let before = view.nodes
        view = next
        if hasView {
            for (name, record) in next.nodes.sorted(by: { $0.key < $1.key }) where before[name] == nil && name != nodeName {
                logger.info(
                    "[i] Node \(name) joined cluster pool \(pool) (\(record.address))",
                    metadata: ["event": .string("node_joined"), "node": .string(name)])
            }
            for name in before.keys.sorted() where next.nodes[name] == nil && name != nodeName {
                logger.warning(
                    "[!] Node \(name) left cluster pool \(pool) (lease ended or revoked)",
                    metadata: ["event": .string("node_lost"), "node": .string(name)])
            }
        }
        hasView = true
        if registered && next.revision >= registeredRevision && next.nodes[nodeName]?.lease != lease {
            let held = lease
            // Gone from the view but perhaps not from etcd (deleted by hand): end it, so the
            // reports under it go too.
            client.revokeLease(held) { _ in }
            leaseLost(held, reason: "this node's registration disappeared at revision \(next.revision)")
        }
    }

    private func put(_ kv: EtcdKeyValue, into view: inout ClusterView) {
        let key = String(decoding: kv.key, as: UTF8.self)
        do {
            if key == poolKey {
                view.pool = nil
                let replicas = try StateStore.decode(kv.value, driver: driver, source: "etcd key \(key)").replicas
                view.pool = StoredPool(replicas: replicas, revision: UInt64(kv.modRevision))
            } else if key.hasPrefix(nodesPrefix) {
                let name = String(key.dropFirst(nodesPrefix.count))
                view.nodes[name] = nil
                view.nodes[name] = try Self.record(kv, named: name, \ClusterNodeRecord.name)
            } else if key.hasPrefix(replicasPrefix) {
                let name = String(key.dropFirst(replicasPrefix.count))
                view.reports[name] = nil
                view.reports[name] = try Self.record(kv, named: name, \ReplicaReport.name)
            } else {
                return
            }
            unreadable.remove(key)
        } catch {
            if unreadable.insert(key).inserted {
                logger.warning("[!] Skipping unreadable cluster record \(key) (revision \(kv.modRevision)): \(error)")
            }
        }
    }

    /// The JSON record in `kv`, which must carry the name its key ends with: a record copied
    /// under another key by hand would otherwise stand for two nodes or replicas.
    private static func record<Record: Decodable>(
        _ kv: EtcdKeyValue, named name: String, _ nameOf: KeyPath<Record, String>
    ) throws -> Record {
        let record = try JSONDecoder().decode(Record.self, from: Data(kv.value))
        guard record[keyPath: nameOf] == name else {
            throw ClusterMembershipError("it is named '\(record[keyPath: nameOf])'")
        }
        return record
    }

    private func delete(_ kv: EtcdKeyValue, from view: inout ClusterView) {
        let key = String(decoding: kv.key, as: UTF8.self)
        unreadable.remove(key)
        if key == poolKey {
            view.pool = nil
        } else if key.hasPrefix(nodesPrefix) {
            view.nodes[String(key.dropFirst(nodesPrefix.count))] = nil
        } else if key.hasPrefix(replicasPrefix) {
            view.reports[String(key.dropFirst(replicasPrefix.count))] = nil
        }
    }

    /// One `.changed` per loop turn, however many events a turn brought, and none from when the
    /// node lost its registration until it has registered again and read the view anew: a view
    /// from before still counts this node under its old lease, and placement from it would hand
    /// back the replicas just stopped.
    private func noteChanged() {
        guard !changePending else { return }
        changePending = true
        _ = loop.schedule(after: .zero) { [weak self] in
            guard let self else { return }
            changePending = false
            guard phase == .running, registered, viewIsCurrent else { return }
            handler?(.changed(view))
        }
    }

    // MARK: reports

    private func scheduleFlush() {
        guard !flushPending else { return }
        flushPending = true
        _ = loop.schedule(after: .zero) { [weak self] in
            guard let self else { return }
            flushPending = false
            flush()
        }
    }

    /// Writes what differs between `wanted` and `written`, one transaction at a time; whatever
    /// changes meanwhile goes in the next one.
    private func flush() {
        guard phase == .running, registered, !writing else { return }
        if let flushTimer {
            loop.cancel(flushTimer)
            self.flushTimer = nil
        }
        var puts: [ReplicaReport] = []
        for name in wanted.keys.sorted() where written[name]?.report != wanted[name] {
            guard puts.count < Self.maxTxnOperations else { break }
            puts.append(wanted[name]!)
        }
        let deletes = Array(
            written.keys.sorted().filter { wanted[$0] == nil }.prefix(Self.maxTxnOperations - puts.count))
        guard !puts.isEmpty || !deletes.isEmpty else { return }
        let held = lease
        var operations: [EtcdOperation] = []
        for report in puts {
            guard let value = try? encoder.encode(report) else { continue }
            operations.append(.put(key: replicaKey(report.name), value: Array(value), lease: held))
        }
        operations += deletes.map { .delete(key: replicaKey($0)) }
        writing = true
        client.txn(
            compare: deletes.map { .modRevision(key: replicaKey($0), equals: written[$0]!.revision) },
            success: operations, failure: deletes.map { .range(key: replicaKey($0)) }
        ) { [weak self] result in
            guard let self else { return }
            writing = false
            guard phase == .running else { return }
            guard held == lease else { return scheduleFlush() }
            switch result {
            case .success(let txn) where txn.succeeded:
                noteUp()
                for report in puts { written[report.name] = (report, txn.revision) }
                for name in deletes { written[name] = nil }
                flush()
            case .success(let txn):
                noteUp()
                // A report this node wrote was changed by another since (its replica moved
                // there): it is that node's now, not this one's to delete.
                for (name, current) in zip(deletes, txn.ranges) where current.first?.modRevision != written[name]?.revision {
                    written[name] = nil
                }
                flush()
            case .failure(.failed(code: EtcdClient.notFound, _)):
                leaseLost(held, reason: "etcd no longer has lease \(Self.hex(held))")
            case .failure(let error):
                noteFailure(error, "cannot write the replicas' reports")
                flushTimer = loop.schedule(after: backoff) { [weak self] in
                    self?.flushTimer = nil
                    self?.flush()
                }
            }
        }
    }

    private func replicaKey(_ name: String) -> [UInt8] { Array(ClusterKeys.replica(name, pool: pool).utf8) }

    /// Leases as etcdctl prints them.
    package static func hex(_ lease: Int64) -> String { String(UInt64(bitPattern: lease), radix: 16) }
}
