import Logging
import Testing

@testable import DSSystemd

#if canImport(Glibc)
import Glibc
#endif

/// One serialized parent: these tests set process-wide environment variables (NOTIFY_SOCKET,
/// JOURNAL_STREAM, LISTEN_*), which must not change while another test reads them.
@Suite(.serialized) struct SystemdTests {

    @Suite struct SystemdListenersTests {
        @Test func picksTheNamedSocket() {
            let passed = [SystemdListeners.Passed(name: "admin", fd: 3), .init(name: "http", fd: 4)]
            #expect(SystemdListeners.pick(passed, name: "http")?.fd == 4)
        }

        @Test func unnamedSocketsFallBackToTheFirst() {
            let passed = [SystemdListeners.Passed(name: "unknown", fd: 3)]
            #expect(SystemdListeners.pick(passed, name: "http")?.fd == 3)
        }

        @Test func otherNamesAreNotTakenForHTTP() {
            let passed = [SystemdListeners.Passed(name: "admin", fd: 3)]
            #expect(SystemdListeners.pick(passed, name: "http") == nil)
        }

        @Test func nothingPassedOutsideSystemd() {
            unsetenv("LISTEN_FDS"); unsetenv("LISTEN_PID")
            #expect(SystemdListeners.take().isEmpty)
        }
    }

    @Suite struct JournalLogHandlerTests {
        @Test func fieldNames() {
            #expect(JournalLogHandler.fieldName("backend") == "BACKEND")
            #expect(JournalLogHandler.fieldName("event") == "EVENT")
            #expect(JournalLogHandler.fieldName("retry-after") == "RETRY_AFTER")
            #expect(JournalLogHandler.fieldName("_private") == "PRIVATE")
            #expect(JournalLogHandler.fieldName("9lives") == nil)
        }

        @Test func entryFields() {
            var handler = JournalLogHandler(label: "test")
            handler[metadataKey: "worker"] = "1"
            let event = LogEvent(
                level: .warning, message: "[!] Server 2 failed heartbeat. Restarting...",
                metadata: ["event": "heartbeat_failed", "backend": "server-2", "priority": "9"],
                source: "test", file: "f.swift", function: "g()", line: 3)
            #expect(
                handler.fields(for: event) == [
                    "MESSAGE=[!] Server 2 failed heartbeat. Restarting...", "PRIORITY=4", "SYSLOG_IDENTIFIER=ds-lb",
                    "BACKEND=server-2", "EVENT=heartbeat_failed", "WORKER=1",
                ])
        }

        @Test func priorities() {
            #expect(JournalLogHandler.priority(.error) == 3)
            #expect(JournalLogHandler.priority(.info) == 6)
            #expect(JournalLogHandler.priority(.debug) == 7)
        }

        @Test func plainStderrIsNotTheJournal() {
            setenv("JOURNAL_STREAM", "1:1", 1)
            defer { unsetenv("JOURNAL_STREAM") }
            #expect(!JournalLogHandler.isJournalStderr)
        }
    }

    /// The notifier against a socket playing systemd's part.
    @Suite(.serialized) struct SystemdNotifierTests {
        @Test func sendsDatagramsToNotifySocket() throws {
            let sink = NotifySink() // binds the socket and sets NOTIFY_SOCKET; undone when released
            let notifier = SystemdNotifier()
            #expect(notifier.isEnabled)
            notifier.ready(status: "3/3 replicas up,\nring generation 7")
            #expect(sink.receive() == "READY=1\nSTATUS=3/3 replicas up, ring generation 7")
            notifier.watchdog()
            #expect(sink.receive() == "WATCHDOG=1")
            notifier.stopping()
            #expect(sink.receive() == "STOPPING=1")
            notifier.reloading()
            let reloading = sink.receive()
            #expect(reloading.hasPrefix("RELOADING=1\nMONOTONIC_USEC="))
        }

        @Test func silentWithoutSystemd() {
            unsetenv("NOTIFY_SOCKET")
            #expect(!SystemdNotifier().isEnabled)
            #expect(SystemdNotifier().watchdogTimeout() == nil)
            SystemdNotifier().ready()
        }
    }
}
