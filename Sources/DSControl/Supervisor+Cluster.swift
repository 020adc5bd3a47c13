import DSBalancer
import DSHTTP1
import DSProxy
import DSReactor
import DSSystem
import Logging
import Prometheus

/// Cluster mode's state in the supervisor (`--etcd`): the membership, the pool store in etcd,
/// the replicas being handed off to other nodes and the `/add`s waiting for their replicas.
/// Control loop only.
final class ClusterMode {
    let membership: ClusterMembership
    let store: PoolStore
    /// Local replicas placed on another node now, with that node and when they stop anyway.
    var handingOff: [String: (owner: String, deadline: UInt64)] = [:]
    /// The nodes of the last view (for node_joined / node_lost lines).
    var nodes: [String: ClusterNodeRecord] = [:]
    var waits: [ClusterWriteWait] = []
    var reportScheduled = false
    /// Remote replicas found unreachable from here while reported up, with that report.
    var suspects: [String: ReplicaReport] = [:]
    /// Remote replicas being probed from here.
    var probes: [String: HeartbeatProbe] = [:]
    /// The pool's names in the last view.
    var poolNames: Set<String> = []
    /// The reports last given to the membership, by name.
    var sentReports: [String: ReplicaReport] = [:]
    /// The first placement was made (the driver's leftovers are gone from then on).
    var placedOnce = false
    /// The seeding write of `--replicas` has not answered yet.
    var seeding = false
    /// A seeding write was made (won or lost): the pool exists, so readiness waits for it.
    var seeded = false
    /// Why etcd does not answer (nil while it does).
    var storeProblem: String?
    let nodesGauge: Gauge
    let storeUpGauge: Gauge
    let revisionGauge: Gauge

    init(membership: ClusterMembership, store: PoolStore, metrics: PrometheusCollectorRegistry) {
        self.membership = membership
        self.store = store
        nodesGauge = metrics.makeGauge(
            descriptor: ProxyMetrics.name(
                "cluster", unit: "nodes", help: "Live ds-lb nodes in the cluster, as this node sees them"))
        storeUpGauge = metrics.makeGauge(
            descriptor: ProxyMetrics.name("cluster_store", unit: "up", help: "1 while etcd answers this node, else 0"))
        revisionGauge = metrics.makeGauge(
            descriptor: ProxyMetrics.name("cluster", unit: "revision", help: "The etcd revision of this node's cluster view"))
        storeUpGauge.set(Int64(1))
    }

    var nodeName: String { membership.nodeName }
    var view: ClusterView { membership.view }
    var registered: Bool { view.nodes[nodeName] != nil }
}

/// An admin write that committed, waiting for this node's view to reach it (so a `/rep`
/// through this node after the answer shows it) and, for an `/add`, for its replicas to be
/// reported up by the nodes they are placed on.
final class ClusterWriteWait {
    /// The etcd revision the write committed at.
    let revision: UInt64
    /// The replicas it added.
    let names: [String]
    /// The pool as the write committed it (the answer's body).
    let pool: [String]
    let done: (AdminAnswer) -> Void
    var timer: TimerID?

    init(revision: UInt64, names: [String], pool: [String], done: @escaping (AdminAnswer) -> Void) {
        self.revision = revision
        self.names = names
        self.pool = pool
        self.done = done
    }

    /// The view shows the write, and every replica it added is up somewhere (or left the pool
    /// since).
    func satisfied(by view: ClusterView) -> Bool {
        guard view.revision >= Int64(clamping: revision) else { return false }
        let inPool = Set(view.pool?.replicas.map(\.name) ?? [])
        return names.allSatisfy { view.reports[$0]?.isUp == true || !inPool.contains($0) }
    }
}

extension Supervisor {
    /// Cluster mode: the pool lives in etcd (`store`) and `membership` places it over the live
    /// nodes. Before `bootstrap`, instead of setting `poolStore`.
    package func joinCluster(_ membership: ClusterMembership, store: PoolStore) {
        assert(loop.isInLoop)
        cluster = ClusterMode(membership: membership, store: store, metrics: metrics.registry)
    }

    /// Bootstrap in cluster mode: seeds the pool with `replicas` new ones when etcd has none
    /// (one compare-and-swap against "absent", so nodes starting together seed it once), then
    /// registers the node. Nothing is launched here: placement launches what the view gives
    /// this node.
    func clusterBootstrap(_ cluster: ClusterMode, replicas: Int) throws {
        let stored = try cluster.store.load()
        if stored.revision == 0, replicas > 0, driver.canCreate {
            let seed = PoolReconciler.bootstrap(adopted: [], stored: nil, canCreate: true, replicas: replicas).compactMap {
                step -> Backend? in
                guard case .launch(let spec) = step else { return nil }
                return Backend(name: spec.name, number: spec.number, host: cluster.membership.advertiseAddress, port: 0)
            }
            cluster.seeding = true
            cluster.seeded = true
            cluster.store.write(seed, ifRevision: 0) { [unowned self] result in
                cluster.seeding = false
                switch result {
                case .success:
                    logger.info("[i] Seeded the pool in \(cluster.store.location) with \(seed.count) replicas")
                case .failure(.conflict):
                    logger.info("[i] Another node seeded the pool first; using it")
                case .failure(let error):
                    logger.error("[!] Could not seed the pool in \(cluster.store.location): \(error)")
                }
                initialPoolSettled(force: false)
            }
        }
        cluster.membership.start { [unowned self] event in clusterReported(event) }
    }

    /// Ready once the node is registered, the seeding write answered and the replicas placed
    /// here (the pool's first placement) passed their first checks; with no pool in etcd and
    /// none seeded, once registered.
    func clusterSettled(_ cluster: ClusterMode) -> Bool {
        cluster.registered && !cluster.seeding && (cluster.placedOnce || (!cluster.seeded && cluster.view.pool == nil))
    }

    private func clusterReported(_ event: ClusterMembershipEvent) {
        guard let cluster, !stopping else { return }
        switch event {
        case .changed(let view):
            cluster.suspects = ClusterReconciler.stillSuspect(cluster.suspects, view: view)
            let before = cluster.nodes
            noteNodes(view, cluster: cluster)
            converge(view, cluster: cluster, nodesBefore: before)
            // Published before the waits finish: an answer waits for the workers to take it.
            let target = publish()
            for wait in cluster.waits where wait.satisfied(by: view) { finish(wait, .pool(wait.pool), cluster: cluster) }
            // Replicas that left the pool, wherever they ran, leave this node's /metrics too
            // once no worker routes to them.
            let names = Set(view.pool?.replicas.map(\.name) ?? [])
            let left = cluster.poolNames.subtracting(names)
            cluster.poolNames = names
            if !left.isEmpty {
                whenWorkersReach(target, deadline: monotonicNanoseconds() + Self.removalSwitchTimeout) { [unowned self] in
                    forgetSeries(of: left.sorted())
                }
            }
            initialPoolSettled(force: false)
        case .fenced(let reason):
            let names = members.map(\.backend.name)
            logger.warning(
                "[!] Fenced: this node's lease is gone (\(reason)); stopping its \(names.count) replicas at once (\(names.joined(separator: ", "))): other nodes may run them now",
                metadata: ["event": "replica_moved"])
            for replica in members {
                cancelTimers(of: replica)
                _ = reconciler.handle(.retired, for: &replica.record, now: monotonicNanoseconds())
                driver.kill(replica.backend)
            }
            members.removeAll()
            cluster.handingOff.removeAll()
            publish()
            scheduleReport()
        case .storeDown(let reason):
            cluster.storeProblem = reason
            cluster.storeUpGauge.set(Int64(0))
            logger.error(
                "[!] Cluster store unavailable: \(reason); routing with the last view, admin writes answer 503",
                metadata: ["event": "store_down"])
            noteViewChanged()
        case .refused(let reason):
            logger.critical("[!] Cannot join the cluster: \(reason)")
            for replica in members { cancelTimers(of: replica); driver.kill(replica.backend) }
            members.removeAll()
            onClusterRefused?(reason)
        case .storeUp:
            cluster.storeProblem = nil
            cluster.storeUpGauge.set(Int64(1))
            logger.info("[i] Cluster store answers again", metadata: ["event": "store_up"])
            noteViewChanged()
        }
    }

    /// The membership logs nodes joining and leaving; the supervisor keeps the gauges.
    private func noteNodes(_ view: ClusterView, cluster: ClusterMode) {
        // The membership writes the log lines; the dashboard's stream gets the events here.
        for name in view.nodes.keys.sorted() where cluster.nodes[name] == nil {
            let address = view.nodes[name]?.address ?? "?"
            dashboard.publish(event: "node_joined", line: "[i] Node \(name) joined the cluster (at \(address))", backend: "")
        }
        for name in cluster.nodes.keys.sorted() where view.nodes[name] == nil {
            dashboard.publish(event: "node_lost", line: "[!] Node \(name) left the cluster", backend: "")
        }
        cluster.nodes = view.nodes
        cluster.nodesGauge.set(Int64(view.nodes.count))
        cluster.revisionGauge.set(view.revision)
    }

    /// Runs what placement gives this node: starts the replicas placed here, drains those that
    /// left the pool, hands off those placed elsewhere now.
    private func converge(_ view: ClusterView, cluster: ClusterMode, nodesBefore: [String: ClusterNodeRecord] = [:]) {
        let running = Set(members.filter { !$0.removed }.map(\.backend.name))
        let plan = ClusterReconciler.place(
            view: view, node: cluster.nodeName, running: running, handingOff: Set(cluster.handingOff.keys))
        let now = monotonicNanoseconds()
        for name in plan.takeBack { cluster.handingOff[name] = nil }
        for (name, owner) in plan.handOff.sorted(by: { $0.key < $1.key }) {
            guard let replica = members.first(where: { $0.backend.name == name && !$0.removed }) else { continue }
            cluster.handingOff[name] = (owner, now + nanoseconds(of: config.startTimeout))
            logEvent(
                .info,
                "[i] Server \(replica.backend.number) (\(name)) is placed on node \(owner) now; stopping it here once it runs there",
                "replica_moved", replica.backend)
            loop.schedule(after: config.startTimeout) { [unowned self] in endHandOffs() }
        }
        let gone = members.filter { plan.remove.contains($0.backend.name) && !$0.removed }
        for replica in gone { cluster.handingOff[replica.backend.name] = nil }
        if !gone.isEmpty { takeOut(gone, announce: true) }
        for entry in plan.launch {
            let before = Placement.owner(of: entry.name, among: nodesBefore.keys)
            launchPlaced(entry, from: before ?? view.reports[entry.name]?.node, now: now)
        }
        if !cluster.placedOnce, view.nodes[cluster.nodeName] != nil, view.pool != nil {
            // What the driver found at start (a container left running) and placement did not
            // give this node goes, as after a bootstrap on one machine.
            cluster.placedOnce = true
            driver.initialPoolLaunched()
        }
        endHandOffs()
        scheduleReport()
    }

    /// `from`: the node it was placed on before (nil: none, or this one).
    private func launchPlaced(_ entry: Backend, from: String?, now: UInt64) {
        guard let cluster else { return }
        let spec = ReplicaSpec(name: entry.name, number: entry.number)
        // A port is only worth keeping on the host it was on.
        let previous = entry.port != 0 && entry.host == cluster.membership.advertiseAddress ? entry : nil
        let backend: Backend
        do {
            backend = try driver.launch(spec, previous: previous)
        } catch {
            logger.error("[!] Could not start \(entry.name) placed on this node: \(error); trying again in 1s")
            loop.schedule(after: .seconds(1)) { [unowned self] in
                if let cluster = self.cluster, !stopping { converge(cluster.view, cluster: cluster) }
            }
            return
        }
        let (record, actions) = reconciler.launched(
            backend.name, number: backend.number, address: backend.address, forAdd: false, now: now)
        let replica = Replica(backend: backend, record: record, inPool: true)
        members.append(replica)
        if let from, from != cluster.nodeName {
            logEvent(
                .info,
                "[+] Server \(backend.number) (\(backend.name)) moved here from node \(from), at \(backend.address)",
                "replica_moved", backend)
        } else {
            logEvent(.info, "[+] Server \(backend.number) started: \(backend.name) at \(backend.address)", "started", backend)
        }
        perform(actions, for: replica, now: now)
    }

    /// Stops the replicas handed off whose new owner reports them up (or whose time is up).
    private func endHandOffs() {
        guard let cluster else { return }
        let now = monotonicNanoseconds()
        let done = cluster.handingOff.filter { name, handOff in
            now >= handOff.deadline || ClusterReconciler.handOffDone(name, view: cluster.view, node: cluster.nodeName)
        }
        guard !done.isEmpty else { return }
        for name in done.keys { cluster.handingOff[name] = nil }
        let leaving = members.filter { done[$0.backend.name] != nil && !$0.removed }
        if !leaving.isEmpty { takeOut(leaving, announce: false) }
    }

    // MARK: reports and what is published

    /// Writes this node's reports once at the end of this turn of the loop.
    func scheduleReport() {
        guard let cluster, !cluster.reportScheduled else { return }
        cluster.reportScheduled = true
        loop.schedule(after: .zero) { [unowned self] in
            cluster.reportScheduled = false
            cluster.membership.report(localReports(cluster))
        }
    }

    private func localReports(_ cluster: ClusterMode) -> [ReplicaReport] {
        let reports = members.filter { $0.inPool && !$0.removed && cluster.handingOff[$0.backend.name] == nil }.map { replica in
            ReplicaReport(
                name: replica.backend.name, id: replica.backend.number, node: cluster.nodeName, host: replica.backend.host,
                port: replica.backend.port, state: Self.reportedState(replica), restarts: replica.restarts,
                failedRestarts: replica.failedRestarts, checks: replica.checks,
                consecutiveFailures: replica.health.consecutiveFailures, lastCheck: replica.health.last?.description,
                lastCheckCode: replica.health.last?.code, lastCheckNanoseconds: replica.lastLatency)
        }
        cluster.sentReports = ClusterReconciler.quieted(reports, sent: cluster.sentReports)
        return reports.compactMap { cluster.sentReports[$0.name] }
    }

    /// `up` only when it takes requests (a replica marked down by passive health does not).
    private static func reportedState(_ replica: Replica) -> String {
        if replica.isUp { return "up" }
        return replica.health.status == .starting ? "starting" : "down"
    }

    /// The local replicas this node routes to as it runs them.
    private func localRouting() -> [String: ClusterReconciler.Local] {
        var local: [String: ClusterReconciler.Local] = [:]
        for replica in members where replica.inPool && !replica.removed {
            local[replica.backend.name] = .init(backend: replica.backend, up: replica.isUp)
        }
        return local
    }

    /// What cluster mode routes by (the same on every node that has the same view).
    func clusterRouting(_ cluster: ClusterMode) -> (backends: [Backend], healthy: [String: Bool]) {
        ClusterReconciler.routing(
            view: cluster.view, node: cluster.nodeName, local: localRouting(), suspects: Set(cluster.suspects.keys))
    }

    /// `/rep` and `/status` in cluster mode: the pool in etcd's order, each replica as the node
    /// that runs it reports it (this node's own as they run here).
    func clusterReplicaViews(_ cluster: ClusterMode) -> [SupervisorView.ReplicaView] {
        let view = cluster.view
        let local = localRouting()
        return (view.pool?.replicas ?? []).map { entry in
            let report = view.reports[entry.name]
            if local[entry.name] != nil, ClusterReconciler.shownAsLocal(report, node: cluster.nodeName),
                let replica = members.first(where: { $0.backend.name == entry.name && $0.inPool && !$0.removed })
            {
                var local = replicaView(replica, node: cluster.nodeName)
                local.weight = entry.weight
                return local
            }
            return SupervisorView.ReplicaView(
                name: entry.name, id: entry.number, address: report.map { "\($0.host):\($0.port)" } ?? entry.address,
                state: report?.state.uppercased() ?? "UNPLACED", details: [], lastCheck: report?.lastCheck,
                lastCheckCode: report?.lastCheckCode, lastCheckNanoseconds: report?.lastCheckNanoseconds ?? 0,
                checks: report?.checks ?? 0, consecutiveFailures: report?.consecutiveFailures ?? 0,
                restarts: report?.restarts ?? 0, failedRestarts: report?.failedRestarts ?? 0, markedDown: false,
                weight: entry.weight, counters: metrics.replica(entry.name), node: report?.node ?? view.owner(of: entry.name))
        }
    }

    func clusterStatus(_ cluster: ClusterMode) -> SupervisorView.ClusterStatus {
        let view = cluster.view
        var nodes = view.nodes.values.sorted { $0.name < $1.name }.map { node in
            SupervisorView.ClusterStatus.Node(
                name: node.name, address: node.address, lease: node.lease, state: "live",
                replicas: ClusterReconciler.placed(on: node.name, view: view))
        }
        if view.nodes[cluster.nodeName] == nil {
            nodes.append(
                .init(
                    name: cluster.nodeName, address: cluster.membership.advertiseAddress, lease: 0, state: "unregistered",
                    replicas: []))
        }
        return SupervisorView.ClusterStatus(
            node: cluster.nodeName, storeUp: cluster.storeProblem == nil, storeProblem: cluster.storeProblem,
            revision: view.revision, nodes: nodes)
    }

    func clusterStatusLine(_ cluster: ClusterMode) -> String {
        let store = cluster.storeProblem == nil ? "etcd up" : "etcd unavailable"
        return "cluster node \(cluster.nodeName) of \(cluster.view.nodes.count), \(store)"
    }

    // MARK: remote replicas

    /// A worker could not reach `backend`, which another node runs and reports up: its node may
    /// have died, its lease not expired yet. Nothing is restarted from here (it is not this
    /// node's). A refused or dropped connection is evidence enough to route around it at once
    /// (its keys go to their next replica); a heartbeat from here then decides whether it stays
    /// out until its report changes, and, when it fails, the same node's other replicas are
    /// taken out and checked too: a dead node's keys move within a probe, not after its lease.
    func remoteUnreachable(_ backend: Backend, cluster: ClusterMode) {
        let name = backend.name
        guard let report = cluster.view.reports[name], report.node != cluster.nodeName, report.isUp,
            report.host == backend.host, report.port == backend.port, cluster.suspects[name] == nil,
            cluster.probes[name] == nil
        else { return }
        cluster.suspects[name] = report
        publish()
        probeRemote(report, cluster: cluster, first: true)
    }

    private func probeRemote(_ report: ReplicaReport, cluster: ClusterMode, first: Bool) {
        let name = report.name
        cluster.probes[name] = HeartbeatProbe(
            backend: report.backend, loop: loop, timeoutNanoseconds: nanoseconds(of: config.heartbeatTimeout)
        ) { [unowned self] result, _ in
            cluster.probes[name] = nil
            guard !stopping, cluster.suspects[name] == report else { return }
            if result.isSuccess {
                cluster.suspects[name] = nil
                publish()
                return
            }
            if first {
                logger.warning(
                    "[!] Server \(report.id) (\(name)) on node \(report.node) is unreachable from here (\(result)); routing around it until its node reports it again"
                )
                for other in cluster.view.reports.values where other.node == report.node && other.name != name {
                    remoteUnreachable(other.backend, cluster: cluster)
                }
            }
            loop.schedule(after: config.heartbeatInterval) { [unowned self] in
                if cluster.suspects[name] == report, cluster.probes[name] == nil {
                    probeRemote(report, cluster: cluster, first: false)
                }
            }
        }
    }

    // MARK: admin commands

    /// An admin command in cluster mode: planned against the pool as etcd holds it now and
    /// written by compare-and-swap against the revision read; a lost race reads and plans
    /// again. Commands are not queued behind each other: each one's write is atomic in etcd.
    func clusterExecute(_ command: AdminCommand, cluster: ClusterMode, done: @escaping (AdminAnswer) -> Void) {
        if let problem = cluster.storeProblem { return done(Self.storeUnavailable(problem)) }
        clusterWrite(command, attempt: 1, cluster: cluster, done: done)
    }

    static func storeUnavailable(_ reason: String) -> AdminAnswer {
        .failure(.serviceUnavailable, "<Error> cluster store unavailable: \(reason)")
    }

    private func clusterWrite(
        _ command: AdminCommand, attempt: Int, cluster: ClusterMode, done: @escaping (AdminAnswer) -> Void
    ) {
        cluster.store.read { [unowned self] result in
            let pool: StoredPool
            switch result {
            case .success(let read): pool = read
            case .failure(let error): return done(storeFailure(error))
            }
            let planned: Result<ClusterWritePlan, Refusal>
            switch command {
            case .reweight(let scale): planned = ClusterReconciler.planWeight(scale, pool: pool.replicas)
            case .add(let scale):
                planned = ClusterReconciler.planAdd(
                    scale, pool: pool.replicas, view: cluster.view, fallbackHost: cluster.membership.advertiseAddress,
                    canCreate: driver.canCreate, driverName: driver.name)
            case .remove(let scale): planned = ClusterReconciler.planRemove(scale, pool: pool.replicas)
            case .removeNumber(let number): planned = ClusterReconciler.planRemove(number: number, pool: pool.replicas)
            }
            let plan: ClusterWritePlan
            switch planned {
            case .success(let made): plan = made
            case .failure(let refusal): return done(refusal.answer)
            }
            cluster.store.write(plan.pool, ifRevision: pool.revision) { [unowned self] result in
                switch result {
                case .success(let revision):
                    committed(plan, at: revision, cluster: cluster, done: done)
                case .failure(.conflict(let expected, let current)):
                    guard let delay = ClusterReconciler.retryDelay(afterAttempt: attempt, unit: Double.random(in: 0..<1)) else {
                        logger.error("[!] Gave up an admin write after \(attempt) lost races to other nodes' writes")
                        return done(PoolReconciler.refusal(.conflict(expected: expected, current: current)).answer)
                    }
                    loop.schedule(after: delay) { [unowned self] in
                        clusterWrite(command, attempt: attempt + 1, cluster: cluster, done: done)
                    }
                case .failure(let error):
                    done(storeFailure(error))
                }
            }
        }
    }

    /// etcd not answering, or refusing (no leader, no quorum): 503, as while the membership
    /// says the store is down. A write that got no answer may still have committed: the view
    /// then shows it.
    private func storeFailure(_ error: PoolStoreError) -> AdminAnswer {
        switch error {
        case .unreachable(let reason), .failed(let reason): Self.storeUnavailable(reason)
        case .conflict, .outOfSpace: PoolReconciler.refusal(error).answer
        }
    }

    /// The write committed: `/rm` answers once this node's view shows it (the nodes running the
    /// replicas drain and stop them), `/add` once every new replica is reported up too, or at
    /// the start timeout (an `/rm` then answers anyway: it committed).
    private func committed(
        _ plan: ClusterWritePlan, at revision: UInt64, cluster: ClusterMode, done: @escaping (AdminAnswer) -> Void
    ) {
        let names = plan.pool.map(\.name)
        if !plan.removed.isEmpty { logger.info("[-] Removed from the cluster's pool: \(plan.removed.joined(separator: ", "))") }
        if !plan.added.isEmpty { logger.info("[+] Added to the cluster's pool: \(plan.added.joined(separator: ", "))") }
        let wait = ClusterWriteWait(revision: revision, names: plan.added, pool: names, done: done)
        if wait.satisfied(by: cluster.view) { return done(.pool(names)) }
        cluster.waits.append(wait)
        let timeout = config.startTimeout
        wait.timer = loop.schedule(after: timeout) { [unowned self, weak wait] in
            guard let wait, let cluster = self.cluster else { return }
            wait.timer = nil
            let late = wait.names.filter { cluster.view.reports[$0]?.isUp != true }
            guard !late.isEmpty else { return finish(wait, .pool(wait.pool), cluster: cluster) }
            finish(
                wait,
                .failure(
                    .internalServerError,
                    "<Error> Could not add replicas: \(late.joined(separator: ", ")) not reported up within \(DurationText.format(timeout)); they stay in the pool (DELETE /rm removes them)"
                ), cluster: cluster)
        }
    }

    private func finish(_ wait: ClusterWriteWait, _ answer: AdminAnswer, cluster: ClusterMode) {
        guard cluster.waits.contains(where: { $0 === wait }) else { return }
        cluster.waits.removeAll { $0 === wait }
        if let timer = wait.timer { loop.cancel(timer) }
        wait.done(answer)
    }

    // MARK: shutdown

    /// At shutdown, before the replicas stop: leaves the cluster (its lease revoked), so other
    /// nodes take this node's replicas over at once. `done` runs on the loop when etcd answered
    /// or gave up, at most a few seconds later.
    package func leaveCluster(done: @escaping () -> Void) {
        assert(loop.isInLoop)
        guard let cluster else { return done() }
        var finished = false
        let once = {
            guard !finished else { return }
            finished = true
            done()
        }
        let guardTimer = loop.schedule(after: .seconds(3)) { once() }
        cluster.membership.leave { [unowned self] in
            loop.cancel(guardTimer)
            once()
        }
    }
}
