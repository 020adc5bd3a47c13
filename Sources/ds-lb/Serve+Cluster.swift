import ArgumentParser
import DSControl
import DSEtcd
import DSReactor
import DSServer
import DSSystem
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// `--etcd` and the options that go with it, checked.
struct ClusterOptions: Equatable {
    var endpoints: [EtcdEndpoint]
    var nodeName: String
    var advertiseAddress: String
    var nodeLease: Duration
    var pool: String
}

extension Serve {
    /// Cluster mode's options, validated (nil without `--etcd`). Errors name the option and
    /// the value.
    func clusterOptions() throws -> ClusterOptions? {
        guard let etcd else {
            for (flag, given) in [("--node-name", nodeName != nil), ("--advertise-address", advertiseAddress != nil)] where given
            {
                throw ValidationError("\(flag) is only used with --etcd")
            }
            return nil
        }
        let endpoints: [EtcdEndpoint]
        do { endpoints = try EtcdEndpoint.list(etcd) } catch { throw ValidationError("--etcd: '\(etcd)': \(error)") }
        guard !endpoints.isEmpty else { throw ValidationError("--etcd: '\(etcd)' names no endpoint") }
        guard driver != "static" else {
            throw ValidationError(
                "--etcd: the static driver's --backend replicas cannot be placed over nodes (use --driver process or docker)")
        }
        guard onFailure != SupervisorConfig.OnFailure.replace.rawValue else {
            throw ValidationError(
                "--on-failure replace is not supported with --etcd (a cluster restarts failed replicas under their name)")
        }
        guard EtcdStore.isValidName(pool) else {
            throw ValidationError("--pool: '\(pool)' is not a valid name with --etcd (1 to 64 letters, digits, '.', '_' or '-')")
        }
        let name = nodeName ?? Self.hostName()
        guard EtcdStore.isValidName(name) else {
            if nodeName == nil {
                throw ValidationError("--node-name: the host name '\(name)' is not a valid node name; pass --node-name")
            }
            throw ValidationError("--node-name: '\(name)' is not a valid name (1 to 64 letters, digits, '.', '_' or '-')")
        }
        let lease: Duration
        do { lease = try DurationText.duration(nodeLease, name: "--node-lease") } catch { throw ValidationError("\(error)") }
        guard lease.components.attoseconds == 0, lease >= .seconds(2) else {
            throw ValidationError("--node-lease: '\(nodeLease)' must be whole seconds, at least 2s")
        }
        return ClusterOptions(
            endpoints: endpoints, nodeName: name, advertiseAddress: try advertised(), nodeLease: lease, pool: pool)
    }

    /// `--advertise-address`, else the `--listen` host unless it is a wildcard.
    private func advertised() throws -> String {
        if let advertiseAddress {
            let host =
                advertiseAddress.hasPrefix("[") && advertiseAddress.hasSuffix("]")
                ? String(advertiseAddress.dropFirst().dropLast()) : advertiseAddress
            guard SocketAddress.parseIPv4(Substring(host)) != nil || SocketAddress.parseIPv6(Substring(host)) != nil,
                host != "0.0.0.0", host != "::"
            else {
                throw ValidationError("--advertise-address: '\(advertiseAddress)' is not an IP address other hosts can reach")
            }
            return host
        }
        let listenHost: String
        let source = listen == "none" ? tlsListen ?? listen : listen
        do { listenHost = try SocketAddress.parse(source).host } catch { throw ValidationError("--listen: \(error)") }
        return listenHost == "0.0.0.0" || listenHost == "::" || listenHost.isEmpty ? "127.0.0.1" : listenHost
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count - 1) == 0 else { return "" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// How the server joins the cluster (nil without `--etcd`).
    func clusterSetup(logger: Logger) throws -> ClusterSetup? {
        guard let options = try clusterOptions() else { return nil }
        logger.info(
            "[i] Cluster mode: node \(options.nodeName) at \(options.advertiseAddress), pool \(options.pool) in etcd at \(options.endpoints.map(\.description).joined(separator: ",")), lease \(DurationText.format(options.nodeLease))"
        )
        return ClusterSetup(
            makeStore: { loop, driver in
                try EtcdStore(loop: loop, endpoints: options.endpoints, pool: options.pool, driver: driver)
            },
            makeMembership: { loop, driver, logger in
                try EtcdClusterMembership(
                    loop: loop, endpoints: options.endpoints, pool: options.pool, driver: driver,
                    nodeName: options.nodeName, advertiseAddress: options.advertiseAddress, leaseTTL: options.nodeLease,
                    logger: logger)
            })
    }
}
