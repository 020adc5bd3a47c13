import DSBalancer
import DSHTTP1
import DSSystem
import DSTLS

/// Settings every worker shares. A reload hands each running worker a new value
/// (`WorkerHandle.reconfigure`); what a worker takes only at start is listed at `Worker.config`.
package struct ProxyConfig: Sendable {
    package var limits = HTTPLimits()
    /// Largest admin request body accepted (413 above it).
    package var maxAdminBody = 64 * 1024
    /// Who may call the admin endpoints; everyone else gets 403.
    package var adminAllow: [CIDR]
    /// When set, admin requests must also carry `Authorization: Bearer <token>` (401 without).
    package var adminToken: AdminToken?
    package var keyExtractor = KeyExtractor.default {
        didSet { routingFields = keyExtractor.headerNames }
    }
    /// The header names the routing key may be read from: a `Connection` list cannot remove
    /// them from the forwarded head (see `HopByHop.isEndToEnd`).
    package private(set) var routingFields: [String] = KeyExtractor.default.headerNames
    /// Clients whose X-Forwarded-For and X-Forwarded-Proto are kept (the client address is
    /// appended; their X-Forwarded-Proto replaces ds-lb's): proxies in front of ds-lb, like
    /// nginx's `set_real_ip_from`. Anyone else's are replaced by ds-lb's own, so a replica
    /// reading the first X-Forwarded-For value reads an address ds-lb saw. Empty by default.
    package var trustedProxies: [CIDR] = []
    /// A request head must arrive whole within this, from its first byte (slowloris: 408).
    package var headTimeout: Duration = .seconds(10)
    /// An idle keep-alive client connection is closed after this.
    package var idleTimeout: Duration = .seconds(60)
    /// A request body may pause this long between reads; there is no total body deadline.
    package var bodyTimeout: Duration = .seconds(30)
    package var connectTimeout: Duration = .seconds(2)
    package var responseTimeout: Duration = .seconds(30)
    /// How many other replicas a request may fail over to when its replica refuses the
    /// connection (or drops it before answering an idempotent request).
    package var retries = 1
    /// Bounded loads (Mirrokni, Thorup, Zadimoghaddam): cap each replica's in-flight requests
    /// at ⌈c × average⌉; nil (the default) routes by the hash alone.
    package var balanceFactor: Double?
    /// Idle keep-alive connections kept per replica per worker: this worker's share of
    /// `--upstream-max-idle` (see `idleShare`). Enough for every client connection of a busy
    /// worker to find one: with fewer, hundreds of keep-alive clients on one worker make ds-lb
    /// open new replica connections for a share of their requests. An idle one holds no
    /// buffer (its storage goes back to the worker's pool).
    package var maxIdlePerBackend = 512
    /// An idle replica connection is closed after this (`--upstream-idle-timeout`): well under
    /// a replica's own keep-alive timeout, so ds-lb, not the replica, ends it (no request meets
    /// a connection the replica is closing), and so a burst does not leave the replica holding
    /// descriptors it needs for heartbeats and new clients.
    package var upstreamIdleTimeout: Duration = .seconds(30)

    /// Each worker's share of `total` idle connections per replica (`--upstream-max-idle`),
    /// rounded up. A fixed share rather than one atomic counter per replica shared by the
    /// workers: the counter would be two contended atomic operations per request on a cache
    /// line every worker writes, where the pool is otherwise worker-local and lock-free. The
    /// price is that a busy worker cannot borrow the unused share of an idle one.
    package static func idleShare(of total: Int, workers: Int) -> Int {
        let workers = max(1, workers)
        return (total + workers - 1) / workers
    }
    /// Pipelined requests each worker runs at a time behind fresh ones (`PipelineQueue`); 0: no
    /// queue, pipelined requests are served as they arrive. A reload changes it.
    package var pipelineSlots = 2
    /// Largest request body proxied (413 above it, answered before any body byte is read);
    /// nil: no limit. A chunked body is cut off with 413 at the first chunk size line that
    /// takes it past the limit (its size is not known in advance).
    package var maxBodyBytes: UInt64?
    /// Content-Length bodies of at least this many bytes, and chunks of chunked bodies with at
    /// least this much data (either direction), move by splice(2) through a per-connection pipe
    /// instead of through the buffers (chunk framing still goes through them); nil: never.
    package var spliceThreshold: UInt64? = 64 * 1024
    /// The certificates new connections on the TLS listener get (`--tls-cert`/`--tls-key`); a
    /// reload replaces it, and connections already open keep the one they began with. Nil: no
    /// TLS listener, or one whose connections are closed unanswered.
    package var tls: TLSServerContext?
    /// A TLS handshake must be done within this from the accept (`--tls-handshake-timeout`).
    package var tlsHandshakeTimeout: Duration = .seconds(10)
    /// TLS handshakes each worker runs at a time (`--tls-max-handshakes`); a new one beyond it drops the oldest, so a
    /// flood of clients that never finish theirs cannot hold the worker's descriptors and CPU
    /// for long, and established connections never wait behind them.
    package var tlsMaxHandshakes = 256
    /// `--redirect-http`: requests on the plain listener (admin endpoints excepted) are answered
    /// 308 to the same URL over https, on `httpsPort` (set by the server from its TLS listener).
    package var redirectHTTP = false
    package var httpsPort: UInt16 = 443
    /// Graceful stop (SIGTERM): the workers started with this config enroll in it.
    package var drain: GracefulDrain?

    package init(adminAllow: [CIDR]) {
        self.adminAllow = adminAllow
    }

    package static func defaultAdminAllow() -> [CIDR] {
        [try! CIDR(parsing: "127.0.0.0/8"), try! CIDR(parsing: "::1/128")]
    }
}
