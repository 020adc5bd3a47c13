import CSystemd

#if canImport(Glibc)
import Glibc
#endif

/// Sockets passed by systemd (socket activation or the FD store), by name (sd_listen_fds(3)).
package enum SystemdListeners {
    package struct Passed: Sendable, Equatable {
        /// `FileDescriptorName=` of the socket unit; systemd says `unknown` when none was set.
        package let name: String
        /// Raw, not a `FileDescriptor`: the socket is systemd's, kept open for the next ds-lb of
        /// a restart, and shared by every worker; ds-lb must never close it.
        package let fd: Int32
    }

    /// Takes the descriptors passed to this process, once: `sd_listen_fds_with_names` checks
    /// `LISTEN_PID`, marks them close-on-exec and unsets `LISTEN_*`, so replicas forked later
    /// neither see nor inherit them. Empty when the process was not socket-activated.
    package static func take() -> [Passed] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = nil
        let count = sd_listen_fds_with_names(1, &names)
        guard count > 0 else { return [] }
        defer {
            if let names {
                for i in 0..<Int(count) { free(names[i]) }
                free(names)
            }
        }
        return (0..<Int(count)).map { i in
            let name = names?[i].map { String(cString: $0) } ?? "unknown"
            return Passed(name: name, fd: SD_LISTEN_FDS_START + Int32(i))
        }
    }

    /// The socket named `name`; with no named socket at all (`unknown`, e.g.
    /// `systemd-socket-activate` without `--fdname`), the first one.
    package static func pick(_ passed: [Passed], name: String) -> Passed? {
        if let exact = passed.first(where: { $0.name == name }) { return exact }
        if passed.allSatisfy({ $0.name == "unknown" || $0.name.isEmpty }) { return passed.first }
        return nil
    }
}
