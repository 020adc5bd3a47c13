import DSConfig
import DSControl
import DSProxy
import DSServer
import DSSystemd
import Logging

/// SIGHUP (`systemctl reload ds-lb`): re-reads the configuration file between
/// `RELOADING=1` and `READY=1` (systemd 252 has no `Type=notify-reload`; ExecReload sends the
/// signal). Live keys go to the supervisor and the workers; a changed key that needs a restart is
/// logged and kept at its running value; an invalid file changes nothing and says why in the log
/// and in `STATUS=` (the server's `statusNote`), until a reload succeeds. Control thread only.
final class Reloader {
    let invocation: ServeInvocation
    unowned let server: Server
    let logger: Logger
    /// The file whose live keys are in force (restart keys: `invocation.file`, read at start).
    private var current: ConfigFile?

    init(invocation: ServeInvocation, server: Server, logger: Logger) {
        self.invocation = invocation
        self.server = server
        self.logger = logger
        self.current = invocation.file
    }

    func reload() {
        assert(server.loop.isInLoop)
        let notifier = server.notifier
        let path = CommandLineFlags.value(of: "config", in: invocation.commandLine) ?? ConfigFile.defaultPath
        notifier.reloading(status: "Reloading \(path)")
        logger.info("[i] Received SIGHUP: reloading \(path)", metadata: ["event": "reloading"])
        do {
            let next = try ServeInvocation(commandLine: invocation.commandLine)
            let serve = try next.parse()
            let supervisorConfig = try serve.supervisorConfig()
            let proxy = try serve.liveProxyConfig(from: server.proxyConfig)
            let live = ConfigFile.changes(from: current, to: next.file, commandLine: invocation.commandLine)
                .filter { $0.key.reload == .live }
            let waiting = ConfigFile.changes(from: invocation.file, to: next.file, commandLine: invocation.commandLine)
                .filter { $0.key.reload == .restart }
            server.reload(supervisor: supervisorConfig, proxy: proxy)
            current = next.file
            for change in waiting {
                logger.warning(
                    "[!] Reload: \(change) needs a restart (systemctl restart ds-lb); running with the value ds-lb started with",
                    metadata: ["event": "reload_needs_restart"])
            }
            let summary = live.isEmpty ? "no live setting changed" : "applied " + live.map(\.description).joined(separator: ", ")
            logger.info(
                "[i] Reloaded \(next.file?.path ?? path): \(summary); heartbeat interval \(DurationText.format(server.supervisor.heartbeatInterval))",
                metadata: ["event": "reloaded"])
            server.statusNote = waiting.isEmpty ? nil : "restart needed for \(waiting.map(\.key.name).joined(separator: ", "))"
        } catch {
            let reason = "\(error)"
            logger.error("[!] Reload failed, keeping the running configuration: \(reason)", metadata: ["event": "reload_failed"])
            server.statusNote = "reload failed, running the previous configuration: \(reason)"
        }
        notifier.ready(status: server.statusLine)
    }
}
