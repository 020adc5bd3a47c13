/// The keys of /etc/ds-lb/ds-lb.toml: one per `ds-lb serve` option (IntegrationTests'
/// ServeConfigFileTests fails when an option has none). `live` keys are applied by a reload (SIGHUP)
/// through the supervisor and the workers; `restart` keys shape sockets, threads or the pool
/// and take effect at the next start.
package enum ServeConfigKeys {
    package static let all: [ConfigKey] = [
        ConfigKey("listen", .string, .restart),
        ConfigKey("admin-listen", .string, .restart),
        ConfigKey("tls-listen", .string, .restart),
        ConfigKey("tls-cert", .strings, .live),
        ConfigKey("tls-key", .strings, .live),
        ConfigKey("tls-ciphers", .string, .live),
        ConfigKey("tls-ciphersuites", .string, .live),
        ConfigKey("tls-handshake-timeout", .duration, .live),
        ConfigKey("tls-max-handshakes", .integer, .live),
        ConfigKey("redirect-http", .boolean, .live),
        ConfigKey("driver", .string, .restart),
        ConfigKey("image", .string, .restart),
        ConfigKey("network", .string, .restart),
        ConfigKey("pool", .string, .restart),
        ConfigKey("etcd", .string, .restart),
        ConfigKey("node-name", .string, .restart),
        ConfigKey("advertise-address", .string, .restart),
        ConfigKey("node-lease", .duration, .restart),
        ConfigKey("replicas", .integer, .restart),
        ConfigKey("backend", .strings, .restart),
        ConfigKey("admin-allow", .list, .live),
        ConfigKey("admin-token-file", .string, .live),
        ConfigKey("trusted-proxies", .list, .live),
        ConfigKey("workers", .integer, .restart),
        ConfigKey("cpu-affinity", .string, .restart),
        ConfigKey("hash", .string, .restart),
        ConfigKey("hash-key", .string, .live),
        ConfigKey("server-binary", .string, .restart),
        ConfigKey("heartbeat-interval", .duration, .live),
        ConfigKey("heartbeat-timeout", .duration, .live),
        ConfigKey("fall", .integer, .live),
        ConfigKey("rise", .integer, .live),
        ConfigKey("on-failure", .string, .live),
        ConfigKey("max-restarts", .integer, .live),
        ConfigKey("retries", .integer, .live),
        ConfigKey("max-fails", .integer, .live),
        ConfigKey("fail-window", .duration, .live),
        ConfigKey("drain-timeout", .duration, .live),
        ConfigKey("balance-factor", .number, .live),
        ConfigKey("head-timeout", .duration, .live),
        ConfigKey("idle-timeout", .duration, .live),
        ConfigKey("body-timeout", .duration, .live),
        ConfigKey("max-body-size", .string, .live),
        ConfigKey("splice-threshold", .string, .live),
        ConfigKey("pipeline-slots", .integer, .live),
        ConfigKey("connect-timeout", .duration, .live),
        ConfigKey("response-timeout", .duration, .live),
        ConfigKey("upstream-idle-timeout", .duration, .restart),
        ConfigKey("upstream-max-idle", .integer, .restart),
        ConfigKey("state-dir", .string, .restart),
        ConfigKey("reset-state", .boolean, .restart),
    ]

    /// `serve` options that are not keys: the file's own path.
    package static let commandLineOnly: Set<String> = ["config"]

    package static func key(named name: String) -> ConfigKey? {
        all.first { $0.name == name }
    }
}
