import ArgumentParser
import CSystemd
import DSBalancer
import DSConfig
import DSControl
import DSHashing
import DSProxy
import DSReactor
import DSServer
import DSSystem
import DSSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A runtime error: printed as one line (`Error: ...`), without the usage text.
struct Failure: Error, CustomStringConvertible {
    let description: String
}

struct Serve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the load balancer (the default command).")

    @Option(
        help:
            "Configuration file, one key per option, e.g. heartbeat-interval = \"1s\" (default: \(ConfigFile.defaultPath) when it exists). Options given here override it; SIGHUP reloads it."
    )
    var config: String?

    @Option(help: "Address to listen on (ignored when systemd passes a listening socket); none: HTTPS only (--tls-listen).")
    var listen: String = "0.0.0.0:5000"

    @Option(
        help:
            "Serve the admin endpoints (/rep /add /rm /weight /status /metrics /dashboard /events /keyspace) on this address only, not on --listen (a socket systemd passes named admin takes its place)."
    )
    var adminListen: String?

    @Option(
        help:
            "Also accept HTTPS on this address (TLS terminated here, then the same proxying as --listen); needs --tls-cert and --tls-key. A socket systemd passes named https takes its place."
    )
    var tlsListen: String?

    @Option(
        name: .customLong("tls-cert"),
        help:
            "A PEM certificate for --tls-listen, its chain after it (RSA or ECDSA); repeatable, each with its --tls-key in the same order. Chosen by SNI (exact or *. names); the first is the default. A reload loads them again."
    )
    var tlsCerts: [String] = []

    @Option(name: .customLong("tls-key"), help: "The PEM private key of the --tls-cert given in the same position.")
    var tlsKeys: [String] = []

    @Option(
        help:
            "OpenSSL cipher list for TLS 1.2 (TLS 1.3 keeps OpenSSL's AEAD suites; default: ECDHE with AES-GCM or ChaCha20-Poly1305)."
    )
    var tlsCiphers: String?

    @Option(
        help:
            "TLS 1.3 suites, ':'-separated, in OpenSSL's names (e.g. TLS_AES_128_GCM_SHA256:TLS_CHACHA20_POLY1305_SHA256; default: OpenSSL's). A reload applies it to new connections."
    )
    var tlsCiphersuites: String?

    // Unconditional: `-5` is this option's (out-of-range) value, not an unknown flag.
    @Option(
        parsing: .unconditional,
        help:
            "TLS handshakes each worker runs at a time; one more drops the oldest, so a flood of clients that never finish theirs cannot starve established connections."
    )
    var tlsMaxHandshakes: Int = 256

    @Option(help: "A TLS handshake must be done within this after the connection is accepted.")
    var tlsHandshakeTimeout: String = "10s"

    @Flag(
        name: .customLong("redirect-http"),
        help: "Answer requests on --listen (admin endpoints excepted) with 308 to the same URL over https (needs --tls-listen).")
    var redirectHTTP = false

    @Option(
        help:
            "How replicas are run: auto (docker when the engine answers and --image exists, else process; the choice is logged), process (local ds-server children), docker (containers) or static (--backend)."
    )
    var driver: String = "auto"

    @Option(help: "Image of the replicas (docker driver).")
    var image: String = "ds-server:latest"

    @Option(
        help:
            "Network of the replicas (docker driver): host (each replica on its own port on 127.0.0.1) or the name of a user-defined network (replicas reached at their address on it)."
    )
    var network: String = "host"

    @Option(
        help:
            "Pool name: the ds-lb.pool label of the containers this ds-lb manages and adopts (docker driver), and the pool's etcd prefix /ds-lb/<pool>/ (--etcd)."
    )
    var pool: String = "default"

    @Option(
        help:
            "Cluster mode: etcd endpoints, comma-separated (http://h1:2379,http://h2:2379). The pool is kept in etcd and its replicas placed over the live ds-lb nodes; without it, one machine and the state file."
    )
    var etcd: String?

    @Option(help: "Cluster mode: this node's name, unique in the cluster (default: the host name).")
    var nodeName: String?

    @Option(
        help:
            "Cluster mode: the address other hosts reach this node's replicas at; they listen on it (default: the --listen host, or 127.0.0.1 when that is 0.0.0.0 or ::)."
    )
    var advertiseAddress: String?

    @Option(
        help:
            "Cluster mode: the TTL of this node's lease in etcd, whole seconds, at least 2s: how long after this node stops other nodes take its replicas over."
    )
    var nodeLease: String = "5s"

    @Option(help: "Replicas to start with (process and Docker drivers).")
    var replicas: Int = 3

    @Option(
        name: .customLong("backend"),
        help: "A replica run by someone else, NAME=HOST:PORT[,weight=W] (static driver; repeatable; W 0-256, default 1).")
    var backends: [String] = []

    @Option(
        help:
            "Who may use the admin endpoints (/rep, /add, /rm, /weight, /status, /metrics, the dashboard): comma-separated CIDR blocks (replaces the default)."
    )
    var adminAllow: String = "127.0.0.0/8,::1/128"

    @Option(
        help:
            "Proxies in front of ds-lb whose X-Forwarded-For and X-Forwarded-Proto are kept (the client address appended): comma-separated CIDR blocks. Anyone else's are replaced (default: none)."
    )
    var trustedProxies: String = ""

    @Option(
        help:
            "File whose first line is a secret (≥16 characters) that admin requests must send as Authorization: Bearer <secret> (off by default)."
    )
    var adminTokenFile: String?

    @Option(help: "Worker threads (default: the number of CPUs).")
    var workers: Int?

    @Option(
        help:
            "Pin worker threads to CPUs: none, or auto (worker i on the i-th CPU ds-lb may use, wrapping around; for a machine the workers share with other busy processes)."
    )
    var cpuAffinity: String = "none"

    @Option(help: HashAlgorithm.optionHelp)
    var hash: String = HashAlgorithm.default.rawValue

    @Option(
        help:
            "Where the routing key comes from, a fallback chain: query:NAME, header:NAME, cookie:NAME, path, client-ip, random (a random 6-digit id per request)."
    )
    var hashKey: String = KeyExtractor.default.description

    @Option(help: "Path of the ds-server binary (default: next to ds-lb).")
    var serverBinary: String?

    @Option(help: "Time between heartbeats (GET /heartbeat) to each replica, e.g. 5s, 500ms.")
    var heartbeatInterval: String = "5s"

    @Option(help: "How long one heartbeat may take (connect + response).")
    var heartbeatTimeout: String = "2s"

    @Option(help: "Consecutive failed heartbeats that take a replica out of rotation.")
    var fall: Int = 2

    @Option(help: "Consecutive successful heartbeats that put a replica back.")
    var rise: Int = 1

    @Option(
        help:
            "What to do with a failed replica: restart (the same name again, keep trying, with backoff) or replace (a new replica under a new generated name after --max-restarts failed restarts)."
    )
    var onFailure: String = "restart"

    @Option(
        help:
            "Failed restarts before --on-failure replace gives up on a replica (0...100); 0 replaces it at its first failure, without restarting it."
    )
    var maxRestarts: Int = 3

    @Option(
        help:
            "Other replicas an idempotent request may fail over to after a timeout, a dropped connection or an invalid response (0: none). Refused connections do not count: the request tries each replica at most once."
    )
    var retries: Int = 1

    @Option(
        help:
            "Failed requests (invalid responses, refused or dropped connections, timeouts) within --fail-window that take a replica out of rotation until its heartbeats pass again (0 turns this off)."
    )
    var maxFails: Int = 10

    @Option(help: "The window --max-fails counts failed requests in, e.g. 10s.")
    var failWindow: String = "10s"

    @Option(help: "How long a removed replica, or a stopping ds-lb, may finish its in-flight requests.")
    var drainTimeout: String = "10s"

    @Option(help: "Bounded loads: cap each replica's in-flight requests at ceil(factor × average), e.g. 1.25 (off by default).")
    var balanceFactor: Double?

    @Option(help: "A request head must arrive whole within this, from its first byte (else 408).")
    var headTimeout: String = "10s"

    @Option(help: "Idle keep-alive client connections are closed after this.")
    var idleTimeout: String = "60s"

    @Option(help: "A request body may pause this long between reads (no total body deadline).")
    var bodyTimeout: String = "30s"

    @Option(
        help:
            "Largest request body proxied, in bytes or with a K, M or G suffix (powers of 1024); larger ones get 413 before any body byte is read (off by default)."
    )
    var maxBodySize: String?

    @Option(
        help:
            "Content-Length bodies, and chunks of chunked bodies, of at least this size (bytes, or with a K, M or G suffix) move by splice(2) through a per-connection pipe instead of through buffers, both ways; 0 turns splicing off."
    )
    var spliceThreshold: String = "64K"

    // Unconditional: `-1` is this option's (out-of-range) value, not an unknown flag.
    @Option(
        parsing: .unconditional,
        help:
            "Pipelined requests (sent before the previous answer) each worker runs at a time, after fresh ones, so clients that pipeline floods cannot hold up the rest (0...1024). 0 turns the queue off, as 0 does for --splice-threshold: pipelined requests are served as they arrive, as nginx does (the best pipelined throughput, no protection). A reload applies it."
    )
    var pipelineSlots: Int = 2

    @Option(help: "A replica must accept a connection within this (else the next replica, or 502).")
    var connectTimeout: String = "2s"

    @Option(help: "A replica must start its response within this (else 504).")
    var responseTimeout: String = "30s"

    @Option(
        help:
            "Idle keep-alive connections to replicas are closed after this (keep it under the replicas' own keep-alive timeout).")
    var upstreamIdleTimeout: String = "30s"

    @Option(help: "Idle keep-alive connections kept per replica, over all workers (each worker keeps its share); 0 keeps none.")
    var upstreamMaxIdle: Int = 512

    /// Pool settings fixed at start: each worker's share of `--upstream-max-idle`, and the idle
    /// timeout.
    func upstreamPool(into config: inout ProxyConfig, workers: Int) throws {
        do {
            config.upstreamIdleTimeout = try DurationText.duration(upstreamIdleTimeout, name: "--upstream-idle-timeout")
        } catch {
            throw ValidationError("\(error)")
        }
        guard config.upstreamIdleTimeout >= .milliseconds(1) else {
            throw ValidationError("--upstream-idle-timeout: must be at least 1ms")
        }
        config.maxIdlePerBackend = ProxyConfig.idleShare(of: upstreamMaxIdle, workers: workers)
    }

    /// The data-plane timeouts, parsed; errors name the flag and the value.
    func proxyTimeouts(into config: inout ProxyConfig) throws {
        do {
            config.headTimeout = try DurationText.duration(headTimeout, name: "--head-timeout")
            config.idleTimeout = try DurationText.duration(idleTimeout, name: "--idle-timeout")
            config.bodyTimeout = try DurationText.duration(bodyTimeout, name: "--body-timeout")
            config.connectTimeout = try DurationText.duration(connectTimeout, name: "--connect-timeout")
            config.responseTimeout = try DurationText.duration(responseTimeout, name: "--response-timeout")
        } catch {
            throw ValidationError("\(error)")
        }
        for (flag, value) in [
            ("--head-timeout", config.headTimeout), ("--idle-timeout", config.idleTimeout),
            ("--body-timeout", config.bodyTimeout), ("--connect-timeout", config.connectTimeout),
            ("--response-timeout", config.responseTimeout),
        ] where value < .milliseconds(1) {
            throw ValidationError("\(flag): must be at least 1ms")
        }
    }

    @Option(help: "Where the desired pool is kept across restarts (default: $STATE_DIRECTORY, else /var/lib/ds-lb).")
    var stateDir: String?

    @Flag(help: "Forget the saved pool and start a new one.")
    var resetState = false

    func validate() throws {
        guard ["process", "static", "docker", "auto"].contains(driver) else {
            throw ValidationError("--driver: unknown driver '\(driver)' (use process, docker, auto or static)")
        }
        try validateDocker()
        _ = try clusterOptions()
        guard replicas >= 0 && replicas <= 1000 else { throw ValidationError("--replicas must be 0...1000, got \(replicas)") }
        if let workers, !(1...256).contains(workers) { throw ValidationError("--workers must be 1...256, got \(workers)") }
        guard ["none", "auto"].contains(cpuAffinity) else {
            throw ValidationError("--cpu-affinity must be none or auto, got '\(cpuAffinity)'")
        }
        if driver == "static" && backends.isEmpty {
            throw ValidationError("--driver static needs at least one --backend NAME=HOST:PORT")
        }
        if driver != "static" && !backends.isEmpty { throw ValidationError("--backend is only used with --driver static") }
        guard (1...100).contains(fall) else { throw ValidationError("--fall must be 1...100, got \(fall)") }
        guard (1...100).contains(rise) else { throw ValidationError("--rise must be 1...100, got \(rise)") }
        guard (0...100).contains(maxRestarts) else { throw ValidationError("--max-restarts must be 0...100, got \(maxRestarts)") }
        guard (0...10).contains(retries) else { throw ValidationError("--retries must be 0...10, got \(retries)") }
        guard (0...100_000).contains(upstreamMaxIdle) else {
            throw ValidationError("--upstream-max-idle must be 0...100000, got \(upstreamMaxIdle)")
        }
        guard (0...1_000_000).contains(maxFails) else {
            throw ValidationError("--max-fails must be 0...1000000, got \(maxFails)")
        }
        guard (0...1024).contains(pipelineSlots) else {
            throw ValidationError("--pipeline-slots must be 0...1024, got \(pipelineSlots)")
        }
        guard SupervisorConfig.OnFailure(rawValue: onFailure) != nil else {
            throw ValidationError("--on-failure: unknown policy '\(onFailure)' (use restart or replace)")
        }
        if let balanceFactor, !(balanceFactor >= 1 && balanceFactor <= 1000) {
            throw ValidationError("--balance-factor must be 1...1000, got \(balanceFactor)")
        }
        _ = try supervisorConfig()
        var probe = ProxyConfig(adminAllow: [])
        try proxyTimeouts(into: &probe)
        try upstreamPool(into: &probe, workers: 1)
        _ = try HashAlgorithm(option: hash)
        // Everything run() parses later is checked here too, so a reload refuses a file that
        // would not start.
        _ = try addresses()
        _ = try tlsAddress()
        _ = try liveProxyConfig(from: ProxyConfig(adminAllow: []))
        for backend in backends { _ = try Self.parseBackend(backend) }
    }

    /// `--listen` (nil for `none`: HTTPS only) and `--admin-listen`, parsed.
    func addresses() throws -> (listen: SocketAddress?, admin: SocketAddress?) {
        var listenAddress: SocketAddress?
        if listen == "none" {
            guard tlsListen != nil else { throw ValidationError("--listen none needs --tls-listen") }
        } else {
            do { listenAddress = try SocketAddress.parse(listen) } catch { throw ValidationError("--listen: \(error)") }
        }
        guard let adminListen else { return (listenAddress, nil) }
        do { return (listenAddress, try SocketAddress.parse(adminListen)) } catch {
            throw ValidationError("--admin-listen: \(error)")
        }
    }

    /// `base` with the settings a reload applies to running workers taken from these options
    /// (ConfigKey.Reload.live): admin allow-list and token (re-read from its file, so a reload
    /// rotates it), trusted proxies, routing key, retries, bounded loads, body size cap, splicing, pipeline slots,
    /// timeouts.
    /// The rest of `base` (limits, pool size) stays as the workers started with it.
    func liveProxyConfig(from base: ProxyConfig) throws -> ProxyConfig {
        var config = base
        do {
            config.adminAllow = try adminAllow.split(separator: ",").map {
                try CIDR(parsing: String($0.trimmingCharacters(in: .whitespaces)))
            }
        } catch { throw ValidationError("--admin-allow: \(error)") }
        do {
            config.trustedProxies = try trustedProxies.split(separator: ",").map {
                try CIDR(parsing: String($0.trimmingCharacters(in: .whitespaces)))
            }
        } catch { throw ValidationError("--trusted-proxies: \(error)") }
        do {
            config.adminToken = try adminTokenFile.map { try AdminToken.load(path: $0) }
        } catch { throw ValidationError("--admin-token-file: \(error)") }
        do { config.keyExtractor = try KeyExtractor(parsing: hashKey) } catch { throw ValidationError("\(error)") }
        config.maxBodyBytes = try maxBodySize.map { try ByteSizeText.bytes($0, name: "--max-body-size") }
        let splice = try ByteSizeText.bytes(spliceThreshold, name: "--splice-threshold")
        config.spliceThreshold = splice == 0 ? nil : splice
        config.retries = retries
        config.balanceFactor = balanceFactor
        config.pipelineSlots = pipelineSlots
        try proxyTimeouts(into: &config)
        try tlsSettings(into: &config)
        return config
    }

    func supervisorConfig() throws -> SupervisorConfig {
        var config = SupervisorConfig()
        do {
            config.heartbeatInterval = try DurationText.duration(heartbeatInterval, name: "--heartbeat-interval")
            config.heartbeatTimeout = try DurationText.duration(heartbeatTimeout, name: "--heartbeat-timeout")
            config.drainTimeout = try DurationText.duration(drainTimeout, name: "--drain-timeout")
            config.failWindow = try DurationText.duration(failWindow, name: "--fail-window")
        } catch {
            throw ValidationError("\(error)")
        }
        guard config.heartbeatInterval >= .milliseconds(10) else {
            throw ValidationError("--heartbeat-interval: '\(heartbeatInterval)' is too short (at least 10ms)")
        }
        guard config.heartbeatTimeout >= .milliseconds(1) else {
            throw ValidationError("--heartbeat-timeout: '\(heartbeatTimeout)' is too short (at least 1ms)")
        }
        guard config.failWindow >= .milliseconds(10) else {
            throw ValidationError("--fail-window: '\(failWindow)' is too short (at least 10ms)")
        }
        config.maxFails = maxFails
        config.fall = fall
        config.rise = rise
        config.onFailure = SupervisorConfig.OnFailure(rawValue: onFailure) ?? .restart
        config.maxRestarts = maxRestarts
        return config
    }

    func run() throws {
        // Under systemd, stderr is a journald stream: structured entries (EVENT=, BACKEND=) go
        // straight to journald; anywhere else, plain lines.
        let journal = JournalLogHandler.isJournalStderr
        LoggingSystem.bootstrap { journal ? JournalLogHandler(label: $0) as any LogHandler : LineLogHandler(label: $0) }
        let logger = Logger(label: "ds-lb")

        let (listenAddress, adminAddress) = try addresses()
        let staticBackends = try backends.map(Self.parseBackend)
        if Set(staticBackends.map(\.name)).count != staticBackends.count {
            throw ValidationError("--backend: each replica needs a distinct name")
        }
        let algorithm = try HashAlgorithm(option: hash)
        let workerCount = workers ?? max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        var proxy = ProxyConfig(adminAllow: [])
        try upstreamPool(into: &proxy, workers: workerCount)
        let invocation = ServeInvocation.started ?? ServeInvocation.none
        var configuration = ServerConfiguration(
            listen: listenAddress, admin: adminAddress, workers: workerCount, algorithm: algorithm,
            supervisor: try supervisorConfig(), proxy: try liveProxyConfig(from: proxy),
            replicas: driver == "static" ? 0 : replicas, stateDirectory: stateDir ?? Self.defaultStateDirectory()
        ) { logger in try self.makeDriver(staticBackends: staticBackends, logger: logger) }
        configuration.resetState = resetState
        configuration.pinWorkers = cpuAffinity == "auto"
        configuration.tlsListen = try tlsAddress()
        configuration.cluster = try clusterSetup(logger: logger)
        configuration.configurationFile = invocation.file?.path

        // The control loop runs on this (main) thread for the life of the process: replicas are
        // forked from it, and PR_SET_PDEATHSIG follows the forking thread.
        do {
            let server = try Server(configuration: configuration, logger: logger)
            let reloader = Reloader(invocation: invocation, server: server, logger: logger)
            server.onReload = { reloader.reload() }
            try server.start()
            try withExtendedLifetime(reloader) { try server.run() }
        } catch ServerError.invalid(let message) {
            throw ValidationError(message)
        } catch ServerError.failed(let message) {
            throw Failure(description: message)
        }
    }

    /// systemd's `StateDirectory=` (first entry), else /var/lib/ds-lb.
    static func defaultStateDirectory() -> String {
        if let value = getenv("STATE_DIRECTORY"), let first = String(cString: value).split(separator: ":").first {
            return String(first)
        }
        return "/var/lib/ds-lb"
    }

    /// `NAME=HOST:PORT`, optionally followed by `,weight=W` (no address has a comma in it).
    static func parseBackend(_ text: String) throws -> Backend {
        let parts = text.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, !parts[0].isEmpty else {
            throw ValidationError("--backend: expected NAME=HOST:PORT[,weight=W], got '\(text)'")
        }
        let name = String(parts[0])
        let fields = parts[1].split(separator: ",", omittingEmptySubsequences: false)
        var weight = 1
        for option in fields.dropFirst() {
            guard option.hasPrefix("weight="), let w = Int(option.dropFirst(7)), (0...HashMember.maxWeight).contains(w) else {
                throw ValidationError(
                    "--backend: '\(option)' in '\(text)' is not weight=W with W an integer from 0 to \(HashMember.maxWeight)")
            }
            weight = w
        }
        let address: SocketAddress
        do { address = try SocketAddress.parse(String(fields[0])) } catch { throw ValidationError("--backend: \(error)") }
        guard address.port != 0 else { throw ValidationError("--backend: '\(text)' needs a port") }
        // The static driver numbers the backends once it has them all.
        return Backend(name: name, number: 0, host: address.host, port: address.port, weight: weight)
    }

    /// A binary installed next to this one (`swift build` and `make install` put both together).
    static func siblingBinary(_ name: String) throws -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { throw ValidationError("cannot locate ds-lb's own path; pass --server-binary") }
        let me = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let directory = me.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let path = directory + "/" + name
        guard access(path, X_OK) == 0 else { throw ValidationError("\(name) not found at \(path); pass --server-binary") }
        return path
    }
}
