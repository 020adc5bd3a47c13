import DSConfig
import DSControl
import DSProxy
import DSSystemd
import Logging

/// SIGHUP (`systemctl reload ds-lb`): re-reads the configuration file between
/// `RELOADING=1` and `READY=1` (systemd 252 has no `Type=notify-reload`; ExecReload sends the
/// signal). Live keys go to the supervisor and the workers; a changed key that needs a restart is
/// logged and kept at its running value; an invalid file changes nothing and says why in the log
/// and in `STATUS=`, until a reload succeeds. Control thread only.
final class Reloader {
    let invocation: ServeInvocation
    let supervisor: Supervisor
    let notifier: SystemdNotifier
    let logger: Logger
    /// The running workers' settings; workers started later get these.
    private(set) var proxyConfig: ProxyConfig
    var workers: [WorkerHandle] = []
    /// How long a stop waits for requests in flight (a live key).
    private(set) var drainTimeout: Duration
    /// The file whose live keys are in force (restart keys: `invocation.file`, read at start).
    private var current: ConfigFile?
    /// Appended to `STATUS=`: why the last reload failed, or what waits for a restart.
    private var note: String?

    init(invocation: ServeInvocation, supervisor: Supervisor, proxyConfig: ProxyConfig, notifier: SystemdNotifier, logger: Logger) {
        self.invocation = invocation
        self.supervisor = supervisor
        self.proxyConfig = proxyConfig
        self.notifier = notifier
        self.logger = logger
        self.drainTimeout = supervisor.drainTimeout
        self.current = invocation.file
    }

    /// The `STATUS=` line: the pool, and the reload's note when there is one.
    var statusLine: String {
        note.map { supervisor.statusLine + "; " + $0 } ?? supervisor.statusLine
    }

    func reload() {
        assert(supervisor.loop.isInLoop)
        let path = CommandLineFlags.value(of: "config", in: invocation.commandLine) ?? ConfigFile.defaultPath
        notifier.reloading(status: "Reloading \(path)")
        logger.info("[i] Received SIGHUP: reloading \(path)", metadata: ["event": "reloading"])
        do {
            let next = try ServeInvocation(commandLine: invocation.commandLine)
            let serve = try next.parse()
            let supervisorConfig = try serve.supervisorConfig()
            let proxy = try serve.liveProxyConfig(from: proxyConfig)
            let live = ConfigFile.changes(from: current, to: next.file, commandLine: invocation.commandLine)
                .filter { $0.key.reload == .live }
            let waiting = ConfigFile.changes(from: invocation.file, to: next.file, commandLine: invocation.commandLine)
                .filter { $0.key.reload == .restart }
            supervisor.reconfigure(supervisorConfig)
            for worker in workers { worker.reconfigure(proxy) }
            proxyConfig = proxy
            drainTimeout = supervisorConfig.drainTimeout
            current = next.file
            for change in waiting {
                logger.warning("[!] Reload: \(change) needs a restart (systemctl restart ds-lb); running with the value ds-lb started with",
                               metadata: ["event": "reload_needs_restart"])
            }
            let summary = live.isEmpty ? "no live setting changed" : "applied " + live.map(\.description).joined(separator: ", ")
            logger.info("[i] Reloaded \(next.file?.path ?? path): \(summary); heartbeat interval \(DurationText.format(supervisor.heartbeatInterval))",
                        metadata: ["event": "reloaded"])
            note = waiting.isEmpty ? nil : "restart needed for \(waiting.map(\.key.name).joined(separator: ", "))"
        } catch {
            let reason = "\(error)"
            logger.error("[!] Reload failed, keeping the running configuration: \(reason)", metadata: ["event": "reload_failed"])
            note = "reload failed, running the previous configuration: \(reason)"
        }
        notifier.ready(status: statusLine)
    }
}
