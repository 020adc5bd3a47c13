import CSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

/// A swift-log handler that writes structured entries to journald with `sd_journal_sendv`
/// (docs/ARCHITECTURE.md §7, "Logs"): `MESSAGE` is the same human line the plain handler prints
/// (`[!] Server 2 failed heartbeat. Restarting...`), plus `PRIORITY`, `SYSLOG_IDENTIFIER=ds-lb`
/// and every metadata key as an upper-case field — `EVENT=restarted`, `BACKEND=server-2` — so
/// `journalctl -u ds-lb EVENT=restarted` finds the entry. Use it only when `isJournalStderr`.
package struct JournalLogHandler: LogHandler {
    package var metadata: Logger.Metadata = [:]
    package var logLevel: Logger.Level = .info
    private let identifier: String

    package init(label: String, identifier: String = "ds-lb") {
        self.identifier = identifier
    }

    package subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// True when stderr is the stream systemd connected to journald: `JOURNAL_STREAM` holds
    /// `device:inode` of that stream (systemd.exec(5)). A redirected stderr (a file, a pipe to
    /// a test) does not match, and keeps plain lines.
    package static var isJournalStderr: Bool {
        guard let value = getenv("JOURNAL_STREAM") else { return false }
        let parts = String(cString: value).split(separator: ":")
        guard parts.count == 2, let device = UInt64(parts[0]), let inode = UInt64(parts[1]) else { return false }
        var info = stat()
        guard fstat(2, &info) == 0 else { return false }
        return UInt64(info.st_dev) == device && UInt64(info.st_ino) == inode
    }

    /// syslog(3) priorities, as journald expects them in `PRIORITY=`.
    static func priority(_ level: Logger.Level) -> Int {
        switch level {
        case .trace, .debug: 7
        case .info: 6
        case .notice: 5
        case .warning: 4
        case .error: 3
        case .critical: 2
        }
    }

    /// `backend` → `BACKEND`; journald field names are A–Z, 0–9 and `_`, not starting with `_`.
    static func fieldName(_ key: String) -> String? {
        var name = ""
        for scalar in key.unicodeScalars {
            switch scalar {
            case "a"..."z": name.unicodeScalars.append(Unicode.Scalar(scalar.value - 32)!)
            case "A"..."Z", "0"..."9": name.unicodeScalars.append(scalar)
            default: name += "_"
            }
        }
        while name.hasPrefix("_") { name.removeFirst() }
        guard !name.isEmpty, name.first!.isLetter, name.utf8.count <= 64 else { return nil }
        return name
    }

    /// The fields of one entry, in the order they are sent.
    func fields(for event: LogEvent) -> [String] {
        var fields = ["MESSAGE=\(event.message)", "PRIORITY=\(Self.priority(event.level))", "SYSLOG_IDENTIFIER=\(identifier)"]
        let all = event.metadata.map { self.metadata.merging($0) { $1 } } ?? self.metadata
        for (key, value) in all.sorted(by: { $0.key < $1.key }) {
            guard let name = Self.fieldName(key), !["MESSAGE", "PRIORITY", "SYSLOG_IDENTIFIER"].contains(name) else { continue }
            fields.append("\(name)=\(value)")
        }
        return fields
    }

    package func log(event: LogEvent) {
        let fields = fields(for: event)
        // One buffer for all fields; each iovec is one field, so values may hold newlines.
        var joined: [UInt8] = []
        var ranges: [(offset: Int, count: Int)] = []
        for field in fields {
            ranges.append((joined.count, field.utf8.count))
            joined += field.utf8
        }
        let result = joined.withUnsafeMutableBytes { raw -> Int32 in
            let iovecs = ranges.map { iovec(iov_base: raw.baseAddress! + $0.offset, iov_len: $0.count) }
            return sd_journal_sendv_with_location(
                "CODE_FILE=\(event.file)", "CODE_LINE=\(event.line)", event.function,
                iovecs, Int32(iovecs.count))
        }
        if result < 0 {
            // journald is gone (e.g. stopped first at shutdown): the line must still go somewhere.
            let line = fields[0].dropFirst("MESSAGE=".count) + "\n"
            String(line).withCString { _ = write(2, $0, strlen($0)) }
        }
    }
}
