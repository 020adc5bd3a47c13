/// Why TLS could not be set up: one line naming what is wrong and why.
package enum TLSLoadError: Error, CustomStringConvertible, Equatable {
    /// A certificate or key file that cannot be used (missing, unreadable, not PEM, key not
    /// matching the certificate, expired), named by its path.
    case file(String, reason: String)
    /// An option's value OpenSSL refuses, named by the option ("--tls-ciphersuites").
    case option(String, reason: String)
    /// OpenSSL itself failed (no context could be made).
    case library(reason: String)

    package var description: String {
        switch self {
        case .file(let name, let reason), .option(let name, let reason): "\(name): \(reason)"
        case .library(let reason): reason
        }
    }
}
